"""What the fake exchange knows whatever protocol it speaks: markets and their rules, candles by the clock, faults.

A personality (``binance.py``, ``okx.py``) turns this into one exchange's HTTP dialect; :class:`PersonalityApi`
is the part of that they share (consuming a fault before answering, a truncated body for MALFORMED_JSON).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from aiohttp import web

from engine.core.clock import Clock
from engine.core.model import CandleArrays
from engine.core.types import timeframe_ms
from engine.feeds.csvio import plain

# quote assets a market key such as ``BTCUSDT`` may end with, longest first so that FDUSD wins over USD
KNOWN_QUOTES: tuple[str, ...] = tuple(sorted(
    ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "JPY", "AUD", "BIDR", "UAH",
     "ZAR", "PLN", "RON", "ARS", "MXN", "COP", "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "SOL"),
    key=len, reverse=True))

# what one order must be worth at least, in the quote asset (Binance's NOTIONAL filter; OKX has none)
_MIN_NOTIONAL: dict[str, float] = {"BTC": 0.0001, "ETH": 0.001, "BNB": 0.01, "TRY": 10.0, "BRL": 10.0, "JPY": 500.0,
                                   "UAH": 100.0, "ZAR": 100.0, "ARS": 5000.0, "MXN": 100.0, "COP": 20000.0}
_DEFAULT_MIN_NOTIONAL = 5.0

CANDLES, TICKER, MARKETS, TIME, ORDER = "candles", "ticker", "markets", "time", "order"
ACCOUNT, OPEN_ORDERS = "account", "open_orders"  # signed reads: the balances, the open orders
ENDPOINTS: dict[str | None, str] = {None: CANDLES, CANDLES: CANDLES, "klines": CANDLES, TICKER: TICKER,
                                    MARKETS: MARKETS, "exchangeInfo": MARKETS, "instruments": MARKETS, TIME: TIME,
                                    ORDER: ORDER, ACCOUNT: ACCOUNT, OPEN_ORDERS: OPEN_ORDERS,
                                    "openOrders": OPEN_ORDERS}


class Fault(enum.Enum):
    SERVER_ERROR = "server_error"  # HTTP 500 (or ``status``)
    RATE_LIMIT = "rate_limit"  # HTTP 429 (or 418) with Retry-After
    TIMEOUT = "timeout"  # hang ``hang_s`` seconds before answering
    MALFORMED_JSON = "malformed_json"  # HTTP 200 with a truncated JSON body
    DUPLICATE = "duplicate"  # row ``row`` appears twice
    OUT_OF_ORDER = "out_of_order"  # rows ``row`` and ``row + 1`` are swapped
    GAP = "gap"  # ``span`` rows from ``row`` on are left out
    BAD_CANDLE = "bad_candle"  # row ``row`` gets high < close (or NaN close with ``nan=True``)
    # new-order requests only (endpoint="order"):
    REJECT = "reject"  # refused (Binance -2010), no order made
    DELAY = "delay"  # the order is made, the answer comes ``delay_s`` seconds later
    HANG_AFTER_ACCEPT = "hang_after_accept"  # the order is made, the answer hangs ``hang_s`` (the client times out)
    ERROR_AFTER_ACCEPT = "error_after_accept"  # the order is made, then HTTP 503 (or ``status``) is answered


DATA_FAULTS = frozenset({Fault.DUPLICATE, Fault.OUT_OF_ORDER, Fault.GAP, Fault.BAD_CANDLE})
ORDER_FAULTS = frozenset({Fault.REJECT, Fault.DELAY, Fault.HANG_AFTER_ACCEPT, Fault.ERROR_AFTER_ACCEPT})


@dataclass
class Injected:
    fault: Fault
    remaining: int
    row: int
    span: int
    status: int | None
    nan: bool
    endpoint: str = CANDLES
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class FakeMarketRules:
    """A market's trading rules: price tick, amount step, amount bounds, least order value, and whether it trades.

    Served as Binance's PRICE_FILTER / LOT_SIZE / NOTIONAL filters and status, or OKX's tickSz / lotSz / minSz /
    maxLmtSz and state (OKX has no least order value: ``min_notional`` is not served there).
    """

    tick_size: float = 0.01
    step_size: float = 0.00001
    min_qty: float = 0.00001
    max_qty: float = 9000.0
    min_notional: float | None = 5.0
    trading: bool = True

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size", "max_qty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        if not (math.isfinite(self.min_qty) and 0 <= self.min_qty <= self.max_qty):
            raise ValueError(f"min_qty must be in [0, max_qty], not {self.min_qty!r}")
        if self.min_notional is not None and not (math.isfinite(self.min_notional) and self.min_notional >= 0):
            raise ValueError(f"min_notional must be >= 0 or None, not {self.min_notional!r}")


def _power_of_ten(x: float) -> float:
    """The power of ten at or below ``x`` (``0.034`` -> ``0.01``), between 1e-8 and 1e4."""
    exponent = min(4, max(-8, math.floor(math.log10(x))))
    return float(f"1e{exponent}")


def default_rules(quote: str, reference_price: float | None) -> FakeMarketRules:
    """Rules like a real spot market at ``reference_price``: a BTC-like market gets tick 0.01, step and min qty
    0.00001, min notional 5 (USDT); the step is about a tenth of the min notional's worth, the tick ~1e-6 of it."""
    min_notional = _MIN_NOTIONAL.get(quote, _DEFAULT_MIN_NOTIONAL)
    if reference_price is None or not math.isfinite(reference_price) or reference_price <= 0:
        return FakeMarketRules(min_notional=min_notional)
    tick = min(0.01, _power_of_ten(reference_price * 1e-6))
    step = min(1.0, _power_of_ten(min_notional * 0.1 / reference_price))
    return FakeMarketRules(tick_size=tick, step_size=step, min_qty=step, max_qty=round(step * 9e8, 8),
                           min_notional=min_notional)


