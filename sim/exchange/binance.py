"""The Binance spot personality: what ccxt's ``binance`` (spot only) asks for, in Binance's words.

Endpoints: ``/api/v3/exchangeInfo`` (symbols with status, assets, permissions and the PRICE_FILTER, LOT_SIZE,
NOTIONAL filters of each market's rules), ``/api/v3/klines``, ``/api/v3/ticker/24hr`` (and the rolling
``/api/v3/ticker``), ``/api/v3/ticker/price``, ``/api/v3/ticker/bookTicker``, ``/api/v3/time``,
``/api/v3/ping`` and ``/sapi/v1/system/status``. Klines follow Binance: ``startTime``/``endTime`` filter on the
open time (both inclusive), ``limit`` defaults to 500 (max 1000), and only candles with ``ts <= now`` are served,
so the still-open current candle is the last row (with its values so far). Errors are ``{"code": -1121, "msg":
...}`` with HTTP 400; a SERVER_ERROR fault answers like the gateway in front of Binance (an HTML page, which ccxt
reads as ExchangeNotAvailable; Binance's JSON -1001 body it would read as OperationFailed), a RATE_LIMIT fault with
-1003 (429) or the IP-ban message (418), both DDoSProtection in ccxt.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from aiohttp import web

from engine.feeds.csvio import plain
from sim.exchange.venue import (
    CANDLES,
    DATA_FAULTS,
    MARKETS,
    TICKER,
    TIME,
    FakeMarketRules,
    Handler,
    PersonalityApi,
    Venue,
    apply_data_fault,
)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
DAY_MS = 86_400_000

_WINDOW = re.compile(r"^(\d+)([mhd])$")
_WINDOW_MS = {"m": 60_000, "h": 3_600_000, "d": DAY_MS}
_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def decimal8(x: float) -> str:
    """Binance's fixed-point strings: ``0.01`` -> ``"0.01000000"`` (more places only if needed)."""
    d = Decimal(plain(x))
    exponent = d.as_tuple().exponent
    places = max(8, -exponent if isinstance(exponent, int) else 8)
    return f"{d:.{places}f}"


def klines(venue: Venue, symbol: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list[Any]]:
    """Binance kline rows for the request, by the clock (the current candle partial, as it is now)."""
    lo, hi = venue.span(symbol, start_ms, end_ms)
    if start_ms is None:
        lo = max(lo, hi - limit)
    else:
        hi = min(hi, lo + limit)
    now = venue.clock.now_ms()
    rows = []
    for i in range(lo, hi):
        b = venue.bar(symbol, i, now)
        rows.append([b.ts, plain(b.open), plain(b.high), plain(b.low), plain(b.close), plain(b.volume),
                     b.ts + venue.step_ms - 1, plain(b.volume * b.close), 1, "0", "0", "0"])
    return rows


