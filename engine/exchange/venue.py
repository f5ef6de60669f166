"""The exchange the worker trades on: one ccxt instance shared by every feed (one rate limiter, one markets
load), its markets cached with a TTL, symbols resolved as the user wrote them, and the calls the engine makes.

A symbol is accepted in ccxt's unified form (``BTC/USDT``), as the exchange's own id (``BTCUSDT`` on Binance,
``BTC-USDT`` on OKX), or as base and quote run together (``BTCUSDT`` anywhere); the engine keeps it as written.
"""

from __future__ import annotations

import asyncio
import difflib
import math
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from engine.core.rules import MarketRules
from engine.core.types import Candle
from engine.errors import ConfigError, ExchangeError, ExchangeUnavailable
from engine.exchange import client
from engine.exchange.client import ExchangeSpec, Sleep
from engine.exchange.loader import async_support

log = structlog.get_logger(__name__)

MARKETS_TTL_S = 3600.0  # markets (and their rules) are read again after this long
DEFAULT_PAGE = 500  # candles per request where ccxt does not say the exchange's maximum


def _compact(symbol: str) -> str:
    return "".join(ch for ch in symbol.upper() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Market:
    """One spot market as the agent uses it."""

    symbol: str  # ccxt's unified symbol, e.g. BTC/USDT
    id: str  # the exchange's own id, e.g. BTCUSDT or BTC-USDT
    base: str
    quote: str
    active: bool
    rules: MarketRules


def _step(value: Any, tick_size: bool) -> float:
    """ccxt's precision as a step: with TICK_SIZE (``tick_size``) it is the step; with DECIMAL_PLACES a number of
    digits."""
    if value is None:
        return 0.0
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        return 0.0
    return v if tick_size else 10.0 ** -v


def _limit(market: Mapping[str, Any], kind: str) -> float:
    raw = ((market.get("limits") or {}).get(kind) or {}).get("min")
    try:
        value = float(raw) if raw is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def rules_from_market(symbol: str, market: Mapping[str, Any], *, tick_size: bool) -> MarketRules:
    """The rules of a ccxt market (``exchange.markets[s]``) for the agent's ``symbol``; ``tick_size``: the exchange's
    ``precisionMode`` is ccxt's TICK_SIZE (else DECIMAL_PLACES)."""
    precision = market.get("precision") or {}
    return MarketRules(symbol=symbol, amount_step=_step(precision.get("amount"), tick_size),
                       price_tick=_step(precision.get("price"), tick_size),
                       min_amount=_limit(market, "amount"), min_notional=_limit(market, "cost"),
                       base=str(market.get("base") or ""), quote=str(market.get("quote") or ""))


class Venue:
    """One exchange through ccxt. ``markets()`` loads (or reuses) the markets; the rest retry as ``client.call``."""

    def __init__(self, spec: ExchangeSpec, *, exchange: Any | None = None, attempts: int = 5,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 markets_ttl_s: float = MARKETS_TTL_S) -> None:
        self.spec = spec
        self.exchange = exchange if exchange is not None else client.create(spec)
        self.id: str = self.exchange.id
        self.name: str = str(getattr(self.exchange, "name", self.id) or self.id)
        self.attempts = attempts
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.markets_ttl_s = markets_ttl_s
        self._loaded_at: float | None = None
        self._load_lock = asyncio.Lock()
        self._resolved: dict[str, Market] = {}

    # ---------------------------------------------------------------------------- static facts

    @property
    def timeframes(self) -> list[str]:
        return list((getattr(self.exchange, "timeframes", None) or {}).keys())

    @property
    def has_ohlcv(self) -> bool:
        return bool(self.exchange.has.get("fetchOHLCV"))

    def check_timeframe(self, timeframe: str) -> None:
        """ConfigError when the exchange has no such candle interval."""
        if not self.has_ohlcv:
            raise ConfigError(f"{self.id} has no candle (OHLCV) history in ccxt: pick another EXCHANGE")
        frames = self.timeframes
        if frames and timeframe not in frames:
            raise ConfigError(f"timeframe {timeframe!r} is not offered by {self.id}; it offers {', '.join(frames)}")

    def page_limit(self) -> int:
        """The most candles one request returns (ccxt's ``features``), else a safe default."""
        try:
            limit = self.exchange.features["spot"]["fetchOHLCV"]["limit"]
        except (AttributeError, KeyError, TypeError):
            return DEFAULT_PAGE
        return int(limit) if isinstance(limit, int | float) and limit > 0 else DEFAULT_PAGE

    # ---------------------------------------------------------------------------- markets

    @property
    def markets_loaded(self) -> bool:
        return self._loaded_at is not None

    async def load_markets(self, *, attempts: int | None = None, reload: bool = False) -> None:
        """Read the exchange's markets (one request on most exchanges), again once the TTL has passed."""
        async with self._load_lock:
            fresh = self._loaded_at is not None and time.monotonic() - self._loaded_at < self.markets_ttl_s
            if fresh and not reload:
                return
            await client.call(self.exchange, "load_markets", lambda: self.exchange.load_markets(reload=True),
                              attempts=attempts or self.attempts, sleep=self._sleep, rng=self._rng)
            self._loaded_at = time.monotonic()
            self._resolved.clear()
            log.info("markets_loaded", exchange=self.id, markets=len(self.exchange.markets or {}))

    def _spot_markets(self) -> Iterable[Mapping[str, Any]]:
        return (m for m in (self.exchange.markets or {}).values() if m.get("spot", True))

    def market(self, symbol: str) -> Market:
        """The market of the agent's ``symbol`` (markets must be loaded); ConfigError naming close matches."""
        found = self._resolved.get(symbol)
        if found is not None:
            return found
        markets: Mapping[str, Any] = self.exchange.markets or {}
        raw = markets.get(symbol) if "/" in symbol else None
        if raw is None:
            by_id = getattr(self.exchange, "markets_by_id", None) or {}
            candidates = by_id.get(symbol) or by_id.get(symbol.upper()) or []
            candidates = candidates if isinstance(candidates, list) else [candidates]
            raw = next((m for m in candidates if m.get("spot", True)), None)
        if raw is None:
            wanted = _compact(symbol)
            raw = next((m for m in self._spot_markets() if _compact(f"{m.get('base')}{m.get('quote')}") == wanted),
                       None)
        if raw is None:
            names = sorted(str(m["symbol"]) for m in self._spot_markets())
            close = difflib.get_close_matches(symbol.upper(), names, n=3, cutoff=0.5) or difflib.get_close_matches(
                _compact(symbol), [_compact(n) for n in names], n=3, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ConfigError(f"{symbol} is not a spot market on {self.id}{hint}")
        tick_size = async_support().TICK_SIZE
        found = Market(symbol=str(raw["symbol"]), id=str(raw.get("id") or raw["symbol"]), base=str(raw.get("base")),
                       quote=str(raw.get("quote")), active=raw.get("active") is not False,
                       rules=rules_from_market(symbol, raw, tick_size=getattr(self.exchange, "precisionMode",
                                                                              tick_size) == tick_size))
        self._resolved[symbol] = found
        return found

    def rules(self, symbol: str) -> MarketRules:
        return self.market(symbol).rules

    # ---------------------------------------------------------------------------- data

    async def ohlcv(self, symbol: str, timeframe: str, since: int, limit: int,
                    attempts: int | None = None) -> list[Candle]:
        """Up to ``limit`` candles from ``since`` (open time, ms), as the exchange sent them (not validated)."""
        market = self.market(symbol)

        async def fetch() -> list[Candle]:
            rows = await self.exchange.fetch_ohlcv(market.symbol, timeframe, since=since, limit=limit)
            if not isinstance(rows, list):
                raise ValueError(f"the answer is not a list of candles: {str(rows)[:80]}")
            return [_candle(row) for row in rows]  # a malformed row: ValueError, retried as a bad response

        candles: list[Candle] = await client.call(self.exchange, f"fetch_ohlcv {market.symbol} {timeframe}", fetch,
                                                  attempts=attempts or self.attempts, sleep=self._sleep,
                                                  rng=self._rng)
        return candles

    async def last_price(self, symbol: str, attempts: int = 1) -> float:
        """The latest traded price (ccxt's ticker ``last``, else ``close``); ExchangeError when it has none."""
        market = self.market(symbol)
        ticker: Any = await client.call(self.exchange, f"fetch_ticker {market.symbol}",
                                        lambda: self.exchange.fetch_ticker(market.symbol), attempts=attempts,
                                        sleep=self._sleep, rng=self._rng)
        price = ticker.get("last") if isinstance(ticker, dict) else None
        if price is None and isinstance(ticker, dict):
            price = ticker.get("close")
        try:
            value = float(price) if price is not None else math.nan
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise ExchangeError(f"{self.id} ticker of {market.symbol} has no price")
        return value

    async def server_time(self) -> int:
        """The exchange's clock in ms (ccxt's ``fetch_time``)."""
        value: Any = await client.call(self.exchange, "fetch_time", self.exchange.fetch_time, attempts=3,
                                       sleep=self._sleep, rng=self._rng)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ExchangeUnavailable(f"{self.id} fetch_time: the answer is not a time")
        return int(value)

    async def close(self) -> None:
        await self.exchange.close()


def _candle(row: Any) -> Candle:
    """A ccxt OHLCV row to a Candle; a missing value becomes NaN (``validate`` rejects the candle)."""
    if not isinstance(row, list | tuple) or len(row) < 6 or isinstance(row[0], bool) or row[0] is None:
        raise ValueError(f"malformed candle from the exchange: {str(row)[:80]}")
    values = [math.nan if v is None else float(v) for v in row[1:6]]
    return Candle(int(row[0]), values[0], values[1], values[2], values[3], values[4])
