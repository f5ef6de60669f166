"""The OKX personality: the v5 public endpoints ccxt's ``okx`` (spot only) asks for, in OKX's words.

Endpoints: ``/api/v5/public/instruments?instType=SPOT`` (instId ``BTC-USDT``, baseCcy, quoteCcy, tickSz, lotSz,
minSz, maxLmtSz, state ``live`` or ``suspend`` from each market's rules; no least order value: OKX has none),
``/api/v5/market/candles`` and ``/api/v5/market/history-candles``, ``/api/v5/market/ticker?instId=``,
``/api/v5/market/tickers?instType=SPOT``, ``/api/v5/public/time`` and ``/api/v5/system/status``. Every answer is
OKX's envelope ``{"code": "0", "msg": "", "data": [...]}``; an error is the same with OKX's code (``51001``
unknown instrument, ``51000`` a bad parameter, ``50014`` a missing one, ``50011`` rate limited, ``50026``/``50001``
server errors).

Candles follow OKX: rows newest first, all strings ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``
(spot: vol in the base currency, volCcy and volCcyQuote in the quote currency), ``confirm`` ``"0"`` for the
still-open candle; ``after`` (ts < after) and ``before`` (ts > before) bound the open time, both exclusive, and of
the candles in range the newest ``limit`` are returned (so ``before`` alone gives the latest); ``limit`` defaults
to 100 and is cut to 300 on both endpoints (OKX raised history-candles from 100 to 300 in 2025; ccxt 4.5 asks
for 300 there). ``/market/candles`` only reaches back over the latest 1440 candles, ``history-candles`` over all
of them (the open one included). ``bar`` is OKX's name: 1m/3m/5m/15m/30m/1H/2H/4H, and UTC-aligned
6Hutc/12Hutc/1Dutc for the longer ones (the candles the CSV holds; the Hong Kong-aligned 6H/12H/1D are not kept,
so they answer 51000 like any bar the fake does not serve).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.core.types import timeframe_ms
from engine.feeds.csvio import plain
from sim.exchange.venue import (
    CANDLES,
    DATA_FAULTS,
    MARKETS,
    TICKER,
    TIME,
    Handler,
    PersonalityApi,
    Venue,
    apply_data_fault,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 300
RECENT_CANDLES = 1440  # what /market/candles reaches back over
DAY_MS = 86_400_000
_HK_OFFSET_MS = 8 * 3_600_000
_UTC_ALIGNED_FROM_MS = 6 * 3_600_000


def bar_name(timeframe: str) -> str:
    """OKX's bar for a timeframe: ``5m`` -> ``5m``, ``1h`` -> ``1H``, ``1d`` -> ``1Dutc`` (UTC-aligned)."""
    number, unit = timeframe[:-1], timeframe[-1]
    if unit == "m":
        return timeframe
    name = number + unit.upper()
    return name + "utc" if timeframe_ms(timeframe) >= _UTC_ALIGNED_FROM_MS else name


def inst_id(venue: Venue, symbol: str) -> str:
    base, quote = venue.pairs[symbol]
    return f"{base}-{quote}"


