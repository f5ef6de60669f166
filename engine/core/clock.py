"""Clocks: the only source of time for the engine. The decision path never reads the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time, integer ms since the Unix epoch, UTC."""
        ...


class LiveClock:
    """Wall-clock time, for the live loop."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SimClock:
    """A clock that only moves when told to: backtests and tests."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, ms: int) -> None:
        self._now = ms

    def advance(self, ms: int) -> None:
        self._now += ms


class OffsetClock:
    """Wall-clock time shifted by a fixed offset: the exchange's clock as measured once at start-up."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


class ScaledClock:
    """Candle time that starts at ``start_ms`` and runs ``speed`` times faster than wall time."""

    def __init__(self, start_ms: int, speed: float = 1.0, wall: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.start_ms = start_ms
        self.speed = speed
        self._wall = wall
        self._wall0 = wall()

    def now_ms(self) -> int:
        return self.start_ms + int((self._wall() - self._wall0) * 1000.0 * self.speed)
