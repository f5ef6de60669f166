"""Closed candles of one symbol from any exchange ccxt knows, through the worker's ``engine.exchange.Venue``.

ccxt speaks the exchange's protocol; this feed keeps what ccxt does not do: paging until caught up, keeping
only CLOSED candles by the injected clock, validating them (``engine.feeds.base.validate``), and retries
(``engine.exchange.client.call``: ``min(2**attempt, 60)`` s plus up to 25 % jitter on network errors, rate
limits, an exchange not available and malformed answers; ``Retry-After`` honoured). What retrying cannot fix
(a symbol the exchange does not list, a refused request) is a :class:`FeedError` at once; after
``max_attempts`` failed attempts, :class:`FeedUnavailable`. Logs name the call, never a query string.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable

import structlog

from engine.core.clock import Clock, OffsetClock
from engine.core.rules import MarketRules
from engine.core.types import Candle, timeframe_ms
from engine.errors import ConfigError, ExchangeError, ExchangeUnavailable, FeedUnavailable
from engine.exchange.client import ExchangeSpec, Sleep, backoff_delay
from engine.exchange.venue import Venue
from engine.feeds.base import DEFAULT_HISTORY, MAX_BATCH, FeedBatch, FeedError, Tick, last_closed_ts, validate

log = structlog.get_logger(__name__)

__all__ = ["ExchangeFeed", "Sleep", "backoff_delay", "exchange_clock"]


class ExchangeFeed:
    """Closed candles of one symbol and timeframe from ``venue`` (or, given a URL, a Binance-protocol venue there)."""

    synthetic = False

    def __init__(self, venue: Venue | str, symbol: str, timeframe: str, clock: Clock, *,
                 max_attempts: int = 5, sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 history: int = DEFAULT_HISTORY, ready: Callable[[], bool] | None = None,
                 timeout_s: float = 10.0) -> None:
        """``ready``: False while ``clock`` cannot be trusted yet (the exchange's time has not been read since
        start); the feed then delivers nothing, so no candle is taken for closed by a guessed clock."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if history < 1:
            raise ValueError("history must be >= 1")
        # given a URL, the feed makes (and, closing, re-makes) a venue of its own
        self._own_venue: Callable[[], Venue] | None = None
        if isinstance(venue, str):
            spec = ExchangeSpec("binance", base_url=venue, timeout_s=timeout_s)

            def make() -> Venue:
                return Venue(spec, attempts=max_attempts, sleep=sleep, rng=rng)

            self._own_venue = make
            venue = make()
        self.venue = venue
        self.symbol = symbol
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.clock = clock
        self.max_attempts = max_attempts
        self.history = history
        self._ready = ready
        self._page = 0

    def _check_ready(self) -> None:
        if self._ready is not None and not self._ready():
            raise FeedUnavailable("waiting for the exchange: it has not answered since start, so its clock is "
                                  "not known")

    async def _market_ready(self) -> None:
        """The venue's markets loaded (at most once per TTL) and this symbol among them."""
        try:
            await self.venue.load_markets(attempts=self.max_attempts)
            self.venue.market(self.symbol)
        except ExchangeUnavailable as exc:
            raise FeedUnavailable(str(exc)) from None
        except (ExchangeError, ConfigError) as exc:
            raise FeedError(str(exc)) from None
        if not self._page:
            self._page = self.venue.page_limit()

    async def _fetch_page(self, start_ms: int, limit: int) -> list[Candle]:
        try:
            return await self.venue.ohlcv(self.symbol, self.timeframe, start_ms, limit, attempts=self.max_attempts)
        except ExchangeUnavailable as exc:
            raise FeedUnavailable(f"{self.symbol} {self.timeframe}: {exc}") from None
        except (ExchangeError, ConfigError) as exc:
            raise FeedError(f"{self.symbol} {self.timeframe}: {exc}") from None

    # ------------------------------------------------------------------------------------ port

    async def poll(self, after_ts: int | None) -> FeedBatch:
        """Closed candles with ts > after_ts (the last ``history`` closed ones when None), validated.

        After ``after_ts``, paging stops once a batch holds ``MAX_BATCH`` candles (``more`` says so)."""
        self._check_ready()
        await self._market_ready()
        now = self.clock.now_ms()
        newest = last_closed_ts(now, self.timeframe)
        if after_ts is None:
            start = newest - (self.history - 1) * self.step_ms
        else:
            start = after_ts + 1
        if start > newest:
            return FeedBatch(())
        raw: list[Candle] = []
        cursor: int | None = start
        while cursor is not None and cursor <= newest:
            if after_ts is not None and len(raw) >= MAX_BATCH:
                break
            page = await self._fetch_page(cursor, self._page)
            raw.extend(page)
            cursor = self._next_cursor(page, cursor, self._page)
        more = after_ts is not None and cursor is not None and cursor <= newest
        closed = [c for c in raw if c.ts + self.step_ms <= now and c.ts <= newest]
        batch = validate(closed, after_ts, self.timeframe, symbol=self.symbol, more=more)
        if after_ts is None and len(batch.candles) > self.history:  # never ``more``: history is not cut
            batch = FeedBatch(batch.candles[-self.history:], batch.rejected)
        return batch

    async def fetch_range(self, start_ms: int, end_ms: int, limit: int | None = None) -> AsyncIterator[FeedBatch]:
        """Closed candles with ``start_ms <= ts < end_ms``, one validated batch per page, oldest first."""
        await self._market_ready()
        page_limit = self._page if limit is None else limit
        if not 1 <= page_limit <= self._page:
            raise ValueError(f"limit must be in 1..{self._page}")
        cursor = start_ms
        prev: int | None = None
        while cursor < end_ms:
            now = self.clock.now_ms()
            if cursor > last_closed_ts(now, self.timeframe):
                return  # nothing after this is closed yet
            page = await self._fetch_page(cursor, page_limit)
            wanted = [c for c in page if start_ms <= c.ts < end_ms and c.ts + self.step_ms <= now]
            batch = validate(wanted, prev, self.timeframe, symbol=self.symbol)
            if batch.candles:
                prev = batch.candles[-1].ts
            yield batch
            next_cursor = self._next_cursor(page, cursor, page_limit)
            if next_cursor is None:
                return
            cursor = next_cursor

    def _next_cursor(self, page: list[Candle], cursor: int, limit: int) -> int | None:
        """Start of the next page: the grid point after the page's newest row (None: nothing more).

        Paging goes on until caught up rather than stopping at a short page, so a page with rows
        missing (an exchange hiccup) does not end a catch-up or a download early. An empty page moves on by a
        page's span: exchanges that serve a time window (OKX) answer nothing for a window before their history
        starts, where Binance-like ones answer the first candles after ``since``.
        """
        if not page:
            return cursor + limit * self.step_ms
        newest = max(c.ts for c in page)
        nxt = (newest // self.step_ms + 1) * self.step_ms
        if nxt <= cursor:  # the server ignored startTime: do not loop forever
            log.warning("feed.paging_stuck", symbol=self.symbol, cursor=cursor, newest=newest)
            return None
        return nxt

    async def close(self) -> None:
        """Close a venue this feed made for itself (a shared one is the worker's to close). The feed stays usable:
        a later call opens a new connection, as after a restart of the loop."""
        if self._own_venue is not None:
            old, self.venue, self._page = self.venue, self._own_venue(), 0
            await old.close()

    async def ticker(self) -> Tick:
        """The exchange's latest price, timed when it arrived (by the feed's clock). One attempt: the caller asks
        again on its schedule."""
        self._check_ready()
        await self._market_ready()
        try:
            price = await self.venue.last_price(self.symbol, attempts=1)
        except ExchangeUnavailable as exc:
            raise FeedUnavailable(f"{self.symbol}: {exc}") from None
        except ExchangeError as exc:
            raise FeedError(f"{self.symbol}: {exc}") from None
        return Tick(price, self.clock.now_ms())

    def rules(self) -> MarketRules | None:
        """The exchange's rules for this market, once the venue has read its markets (and again after their TTL)."""
        if not self.venue.markets_loaded:
            return None
        try:
            return self.venue.rules(self.symbol)
        except ConfigError:
            return None  # not listed: poll says so

    async def server_time(self) -> int:
        """The exchange's clock, with retries."""
        try:
            return await self.venue.server_time()
        except ExchangeUnavailable as exc:
            raise FeedUnavailable(str(exc)) from None
        except ExchangeError as exc:
            raise FeedError(str(exc)) from None


async def exchange_clock(venue: Venue) -> OffsetClock:
    """A clock that follows the exchange's time (Binance's, or the fake exchange's scaled time), so that "now",
    "closed" and "the last N days" mean what the exchange means."""
    before = time.time_ns() // 1_000_000
    try:
        server = await venue.server_time()
    except ExchangeError as exc:
        raise FeedUnavailable(str(exc)) from None
    after = time.time_ns() // 1_000_000
    return OffsetClock(server - (before + after) // 2)
