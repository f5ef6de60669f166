"""A client of the Binance-style public market-data REST API (``GET /api/v3/klines``, and
``GET /api/v3/ticker/price`` for the latest price between candles).

Rows are ``[open_time, "open", "high", "low", "close", "volume", close_time, ...]``. The feed pages
with ``limit=1000`` until caught up, keeps only CLOSED candles by its injected clock and validates
them (``engine.feeds.base.validate``).

Retries: 5xx, timeouts, connection errors, malformed JSON and malformed rows are retried after
``min(2**attempt, 60)`` seconds plus up to 25 % jitter (``attempt`` = 1-based number of the failed
attempt, so 2 s, 4 s, 8 s, ...). HTTP 429 and 418 wait exactly the ``Retry-After`` seconds (backoff
when the header is missing). Other 4xx raise :class:`FeedError` at once. After ``max_attempts``
failed attempts the feed raises :class:`FeedUnavailable` (a FeedError that is retryable). Logs name
the endpoint, never the query string.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from engine.core.clock import Clock, LiveClock, OffsetClock
from engine.core.types import Candle, timeframe_ms
from engine.errors import FeedUnavailable
from engine.feeds.base import DEFAULT_HISTORY, MAX_BATCH, FeedBatch, FeedError, Tick, last_closed_ts, validate

log = structlog.get_logger(__name__)

KLINES_PATH = "/api/v3/klines"
TICKER_PATH = "/api/v3/ticker/price"
PAGE_LIMIT = 1000
MAX_BACKOFF_S = 60.0
JITTER_FRACTION = 0.25
MAX_RETRY_AFTER_S = 600.0  # a longer ban (418) is reported instead of slept through

Sleep = Callable[[float], Awaitable[None]]


class _Retryable(Exception):
    """One attempt failed in a way worth retrying; ``retry_after`` overrides the backoff."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Delay after the ``attempt``-th (1-based) failure: ``min(2**attempt, 60)`` plus 0-25 % jitter."""
    base = min(2.0**attempt, MAX_BACKOFF_S)
    return base + rng.uniform(0.0, base * JITTER_FRACTION)


def parse_row(row: Any) -> Candle:
    """One kline row to a Candle; ValueError when the row is not shaped like a kline."""
    if not isinstance(row, list) or len(row) < 6:
        raise ValueError(f"kline row is not a list of >= 6 fields: {str(row)[:80]}")
    ts = row[0]
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError(f"kline open time is not an integer: {str(ts)[:40]}")
    values: list[float] = []
    for field in row[1:6]:
        if isinstance(field, bool) or not isinstance(field, str | int | float):
            raise ValueError(f"kline field is not a number: {str(field)[:40]}")
        values.append(float(field))  # may raise ValueError; "NaN" parses and is judged by validate()
    return Candle(ts, values[0], values[1], values[2], values[3], values[4])


def parse_rows(data: Any) -> list[Candle]:
    if not isinstance(data, list):
        raise ValueError(f"klines payload is not a list: {str(data)[:80]}")
    return [parse_row(row) for row in data]


def parse_ticker(data: Any) -> float:
    """The price of a ``/api/v3/ticker/price`` answer (``{"symbol": ..., "price": "..."}``); ValueError
    when it is not shaped like one or the price is not a positive finite number."""
    if not isinstance(data, dict) or not isinstance(data.get("price"), str | int | float) \
            or isinstance(data.get("price"), bool):
        raise ValueError(f"ticker payload has no price: {str(data)[:80]}")
    price = float(data["price"])
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"ticker price is not a positive number: {str(data['price'])[:40]}")
    return price


def _retry_after_seconds(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _error_message(body: str) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:120]
    if isinstance(payload, dict) and "msg" in payload:
        return f"{payload.get('msg')} (code {payload.get('code')})"
    return body[:120]


