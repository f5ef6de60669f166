"""Clocks: the only source of time for the engine. The decision path never reads the wall clock."""

from __future__ import annotations

import time
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
