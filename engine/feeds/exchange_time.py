"""The exchange's clock: with ``feed.source = "exchange"`` the worker follows the exchange's time (fetch_time).

``ExchangeTime`` is measured at start-up and re-measured periodically (``keep_in_sync``), its rate too (as a
lower bound, so the clock lags rather than leads), so a fake exchange running faster than wall time
(``python -m sim.exchange --speed 600``) is followed as well as Binance itself. An exchange that does not
answer at start is one warning line, not a failed start: the clock is then ``unsynced`` and the exchange
feeds deliver nothing until it answers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import structlog

from engine.errors import ExchangeError
from engine.feeds.base import FeedError

log = structlog.get_logger(__name__)


class TimeSource(Protocol):
    """What the clock samples: the exchange's time in ms (``Venue.server_time``)."""

    async def server_time(self) -> int: ...


class ExchangeTime:
    """A clock following the exchange's time: a lower bound of the exchange's time, never ahead.

    Each sample is (server time, wall time before the request, wall time after it). The rate is the
    best lower bound ``(S_n - S_i) / (after_n - before_i)`` seen since start-up, over the last ``ANCHORS`` samples
    i (it tightens as the baseline grows; a clock that stood still for a while, as a fake exchange held at its
    start, is followed at its rate once it runs), and "now" is extrapolated from the best sample's *after* time: both
    errors make the clock lag, never lead (a leading clock would take the exchange's open candle for
    a closed one). Against a real exchange the rate bound is within 2 % of 1 and taken as exactly 1:
    the OffsetClock of ``exchange_clock``, re-synced now and then. Against the fake exchange's scaled
    time (``--speed``) the rate converges to its speed. Never goes backwards."""

    def __init__(self, server_ms: int, before_ms: int, after_ms: int, *,
                 wall: Callable[[], int] | None = None, synced: bool = True) -> None:
        self._now_wall = wall or self.wall_ms
        self._anchors: deque[tuple[int, int]] = deque([(server_ms, before_ms)], maxlen=ANCHORS)
        self._server = server_ms
        self._wall = after_ms
        self.rate = 1.0
        self._low = 0.0
        self._last = 0
        self.synced = synced

    @classmethod
    def unsynced(cls, wall: Callable[[], int] | None = None) -> ExchangeTime:
        """The exchange has not answered yet: the wall clock stands in (for timestamps only: the exchange feeds
        deliver nothing until ``synced``) and the first sample replaces it, even backwards."""
        now = (wall or cls.wall_ms)()
        return cls(now, now, now, wall=wall, synced=False)

    def ready(self) -> bool:
        return self.synced

    @staticmethod
    def wall_ms() -> int:
        return time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        now = self._server + int((self._now_wall() - self._wall) * self.rate)
        if now < self._last:
            return self._last
        self._last = now
        return now

    def resync(self, server_ms: int, before_ms: int, after_ms: int) -> None:
        if not self.synced:  # the first answer since start: the exchange's time replaces the stand-in
            self._anchors = deque([(server_ms, before_ms)], maxlen=ANCHORS)
            self._server, self._wall, self._last, self.synced = server_ms, after_ms, 0, True
            return
        for s0, b0 in self._anchors:  # each earlier sample bounds the rate since it: keep the best bound
            span = after_ms - b0
            if span >= MIN_SPAN_MS and server_ms > s0:
                self._low = max(self._low, (server_ms - s0) / span)
        self.rate = 1.0 if abs(self._low - 1.0) < 0.02 else self._low
        self._anchors.append((server_ms, before_ms))
        # both are lower bounds of the exchange's time at after_ms: keep the better one (a slow request
        # gives a poor sample)
        previous = self._server + int((after_ms - self._wall) * self.rate)
        self._server, self._wall = max(server_ms, previous), after_ms

    @property
    def resync_every_s(self) -> float:
        return 60.0 if self.rate == 1.0 else 1.0


ANCHORS = 32  # the earlier samples the rate is bounded against (the first of them: since start-up)
MIN_SPAN_MS = 200  # a shorter baseline's bound would be mostly the server's millisecond rounding
EXCHANGE_RETRY_MAX_S = 30.0  # the longest pause between attempts to reach an exchange that was down at start


async def _server_time(feed: TimeSource) -> tuple[int, int, int]:
    before = ExchangeTime.wall_ms()
    server = int(await feed.server_time())
    return server, before, ExchangeTime.wall_ms()


async def exchange_time(venue: TimeSource) -> ExchangeTime:
    """The exchange's clock, read from ``venue`` (keep it in sync with ``keep_in_sync(clock, venue)``). An exchange
    that does not answer is one warning line, not a failed start: the clock is then ``unsynced`` (the worker and
    its bot run, the exchange feeds deliver nothing) until ``keep_in_sync`` reaches the exchange."""
    try:
        return ExchangeTime(*await _server_time(venue))
    except (FeedError, ExchangeError) as exc:
        log.warning("exchange_unreachable", error=str(exc),
                    action="starting anyway: no trading until the exchange answers; retrying with backoff")
        return ExchangeTime.unsynced()


async def keep_in_sync(clock: ExchangeTime, probe: TimeSource) -> None:
    """Re-measure the exchange's time for ever (cancel to stop): soon after start (the rate), then every
    ``resync_every_s``; while the exchange has not answered since start, with backoff, saying when it is back."""
    pause = 0.25  # the first re-sync soon: it measures the rate
    failures = 0
    down_since = time.monotonic() if not clock.synced else None
    while True:
        await asyncio.sleep(pause)
        try:
            clock.resync(*await _server_time(probe))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            if clock.synced:
                log.warning("clock_resync_failed", error=f"{type(exc).__name__}: {exc}")
                pause = clock.resync_every_s
            else:
                log.info("exchange_still_unreachable", attempt=failures, error=f"{type(exc).__name__}: {exc}")
                pause = min(EXCHANGE_RETRY_MAX_S, 2.0 ** min(failures, 5)) * random.uniform(0.5, 1.0)
            continue
        if down_since is not None:
            log.info("exchange_recovered", down_s=round(time.monotonic() - down_since, 1))
            down_since = None
            pause = 0.25  # measure the rate soon, as after a start with the exchange up
            continue
        pause = clock.resync_every_s