def parse_market_key(key: str) -> tuple[str, str, str]:
    """``"BTCUSDT"`` (or ``"BTC/USDT"``, ``"BTC-USDT"``, ``"BTC_USDT"``) -> ``("BTCUSDT", "BTC", "USDT")``.

    Without a separator the quote is the longest of :data:`KNOWN_QUOTES` the key ends with; ValueError if none.
    """
    upper = key.strip().upper()
    for sep in ("/", "-", "_"):
        if sep in upper:
            base, _, quote = upper.partition(sep)
            if base and quote and sep not in quote:
                return base + quote, base, quote
            raise ValueError(f"market {key!r}: expected BASE{sep}QUOTE")
    for quote in KNOWN_QUOTES:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper, upper[: -len(quote)], quote
    raise ValueError(f"market {key!r}: cannot tell its quote asset (known: {', '.join(sorted(KNOWN_QUOTES))}); "
                     "name it BASE/QUOTE")


class Bar(NamedTuple):
    """One candle as it is now: the open one has its values so far (``closed`` False)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool


class Window(NamedTuple):
    """The candles that opened in a rolling window up to now (what a 24-hour ticker reports)."""

    open: float
    high: float
    low: float
    volume: float
    quote_volume: float
    candles: int


def apply_data_fault(rows: list[list[Any]], fault: Injected) -> None:
    """Shape ``rows`` (oldest first, ``[ts, open, high, low, close, ...]``) by a data fault, in place."""
    if not rows:
        return
    i = fault.row if fault.row >= 0 else len(rows) + fault.row
    if not 0 <= i < len(rows):
        return
    if fault.fault is Fault.DUPLICATE:
        rows.insert(i + 1, list(rows[i]))
    elif fault.fault is Fault.OUT_OF_ORDER and i + 1 < len(rows):
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    elif fault.fault is Fault.GAP:
        del rows[i:i + fault.span]
    elif fault.fault is Fault.BAD_CANDLE:
        bad = list(rows[i])
        if fault.nan:
            bad[4] = "NaN"
        else:
            bad[2] = plain(min(float(bad[1]), float(bad[4])) * 0.9)  # high below open and close
        rows[i] = bad


class Venue:
    """In-memory markets (candles, rules) by an injected clock, a fault queue and a request log."""

    def __init__(self, markets: Mapping[str, CandleArrays], clock: Clock, timeframe: str, *,
                 retry_after_s: int = 1, hang_s: float = 30.0,
                 rules: Mapping[str, FakeMarketRules] | None = None) -> None:
        self.markets: dict[str, CandleArrays] = {}
        self.pairs: dict[str, tuple[str, str]] = {}  # symbol -> (base, quote)
        for key, arrays in markets.items():
            symbol, base, quote = parse_market_key(key)
            self.markets[symbol] = arrays
            self.pairs[symbol] = (base, quote)
        self.clock = clock
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.ticker_at = "now"  # "open": the ticker (so market fills too) at the open candle's open
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.requests = 0  # every HTTP request, any endpoint
        self.request_log: list[tuple[str, dict[str, str]]] = []  # (path, query) of each request
        self._faults: list[Injected] = []
        self._closing = asyncio.Event()
        self._rules: dict[str, FakeMarketRules] = {}
        for symbol, arrays in self.markets.items():
            reference = float(np.median(arrays.close)) if len(arrays) else None
            self._rules[symbol] = default_rules(self.pairs[symbol][1], reference)
        for key, market_rules in (rules or {}).items():
            self.set_rules(key, market_rules)

    # ------------------------------------------------------------------------------ rules

    def rules(self, symbol: str) -> FakeMarketRules:
        return self._rules[self._symbol(symbol)]

    def set_rules(self, symbol: str, rules: FakeMarketRules | None = None, **changes: Any) -> FakeMarketRules:
        """Replace a market's rules (``rules``), or change some of them (``set_rules("BTCUSDT", tick_size=0.1)``);
        the next request sees them. Returns the rules now in force."""
        key = self._symbol(symbol)
        new = dataclasses.replace(rules if rules is not None else self._rules[key], **changes)
        self._rules[key] = new
        return new

    def market_symbol(self, symbol: str) -> str:
        """The fake's key of a market (``"BTC/USDT"`` -> ``"BTCUSDT"``); KeyError if it serves none such."""
        return self._symbol(symbol)

    def _symbol(self, symbol: str) -> str:
        key = symbol.strip().upper().replace("/", "").replace("-", "").replace("_", "")
        if key not in self.markets:
            raise KeyError(f"no market {symbol!r}; the fake serves {', '.join(sorted(self.markets))}")
        return key

    # ------------------------------------------------------------------------------ fault API

    def inject(self, fault: Fault, times: int = 1, *, row: int = 0, span: int = 1, status: int | None = None,
               nan: bool = False, endpoint: str | None = None, delay_s: float = 1.0) -> None:
        """Make the next ``times`` requests of ``endpoint`` (after earlier faults injected for it) suffer ``fault``.

        ``endpoint``: None or ``"candles"`` (``"klines"``) as before, ``"ticker"``, ``"markets"`` (the exchange
        info / instruments), ``"time"``. Data faults (DUPLICATE, OUT_OF_ORDER, GAP, BAD_CANDLE) shape candle rows,
        so they are for candle requests only. ``row`` (python indexing over the rows oldest first, -1 = the newest,
        normally the open candle) and ``span`` place them; ``status`` overrides the HTTP status of SERVER_ERROR
        (5xx), RATE_LIMIT (429 or 418) and ERROR_AFTER_ACCEPT. ``endpoint="order"`` (new-order requests, Binance
        only) takes SERVER_ERROR, RATE_LIMIT, TIMEOUT (all before the order is made) and the order faults
        REJECT, DELAY (``delay_s``), HANG_AFTER_ACCEPT and ERROR_AFTER_ACCEPT, which are for it alone.
        ``endpoint="account"`` (the balances, ``/api/v3/account``) and ``"open_orders"`` (``/api/v3/openOrders``),
        Binance only, take SERVER_ERROR, RATE_LIMIT, TIMEOUT and MALFORMED_JSON.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(e for e in ENDPOINTS if e)}")
        where = ENDPOINTS[endpoint]
        if fault in DATA_FAULTS and where != CANDLES:
            raise ValueError(f"{fault.name} shapes candle rows: inject it for candle requests (endpoint=None)")
        if (fault in ORDER_FAULTS) != (where == ORDER) and fault not in (Fault.SERVER_ERROR, Fault.RATE_LIMIT,
                                                                          Fault.TIMEOUT):
            raise ValueError(f"{fault.name} is not a fault of {where} requests")
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self._faults.append(Injected(fault, times, row, span, status, nan, where, delay_s))

    @property
    def pending_faults(self) -> int:
        return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    def next_fault(self, endpoint: str = CANDLES) -> Injected | None:
        """The fault the next request of ``endpoint`` suffers (consumed), if one was injected."""
        for k, head in enumerate(self._faults):
            if head.endpoint == endpoint:
                head.remaining -= 1
                if head.remaining == 0:
                    self._faults.pop(k)
                return head
        return None

    async def hang(self) -> None:
        """A TIMEOUT fault: wait ``hang_s`` seconds, or until the server closes."""
        try:
            await asyncio.wait_for(self._closing.wait(), self.hang_s)
        except TimeoutError:
            pass

    def open(self) -> None:
        """Arm TIMEOUT hangs again (a server calls this when it starts)."""
        self._closing = asyncio.Event()

    def close(self) -> None:
        """Release requests hanging in a TIMEOUT fault."""
        self._closing.set()

    # ------------------------------------------------------------------------------ data

    def span(self, symbol: str, first_ms: int | None, last_ms: int | None) -> tuple[int, int]:
        """Indices ``[lo, hi)`` of the candles that have opened by now with ``first_ms <= ts <= last_ms``."""
        arrays = self.markets[symbol]
        now = self.clock.now_ms()
        lo = 0 if first_ms is None else int(np.searchsorted(arrays.ts, first_ms, side="left"))
        hi_ts = now if last_ms is None else min(now, last_ms)
        hi = int(np.searchsorted(arrays.ts, hi_ts, side="right"))
        return lo, max(lo, hi)

    def bar(self, symbol: str, i: int, now: int | None = None) -> Bar:
        """Candle ``i`` as it is at ``now``: still open, its values so far (interpolated, no look-ahead)."""
        arrays = self.markets[symbol]
        now = self.clock.now_ms() if now is None else now
        ts = int(arrays.ts[i])
        o, h, lo, c, v = (float(arrays.open[i]), float(arrays.high[i]), float(arrays.low[i]),
                          float(arrays.close[i]), float(arrays.volume[i]))
        if ts + self.step_ms > now:  # still open: values so far, like an exchange's live row
            frac = max(0.0, (now - ts) / self.step_ms)
            c = o + (c - o) * frac
            h, lo, v = max(o, c), min(o, c), v * frac
            return Bar(ts, o, h, lo, c, v, False)
        return Bar(ts, o, h, lo, c, v, True)

    def price(self, symbol: str) -> float | None:
        """The ticker price now: the close so far of the newest candle that has opened (None before any); its open
        with ``ticker_at = "open"`` (a run whose market orders fill where a paper fill does, for parity tests)."""
        lo, hi = self.span(symbol, None, None)
        if hi <= lo:
            return None
        bar = self.bar(symbol, hi - 1)
        return bar.open if self.ticker_at == "open" else bar.close

    def open_at(self, symbol: str, ms: int) -> float | None:
        """The price at ``ms``: the open of the first candle opening at or after it (None if none has yet)."""
        lo, hi = self.span(symbol, ms, None)
        return None if hi <= lo else float(self.markets[symbol].open[lo])

    def window(self, symbol: str, length_ms: int) -> Window | None:
        """Statistics of the candles that opened in the last ``length_ms`` (None if none did)."""
        now = self.clock.now_ms()
        lo, hi = self.span(symbol, now - length_ms + 1, None)
        if hi <= lo:
            return None
        bars = [self.bar(symbol, i, now) for i in range(lo, hi)]
        return Window(bars[0].open, max(b.high for b in bars), min(b.low for b in bars), sum(b.volume for b in bars),
                      sum(b.volume * b.close for b in bars), len(bars))


Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]


class PersonalityApi(ABC):
    """One exchange's HTTP dialect over a :class:`Venue`."""

    name: str

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    @abstractmethod
    def routes(self) -> list[tuple[str, Handler]]:
        """(path, GET handler) of every endpoint served."""

    @abstractmethod
    def server_error(self, status: int) -> web.Response:
        """The answer of a SERVER_ERROR fault."""

    @abstractmethod
    def rate_limited(self, status: int) -> web.Response:
        """The answer of a RATE_LIMIT fault (Retry-After is added)."""

    async def begin(self, endpoint: str) -> tuple[web.Response | None, Injected | None]:
        """Consume the next fault of ``endpoint``: an answer that replaces the normal one (5xx, 429), a hang
        (TIMEOUT, then the normal answer), or the fault to apply to the answer (MALFORMED_JSON, data faults)."""
        fault = self.venue.next_fault(endpoint)
        if fault is None:
            return None, None
        if fault.fault is Fault.SERVER_ERROR:
            return self.server_error(fault.status or 500), fault
        if fault.fault is Fault.RATE_LIMIT:
            response = self.rate_limited(fault.status or 429)
            response.headers["Retry-After"] = str(self.venue.retry_after_s)
            return response, fault
        if fault.fault is Fault.TIMEOUT:
            await self.venue.hang()
        return None, fault

    @staticmethod
    def answer(payload: Any, fault: Injected | None, status: int = 200) -> web.Response:
        """``payload`` as JSON, or cut in half for a MALFORMED_JSON fault."""
        if fault is not None and fault.fault is Fault.MALFORMED_JSON:
            text = json.dumps(payload)
            return web.Response(text=text[: max(1, len(text) // 2)], content_type="application/json")
        return web.json_response(payload, status=status)
