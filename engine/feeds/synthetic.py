"""Deterministic synthetic candles: a seeded geometric random walk with realistic wicks and volume.

Candle ``i`` (open time ``start_ms + i * step``) depends only on (seed, start_ms, timeframe,
start_price, i): the walk is generated in fixed blocks of ``BLOCK`` candles, each from its own
``numpy`` generator seeded with ``(seed, block)``, and the log price carried between blocks is always
summed in the same order. So a candle is the same whenever and however often it is polled.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from engine.core.clock import Clock
from engine.core.model import CandleArrays
from engine.core.rules import MarketRules
from engine.core.types import DAY_MS, timeframe_ms
from engine.feeds.base import DEFAULT_HISTORY, FeedBatch, FeedError, Tick, cap_batch, validate
from engine.feeds.replay import candles_of

BLOCK = 1024
DAILY_VOL = 0.03  # log-return standard deviation per day
WICK_SCALE = 0.6  # wick length in units of the per-candle volatility
BASE_VOLUME = 10.0  # mean volume of a 1-day candle is about BASE_VOLUME * 1440
DEFAULT_START_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


class SyntheticSeries:
    """The walk itself: candles by index, generated lazily block by block and cached."""

    def __init__(self, seed: int, start_ms: int, timeframe: str, start_price: float) -> None:
        if not (start_price > 0 and math.isfinite(start_price)):
            raise ValueError("start_price must be a positive number")
        self.seed = seed
        self.start_ms = start_ms
        self.step_ms = timeframe_ms(timeframe)
        self.start_price = start_price
        self.sigma = DAILY_VOL * math.sqrt(self.step_ms / DAY_MS)
        self.mean_volume = BASE_VOLUME * self.step_ms / 60_000
        self._carry: list[float] = [0.0]  # cumulative log return before block k
        self._blocks: dict[int, np.ndarray] = {}

    def _raw(self, k: int) -> np.ndarray:
        """(4, BLOCK) standard draws of block k: return, upper wick, lower wick, volume."""
        rng = np.random.default_rng([self.seed, k])
        draws = np.empty((4, BLOCK))
        draws[0] = rng.standard_normal(BLOCK)
        draws[1] = rng.exponential(1.0, BLOCK)
        draws[2] = rng.exponential(1.0, BLOCK)
        draws[3] = rng.standard_normal(BLOCK)
        return draws

    def _block(self, k: int) -> np.ndarray:
        """(6, BLOCK) float rows open, high, low, close, volume of block k."""
        cached = self._blocks.get(k)
        if cached is not None:
            return cached
        while len(self._carry) <= k:  # carry only needs the return draws of earlier blocks
            j = len(self._carry) - 1
            # exactly the last log close of block j, so the next open equals the previous close
            self._carry.append(float((self._carry[j] + np.cumsum(self.sigma * self._raw(j)[0]))[-1]))
        draws = self._raw(k)
        log_close = self._carry[k] + np.cumsum(self.sigma * draws[0])
        log_open = np.concatenate(([self._carry[k]], log_close[:-1]))
        op, cl = self.start_price * np.exp(log_open), self.start_price * np.exp(log_close)
        hi = np.maximum(op, cl) * np.exp(self.sigma * WICK_SCALE * draws[1])
        lo = np.minimum(op, cl) * np.exp(-self.sigma * WICK_SCALE * draws[2])
        vol = self.mean_volume * np.exp(0.5 * draws[3] - 0.125)
        block = np.stack([op, hi, lo, cl, vol])
        if len(self._blocks) > 64:
            self._blocks.clear()
        self._blocks[k] = block
        return block

    def arrays(self, i0: int, i1: int) -> CandleArrays:
        """Candles with index in [i0, i1) (i0 >= 0)."""
        if i0 < 0 or i1 < i0:
            raise ValueError(f"bad candle index range [{i0}, {i1})")
        n = i1 - i0
        out = np.empty((5, n))
        pos = 0
        while pos < n:
            k, off = divmod(i0 + pos, BLOCK)
            take = min(BLOCK - off, n - pos)
            out[:, pos:pos + take] = self._block(k)[:, off:off + take]
            pos += take
        ts = self.start_ms + (np.arange(i0, i1, dtype=np.int64) * self.step_ms)
        return CandleArrays(ts, out[0].copy(), out[1].copy(), out[2].copy(), out[3].copy(), out[4].copy())


def synthetic_arrays(n: int, seed: int = 7, start_ms: int = DEFAULT_START_MS, timeframe: str = "5m",
                     start_price: float = 30000.0) -> CandleArrays:
    """The first ``n`` candles of the seeded walk (identical to what SyntheticFeed serves)."""
    return SyntheticSeries(seed, start_ms, timeframe, start_price).arrays(0, n)


class SyntheticFeed:
    """A deterministic random-walk feed, ``synthetic = True``; candles start at ``start_ms``.

    ``start_ms`` defaults to 2024-01-01T00:00Z (aligned to the timeframe), so a restarted process
    sees the same prices; there are no candles before it.
    """

    synthetic = True

    def __init__(self, symbol: str, timeframe: str, clock: Clock, seed: int = 7, start_price: float = 30000.0,
                 start_ms: int | None = None, history: int = DEFAULT_HISTORY) -> None:
        step = timeframe_ms(timeframe)
        start = DEFAULT_START_MS if start_ms is None else start_ms
        self.start_ms = -(-start // step) * step  # first grid point at or after start
        self.symbol = symbol
        self.timeframe = timeframe
        self.clock = clock
        self.history = history
        self.series = SyntheticSeries(seed, self.start_ms, timeframe, start_price)

    async def poll(self, after_ts: int | None) -> FeedBatch:
        step = self.series.step_ms
        now = self.clock.now_ms()
        count = max(0, (now - self.start_ms) // step)  # candles closed so far
        if after_ts is None:
            lo, hi = max(0, count - self.history), count
        else:
            lo, hi = min(count, max(0, (after_ts - self.start_ms) // step + 1)), count
        hi, more = cap_batch(lo, hi, after_ts)
        arrays = self.series.arrays(lo, hi)
        return validate(candles_of(arrays, 0, hi - lo), after_ts, self.timeframe, symbol=self.symbol, more=more)

    async def ticker(self) -> Tick:
        """The close of the newest closed candle, timed at its close (the walk has no price in between)."""
        step = self.series.step_ms
        count = (self.clock.now_ms() - self.start_ms) // step
        if count <= 0:
            raise FeedError(f"{self.symbol}: no closed candle yet")
        return Tick(float(self.series.arrays(count - 1, count).close[0]), self.start_ms + count * step, "close")

    def rules(self) -> MarketRules | None:
        """No exchange, no exchange rules."""
        return None

    async def close(self) -> None:
        return None
