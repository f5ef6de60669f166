"""The walk-forward split, and the out-of-sample truth of each fold.

The series is cut into ``folds + ratio`` consecutive segments of equal length (the few candles left over are the
oldest, left out). Fold k (1-based) searches on segments k .. k+ratio-1 (its in-sample window) and is evaluated on
segment k+ratio (its out-of-sample window): the out-of-sample windows follow one another and never overlap, and
no fold ever sees a candle after its in-sample window while it searches.

The purge: an out-of-sample window is backtested on its own candles only, and its first ``startup_candles`` (of
the parameters the fold chose) are the strategy's warm-up, not scored: the scored out-of-sample candles start
``startup_candles`` after the in-sample window ends. A strategy may therefore warm up on half a segment at most
(``max_startup``); parameters that need more are not tried.

``folds == 0`` is the plain in-sample search over every candle (its numbers are in-sample, and said to be).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.backtest import BacktestResult
from engine.core.model import CandleArrays
from engine.optimize.evaluate import Window
from engine.strategy.params import StrategyError

MIN_SEGMENT = 20  # candles


@dataclass(frozen=True, slots=True)
class Fold:
    index: int  # 1-based; 0 for the plain in-sample search
    in_sample: Window
    out_of_sample: Window | None  # None for the plain in-sample search


def make_folds(n: int, folds: int, ratio: int, startup: int, *, what: str) -> list[Fold]:
    """The folds of ``n`` candles (module docstring); StrategyError (one line) when there are too few candles for
    ``folds`` folds of a strategy whose warm-up at its defaults is ``startup`` candles. ``what`` names the data."""
    if folds == 0:
        if n // 2 < max(startup, 1):
            raise StrategyError(f"{what}: {n:,} candles are too few to search (the warm-up alone is {startup:,} "
                                "candles; the search needs twice that)")
        return [Fold(0, Window(0, n, n // 2), None)]
    segment = n // (folds + ratio)
    least = max(2 * startup + 2, MIN_SEGMENT)
    if segment < least:
        need = least * (folds + ratio)
        raise StrategyError(f"{what}: {n:,} candles are too few for {folds} walk-forward folds ({folds + ratio} "
                            f"segments of {segment:,} candles; each needs {least:,}, twice the strategy's warm-up of "
                            f"{startup:,}): give at least {need:,} candles or fewer folds (--walk-forward N)")
    offset = n - segment * (folds + ratio)
    out = []
    for k in range(folds):
        start = offset + k * segment
        middle = start + ratio * segment
        out.append(Fold(k + 1, Window(start, middle, segment // 2), Window(middle, middle + segment, segment // 2)))
    return out


@dataclass(frozen=True, slots=True)
class Stitched:
    """The out-of-sample windows' equity chained end to end (each starts where the one before ended), and buy and
    hold over the same candles, chained the same way."""

    ts: np.ndarray
    equity: np.ndarray
    buy_and_hold: np.ndarray
    cash: float

    @property
    def total_return(self) -> float:
        return float(self.equity[-1] / self.cash - 1.0) if self.equity.size else 0.0

    @property
    def buy_and_hold_return(self) -> float:
        return float(self.buy_and_hold[-1] / self.cash - 1.0) if self.buy_and_hold.size else 0.0

    @property
    def max_drawdown(self) -> float:
        if not self.equity.size:
            return 0.0
        return float(np.max(1.0 - self.equity / np.maximum.accumulate(self.equity)))


def stitch(results: list[tuple[BacktestResult, CandleArrays]], fee_rate: float, cash: float) -> Stitched:
    """Chain the scored out-of-sample results (``(result, its scored candles)``); buy and hold pays the fee once
    per window, as the backtest's own buy-and-hold figure does."""
    ts, eq, bh = [], [], []
    level_eq = level_bh = cash
    for result, candles in results:
        if not len(candles):
            continue
        ts.append(result.ts)
        eq.append(result.equity / result.starting_cash * level_eq)
        held = level_bh / (float(candles.open[0]) * (1 + fee_rate))
        bh.append(held * candles.close)
        level_eq, level_bh = float(eq[-1][-1]), float(bh[-1][-1])
    if not ts:
        return Stitched(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), cash)
    return Stitched(np.concatenate(ts), np.concatenate(eq), np.concatenate(bh), cash)