class ExchangeFeed:
    """Closed candles of one symbol and timeframe from a Binance-style REST API."""

    synthetic = False

    def __init__(self, base_url: str, symbol: str, timeframe: str, clock: Clock,
                 session: aiohttp.ClientSession | None = None, timeout_s: float = 10.0,
                 max_attempts: int = 5, sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 history: int = DEFAULT_HISTORY, ready: Callable[[], bool] | None = None) -> None:
        """``ready``: False while ``clock`` cannot be trusted yet (the exchange's time has not been read since
        start); the feed then delivers nothing, so no candle is taken for closed by a guessed clock."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if history < 1:
            raise ValueError("history must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.symbol = symbol.upper()
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.clock = clock
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.history = history
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._session = session
        self._owns_session = session is None
        self._ready = ready

    def _check_ready(self) -> None:
        if self._ready is not None and not self._ready():
            raise FeedUnavailable("waiting for the exchange: it has not answered since start, so its clock is "
                                  "not known")

    # ------------------------------------------------------------------------------------ port

    async def poll(self, after_ts: int | None) -> FeedBatch:
        """Closed candles with ts > after_ts (the last ``history`` closed ones when None), validated.

        After ``after_ts``, paging stops once a batch holds ``MAX_BATCH`` candles (``more`` says so)."""
        self._check_ready()
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
            page = await self._fetch_page(cursor, now, PAGE_LIMIT)
            raw.extend(page)
            cursor = self._next_cursor(page, cursor)
        more = after_ts is not None and cursor is not None and cursor <= newest
        closed = [c for c in raw if c.ts + self.step_ms <= now]
        batch = validate(closed, after_ts, self.timeframe, symbol=self.symbol, more=more)
        if after_ts is None and len(batch.candles) > self.history:  # never ``more``: history is not cut
            batch = FeedBatch(batch.candles[-self.history:], batch.rejected)
        return batch

    async def fetch_range(self, start_ms: int, end_ms: int, limit: int = PAGE_LIMIT) -> AsyncIterator[FeedBatch]:
        """Closed candles with ``start_ms <= ts < end_ms``, one validated batch per page, oldest first."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be in 1..{PAGE_LIMIT}")
        cursor = start_ms
        prev: int | None = None
        while cursor < end_ms:
            now = self.clock.now_ms()
            page = await self._fetch_page(cursor, end_ms - 1, limit)
            if not page:
                return
            wanted = [c for c in page if start_ms <= c.ts < end_ms and c.ts + self.step_ms <= now]
            batch = validate(wanted, prev, self.timeframe, symbol=self.symbol)
            if batch.candles:
                prev = batch.candles[-1].ts
            yield batch
            next_cursor = self._next_cursor(page, cursor)
            if next_cursor is None:
                return
            cursor = next_cursor

    def _next_cursor(self, page: list[Candle], cursor: int) -> int | None:
        """Start of the next page: the grid point after the page's newest row (None: nothing more).

        Paging goes on until caught up rather than stopping at a short page, so a page with rows
        missing (an exchange hiccup) does not end a catch-up or a download early.
        """
        if not page:
            return None
        newest = max(c.ts for c in page)
        nxt = (newest // self.step_ms + 1) * self.step_ms
        if nxt <= cursor:  # the server ignored startTime: do not loop forever
            log.warning("feed.paging_stuck", symbol=self.symbol, cursor=cursor, newest=newest)
            return None
        return nxt

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def ticker(self) -> Tick:
        """The exchange's latest price (``/api/v3/ticker/price``), timed when it arrived (by the feed's
        clock: Binance's ticker carries no time). One attempt: the caller asks again on its schedule."""
        self._check_ready()
        price: float = await self._get_json(TICKER_PATH, {"symbol": self.symbol}, parse_ticker, attempts=1)
        return Tick(price, self.clock.now_ms())

    async def server_time(self) -> int:
        """The exchange's clock (``/api/v3/time``), with the same retries as klines."""
        data = await self._get_json("/api/v3/time", {})
        if not isinstance(data, dict) or not isinstance(data.get("serverTime"), int):
            raise FeedError(f"{self.symbol}: malformed /api/v3/time payload")
        return int(data["serverTime"])

    # ------------------------------------------------------------------------------------ HTTP

    async def _fetch_page(self, start_ms: int, end_ms: int, limit: int) -> list[Candle]:
        params = {"symbol": self.symbol, "interval": self.timeframe, "startTime": str(start_ms),
                  "endTime": str(end_ms), "limit": str(limit)}
        candles: list[Candle] = await self._get_json(KLINES_PATH, params, parse_rows)
        return candles

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _get_json(self, path: str, params: dict[str, str],
                        parse: Callable[[Any], Any] = lambda data: data, attempts: int | None = None) -> Any:
        """GET ``path`` with retries (``attempts``, the feed's ``max_attempts`` by default); the parsed
        payload, or FeedError."""
        max_attempts = attempts or self.max_attempts
        reason = "no attempt made"
        for attempt in range(1, max_attempts + 1):
            try:
                return await self._attempt(path, params, parse)
            except _Retryable as exc:
                reason = exc.reason
                retry_after = exc.retry_after
            if attempt == max_attempts:
                break
            delay = retry_after if retry_after is not None else backoff_delay(attempt, self._rng)
            log.warning("feed.retry", endpoint=path, symbol=self.symbol, attempt=attempt,
                        max_attempts=max_attempts, delay_s=round(delay, 3), reason=reason)
            await self._sleep(delay)
        tries = f"after {max_attempts} attempts" if max_attempts > 1 else "(one attempt)"
        raise FeedUnavailable(f"{self.symbol} {self.timeframe}: {path} failed {tries}: {reason}")

    async def _attempt(self, path: str, params: dict[str, str], parse: Callable[[Any], Any]) -> Any:
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with session.get(self.base_url + path, params=params, timeout=timeout) as resp:
                status = resp.status
                body = await resp.text()
                retry_header = resp.headers.get("Retry-After")
        except TimeoutError:
            raise _Retryable(f"timeout after {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Retryable(f"connection error: {type(exc).__name__}") from None
        if status in (429, 418):
            wait = _retry_after_seconds(retry_header)
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                raise FeedUnavailable(f"{self.symbol}: HTTP {status}, exchange asks to wait {wait:g} s")
            raise _Retryable(f"HTTP {status} (rate limited, Retry-After {retry_header})", wait)
        if status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status >= 400:
            raise FeedError(f"{self.symbol} {self.timeframe}: HTTP {status} from {path}: {_error_message(body)}")
        if status != 200:
            raise _Retryable(f"unexpected HTTP {status}")
        try:
            return parse(json.loads(body))
        except (ValueError, OverflowError) as exc:
            raise _Retryable(f"malformed response: {str(exc)[:120]}") from None


async def exchange_clock(base_url: str, *, session: aiohttp.ClientSession | None = None) -> OffsetClock:
    """A clock that follows the exchange's ``/api/v3/time`` (Binance's, or the fake exchange's scaled
    time), so that "now", "closed" and "the last N days" mean what the exchange means."""
    probe = ExchangeFeed(base_url, "BTCUSDT", "1m", LiveClock(), session=session, max_attempts=3)
    try:
        before = time.time_ns() // 1_000_000
        server = await probe.server_time()
        after = time.time_ns() // 1_000_000
    finally:
        await probe.close()
    return OffsetClock(server - (before + after) // 2)
