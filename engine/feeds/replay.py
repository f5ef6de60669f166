"""Replay a recorded candle series (CSV file or CandleArrays) as a live feed, by an injected clock."""

from __future__ import annotations

import os

import numpy as np
import structlog

from engine.core.clock import Clock
from engine.core.model import CandleArrays
from engine.core.rules import MarketRules
from engine.core.types import Candle, timeframe_ms
from engine.feeds.base import DEFAULT_HISTORY, FeedBatch, FeedError, Tick, cap_batch, validate
from engine.feeds.csvio import read_csv

log = structlog.get_logger(__name__)


def closed_window(ts: np.ndarray, after_ts: int | None, now_ms: int, step_ms: int, history: int) -> tuple[int, int]:
    """Index range [lo, hi) of the closed candles with ts > after_ts (the last ``history`` when None)."""
    hi = int(np.searchsorted(ts, now_ms - step_ms, side="right"))
    if after_ts is None:
        return max(0, hi - history), hi
    lo = int(np.searchsorted(ts, after_ts, side="right"))
    return min(lo, hi), hi


def candles_of(arrays: CandleArrays, lo: int, hi: int) -> list[Candle]:
    cols = zip(arrays.ts[lo:hi].tolist(), arrays.open[lo:hi].tolist(), arrays.high[lo:hi].tolist(),
               arrays.low[lo:hi].tolist(), arrays.close[lo:hi].tolist(), arrays.volume[lo:hi].tolist(),
               strict=True)
    return [Candle(t, o, h, lo_, c, v) for t, o, h, lo_, c, v in cols]


class ReplayFeed:
    """Serves the candles of a series that are closed at the clock's ``now_ms()``."""

    synthetic = False

    def __init__(self, arrays_or_path: CandleArrays | str | os.PathLike[str], symbol: str, timeframe: str,
                 clock: Clock, history: int = DEFAULT_HISTORY) -> None:
        if isinstance(arrays_or_path, CandleArrays):
            self.arrays = arrays_or_path
        else:
            self.arrays = read_csv(arrays_or_path, timeframe)
        self.symbol = symbol
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.clock = clock
        self.history = history

    async def poll(self, after_ts: int | None) -> FeedBatch:
        lo, hi = closed_window(self.arrays.ts, after_ts, self.clock.now_ms(), self.step_ms, self.history)
        hi, more = cap_batch(lo, hi, after_ts)
        return validate(candles_of(self.arrays, lo, hi), after_ts, self.timeframe, symbol=self.symbol, more=more)

    async def ticker(self) -> Tick:
        """The close of the newest closed candle, timed at its close: a replay knows no price in between."""
        hi = int(np.searchsorted(self.arrays.ts, self.clock.now_ms() - self.step_ms, side="right"))
        if hi == 0:
            raise FeedError(f"{self.symbol}: no closed candle yet")
        return Tick(float(self.arrays.close[hi - 1]), int(self.arrays.ts[hi - 1]) + self.step_ms, "close")

    def rules(self) -> MarketRules | None:
        """No exchange, no exchange rules."""
        return None

    async def close(self) -> None:
        return None