def symbol_info(symbol: str, base: str, quote: str, rules: FakeMarketRules) -> dict[str, Any]:
    """One ``exchangeInfo`` symbol, shaped like Binance's spot answer."""
    filters: list[dict[str, Any]] = [
        {"filterType": "PRICE_FILTER", "minPrice": decimal8(rules.tick_size), "maxPrice": "1000000.00000000",
         "tickSize": decimal8(rules.tick_size)},
        {"filterType": "LOT_SIZE", "minQty": decimal8(rules.min_qty), "maxQty": decimal8(rules.max_qty),
         "stepSize": decimal8(rules.step_size)},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": decimal8(rules.max_qty),
         "stepSize": "0.00000000"},
    ]
    if rules.min_notional is not None:
        filters.append({"filterType": "NOTIONAL", "minNotional": decimal8(rules.min_notional),
                        "applyMinToMarket": True, "maxNotional": "9000000.00000000", "applyMaxToMarket": False,
                        "avgPriceMins": 5})
    filters += [{"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5}]
    return {
        "symbol": symbol, "status": "TRADING" if rules.trading else "BREAK",
        "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True, "cancelReplaceAllowed": True, "amendAllowed": True,
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": filters, "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


class BinanceApi(PersonalityApi):
    name = "binance"

    def routes(self) -> list[tuple[str, Handler]]:
        return [("/api/v3/exchangeInfo", self.exchange_info), ("/api/v3/klines", self.klines),
                ("/api/v3/ticker/24hr", self.ticker_24hr), ("/api/v3/ticker", self.ticker_rolling),
                ("/api/v3/ticker/price", self.ticker_price), ("/api/v3/ticker/bookTicker", self.book_ticker),
                ("/api/v3/time", self.time), ("/api/v3/ping", self.ping), ("/sapi/v1/system/status", self.status)]

    def server_error(self, status: int) -> web.Response:
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Internal Error")
        return web.Response(status=status, content_type="text/html",
                            text=f"<html><head><title>{status} {reason}</title></head><body><center><h1>{status} "
                                 f"{reason}</h1></center></body></html>")

    def rate_limited(self, status: int) -> web.Response:
        if status == 418:
            until = self.venue.clock.now_ms() + self.venue.retry_after_s * 1000
            return error(418, -1003, f"Way too many requests; IP(127.0.0.1) banned until {until}. Please use the "
                                     "websocket for live updates to avoid bans.")
        return error(status, -1003, "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
                                    "Please use the websocket for live updates to avoid polling the API.")

    # ------------------------------------------------------------------------------ helpers

    def _symbols(self, query: Any) -> list[str] | web.Response:
        """The markets a request names (``symbol=`` or ``symbols=["A","B"]``), all without either; or an error."""
        if "symbol" in query and "symbols" in query:
            return error(400, -1102, "Param 'symbol' or 'symbols' should be sent, but not both.")
        if "symbol" in query:
            names = [query["symbol"].upper()]
        elif "symbols" in query:
            try:
                names = [str(s).upper() for s in json.loads(query["symbols"])]
            except (ValueError, TypeError):
                return error(400, -1100, "Illegal characters found in parameter 'symbols'.")
        else:
            return sorted(self.venue.markets)
        if any(n not in self.venue.markets for n in names):
            return error(400, -1121, "Invalid symbol.")
        return names

    def _ticker(self, symbol: str, window_ms: int, *, full: bool) -> dict[str, Any] | None:
        venue = self.venue
        price = venue.price(symbol)
        stats = venue.window(symbol, window_ms)
        if price is None or stats is None:
            return None
        now = venue.clock.now_ms()
        change = price - stats.open
        qty = plain(venue.rules(symbol).min_qty or venue.rules(symbol).step_size)
        answer: dict[str, Any] = {
            "symbol": symbol, "priceChange": plain(round(change, 8)),
            "priceChangePercent": f"{(change / stats.open * 100 if stats.open else 0.0):.3f}",
            "weightedAvgPrice": plain(stats.quote_volume / stats.volume if stats.volume else price),
        }
        if full:
            answer.update({"prevClosePrice": plain(stats.open), "lastPrice": plain(price), "lastQty": qty,
                           "bidPrice": plain(price), "bidQty": qty, "askPrice": plain(price), "askQty": qty})
        else:
            answer["lastPrice"] = plain(price)
        answer.update({"openPrice": plain(stats.open), "highPrice": plain(stats.high), "lowPrice": plain(stats.low),
                       "volume": plain(stats.volume), "quoteVolume": plain(stats.quote_volume),
                       "openTime": now - window_ms, "closeTime": now, "firstId": 0, "lastId": stats.candles - 1,
                       "count": stats.candles})
        return answer

    async def _tickers(self, request: web.Request, window_ms: int, *, full: bool) -> web.Response:
        names = self._symbols(request.query)
        if isinstance(names, web.Response):
            return names
        replaced, fault = await self.begin(TICKER)
        if replaced is not None:
            return replaced
        answers = [t for t in (self._ticker(n, window_ms, full=full) for n in names) if t is not None]
        if "symbol" in request.query:
            if not answers:
                return error(400, -1121, "Invalid symbol.")
            return self.answer(answers[0], fault)
        return self.answer(answers, fault)

    # ------------------------------------------------------------------------------ handlers

    async def exchange_info(self, request: web.Request) -> web.Response:
        names = self._symbols(request.query)
        if isinstance(names, web.Response):
            return names
        replaced, fault = await self.begin(MARKETS)
        if replaced is not None:
            return replaced
        venue = self.venue
        symbols = [symbol_info(n, *venue.pairs[n], venue.rules(n)) for n in names]
        return self.answer({"timezone": "UTC", "serverTime": venue.clock.now_ms(), "rateLimits": _RATE_LIMITS,
                            "exchangeFilters": [], "symbols": symbols}, fault)

    async def klines(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = q.get("symbol", "").upper()
        if not symbol:
            return error(400, -1102, "Mandatory parameter 'symbol' was not sent.")
        if symbol not in self.venue.markets:
            return error(400, -1121, "Invalid symbol.")
        if q.get("interval") != self.venue.timeframe:
            return error(400, -1120, "Invalid interval.")
        try:
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
            limit = int(q.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return error(400, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= MAX_LIMIT:
            return error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            return error(400, -1023, "Start time is greater than end time.")
        replaced, fault = await self.begin(CANDLES)
        if replaced is not None:
            return replaced
        rows = klines(self.venue, symbol, start, end, limit)
        if fault is not None and fault.fault in DATA_FAULTS:
            apply_data_fault(rows, fault)
        return self.answer(rows, fault)

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        return await self._tickers(request, DAY_MS, full=True)

    async def ticker_rolling(self, request: web.Request) -> web.Response:
        match = _WINDOW.match(request.query.get("windowSize", "1d"))
        window_ms = int(match.group(1)) * _WINDOW_MS[match.group(2)] if match else 0
        if not 60_000 <= window_ms <= 7 * DAY_MS:
            return error(400, -1100, "Illegal characters found in parameter 'windowSize'.")
        if "symbol" not in request.query and "symbols" not in request.query:
            return error(400, -1102, "Param 'symbol' or 'symbols' should be sent.")
        return await self._tickers(request, window_ms, full=False)

    async def ticker_price(self, request: web.Request) -> web.Response:
        names = self._symbols(request.query)
        if isinstance(names, web.Response):
            return names
        replaced, fault = await self.begin(TICKER)
        if replaced is not None:
            return replaced
        answers = []
        for name in names:
            price = self.venue.price(name)
            if price is not None:
                answers.append({"symbol": name, "price": plain(price)})
        if "symbol" in request.query:
            return self.answer(answers[0], fault) if answers else error(400, -1121, "Invalid symbol.")
        return self.answer(answers, fault)

    async def book_ticker(self, request: web.Request) -> web.Response:
        names = self._symbols(request.query)
        if isinstance(names, web.Response):
            return names
        replaced, fault = await self.begin(TICKER)
        if replaced is not None:
            return replaced
        answers = []
        for name in names:
            price = self.venue.price(name)
            if price is not None:
                qty = plain(self.venue.rules(name).min_qty or self.venue.rules(name).step_size)
                answers.append({"symbol": name, "bidPrice": plain(price), "bidQty": qty, "askPrice": plain(price),
                                "askQty": qty})
        if "symbol" in request.query:
            return self.answer(answers[0], fault) if answers else error(400, -1121, "Invalid symbol.")
        return self.answer(answers, fault)

    async def time(self, request: web.Request) -> web.Response:
        replaced, fault = await self.begin(TIME)
        return replaced or self.answer({"serverTime": self.venue.clock.now_ms()}, fault)

    async def ping(self, request: web.Request) -> web.Response:
        replaced, fault = await self.begin(TIME)
        return replaced or self.answer({}, fault)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"status": 0, "msg": "normal"})