def envelope(data: list[Any], code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def error(status: int, code: str, msg: str) -> web.Response:
    return web.json_response(envelope([], code, msg), status=status)


def candle_rows(venue: Venue, symbol: str, lo: int, hi: int) -> list[list[Any]]:
    """OKX candle rows of candles ``lo..hi-1``, oldest first (the caller turns them newest first)."""
    now = venue.clock.now_ms()
    rows = []
    for i in range(lo, hi):
        b = venue.bar(symbol, i, now)
        quote_volume = plain(b.volume * b.close)
        rows.append([str(b.ts), plain(b.open), plain(b.high), plain(b.low), plain(b.close), plain(b.volume),
                     quote_volume, quote_volume, "1" if b.closed else "0"])
    return rows


class OkxApi(PersonalityApi):
    name = "okx"

    def routes(self) -> list[tuple[str, Handler]]:
        return [("/api/v5/public/instruments", self.instruments), ("/api/v5/market/candles", self.candles),
                ("/api/v5/market/history-candles", self.history_candles), ("/api/v5/market/ticker", self.ticker),
                ("/api/v5/market/tickers", self.tickers), ("/api/v5/public/time", self.time),
                ("/api/v5/system/status", self.status)]

    def server_error(self, status: int) -> web.Response:
        if status == 503:
            return error(503, "50001", "Service temporarily unavailable. Try again later")
        return error(status, "50026", "System error. Try again later")

    def rate_limited(self, status: int) -> web.Response:
        return error(status, "50011", "Too Many Requests")

    # ------------------------------------------------------------------------------ helpers

    def _symbol(self, inst: str) -> str | None:
        return next((s for s in self.venue.markets if inst_id(self.venue, s) == inst), None)

    def _instrument(self, symbol: str) -> dict[str, Any]:
        venue = self.venue
        base, quote = venue.pairs[symbol]
        rules = venue.rules(symbol)
        arrays = venue.markets[symbol]
        return {
            "alias": "", "auctionEndTime": "", "baseCcy": base, "category": "1", "ctMult": "", "ctType": "",
            "ctVal": "", "ctValCcy": "", "expTime": "", "instFamily": "", "instId": f"{base}-{quote}",
            "instType": "SPOT", "lever": "", "listTime": str(int(arrays.ts[0])) if len(arrays) else "",
            "lotSz": plain(rules.step_size), "maxIcebergSz": plain(rules.max_qty), "maxLmtAmt": "20000000",
            "maxLmtSz": plain(rules.max_qty), "maxMktAmt": "1000000", "maxMktSz": "1000000",
            "maxStopSz": "1000000", "maxTriggerSz": plain(rules.max_qty), "maxTwapSz": plain(rules.max_qty),
            "minSz": plain(rules.min_qty), "optType": "", "quoteCcy": quote, "ruleType": "normal",
            "settleCcy": "", "state": "live" if rules.trading else "suspend", "stk": "",
            "tickSz": plain(rules.tick_size), "uly": "",
        }

    def _ticker(self, symbol: str) -> dict[str, Any] | None:
        venue = self.venue
        price = venue.price(symbol)
        stats = venue.window(symbol, DAY_MS)
        if price is None or stats is None:
            return None
        now = venue.clock.now_ms()
        day_utc0 = now - now % DAY_MS
        day_utc8 = (now + _HK_OFFSET_MS) - (now + _HK_OFFSET_MS) % DAY_MS - _HK_OFFSET_MS
        sod0, sod8 = venue.open_at(symbol, day_utc0), venue.open_at(symbol, day_utc8)
        size = plain(venue.rules(symbol).min_qty or venue.rules(symbol).step_size)
        return {"instType": "SPOT", "instId": inst_id(venue, symbol), "last": plain(price), "lastSz": size,
                "askPx": plain(price), "askSz": size, "bidPx": plain(price), "bidSz": size,
                "open24h": plain(stats.open), "high24h": plain(stats.high), "low24h": plain(stats.low),
                "volCcy24h": plain(stats.quote_volume), "vol24h": plain(stats.volume), "ts": str(now),
                "sodUtc0": plain(price if sod0 is None else sod0), "sodUtc8": plain(price if sod8 is None else sod8)}

    async def _candles(self, request: web.Request, *, history: bool) -> web.Response:
        q = request.query
        inst = q.get("instId", "")
        if not inst:
            return error(400, "50014", "Parameter instId can not be empty.")
        symbol = self._symbol(inst)
        if symbol is None:
            return error(200, "51001", "Instrument ID does not exist")
        if q.get("bar", "1m") != bar_name(self.venue.timeframe):
            return error(400, "51000", "Parameter bar error")
        bounds: dict[str, int | None] = {}
        for name in ("after", "before", "limit"):
            try:
                bounds[name] = int(q[name]) if q.get(name, "") != "" else None
            except ValueError:
                return error(400, "51000", f"Parameter {name} error")
        after, before, limit = bounds["after"], bounds["before"], bounds["limit"]
        if limit is not None and limit < 1:
            return error(400, "51000", "Parameter limit error")
        limit = min(MAX_LIMIT, DEFAULT_LIMIT if limit is None else limit)
        replaced, fault = await self.begin(CANDLES)
        if replaced is not None:
            return replaced
        lo, hi = self.venue.span(symbol, None if before is None else before + 1, None if after is None else after - 1)
        if not history:
            newest = self.venue.span(symbol, None, None)[1]
            lo = max(lo, newest - RECENT_CANDLES)
        lo = max(lo, hi - limit)  # of the candles in range, the newest ``limit``
        rows = candle_rows(self.venue, symbol, lo, hi) if hi > lo else []
        if fault is not None and fault.fault in DATA_FAULTS:
            apply_data_fault(rows, fault)  # in time order: row -1 is the newest, as on Binance
        rows.reverse()
        return self.answer(envelope(rows), fault)

    # ------------------------------------------------------------------------------ handlers

    async def instruments(self, request: web.Request) -> web.Response:
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return error(400, "50014", "Parameter instType can not be empty.")
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "EVENTS"):
            return error(400, "51000", "Parameter instType error")
        replaced, fault = await self.begin(MARKETS)
        if replaced is not None:
            return replaced
        wanted = request.query.get("instId")
        data = [] if inst_type != "SPOT" else [
            self._instrument(s) for s in sorted(self.venue.markets)
            if wanted is None or inst_id(self.venue, s) == wanted]
        return self.answer(envelope(data), fault)

    async def candles(self, request: web.Request) -> web.Response:
        return await self._candles(request, history=False)

    async def history_candles(self, request: web.Request) -> web.Response:
        return await self._candles(request, history=True)

    async def ticker(self, request: web.Request) -> web.Response:
        inst = request.query.get("instId", "")
        if not inst:
            return error(400, "50014", "Parameter instId can not be empty.")
        symbol = self._symbol(inst)
        if symbol is None:
            return error(200, "51001", "Instrument ID does not exist")
        replaced, fault = await self.begin(TICKER)
        if replaced is not None:
            return replaced
        answer = self._ticker(symbol)
        return self.answer(envelope([] if answer is None else [answer]), fault)

    async def tickers(self, request: web.Request) -> web.Response:
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return error(400, "50014", "Parameter instType can not be empty.")
        replaced, fault = await self.begin(TICKER)
        if replaced is not None:
            return replaced
        answers = [self._ticker(s) for s in sorted(self.venue.markets)] if inst_type == "SPOT" else []
        return self.answer(envelope([a for a in answers if a is not None]), fault)

    async def time(self, request: web.Request) -> web.Response:
        replaced, fault = await self.begin(TIME)
        return replaced or self.answer(envelope([{"ts": str(self.venue.clock.now_ms())}]), fault)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(envelope([]))
