"""Retraining from chat: walk-forward validation and a final fit on the candles the engine holds,
run in a worker thread (CatBoost trains in C++ without the GIL, so the event loop keeps its pace),
then an atomic swap of the symbol's model.

Importing this module is cheap (the facade reads ``MIN_CANDLES`` to refuse a retrain before asking for
confirmation); the model libraries are imported when a retrain runs.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.model import CandleArrays

if TYPE_CHECKING:
    from engine.models.catboost_model import CatBoostTradingModel

MIN_CANDLES = 600  # walk-forward over 3 folds with a 104-candle feature lookback, a 6-candle horizon and embargo


def too_few_candles(symbol: str, held: int) -> str | None:
    """Why a retrain on ``held`` candles would be refused, or None when there are enough."""
    if held >= MIN_CANDLES:
        return None
    return (f"{symbol}: {held} candles held; retraining needs at least {MIN_CANDLES} "
            f"(raise feed.history to {MIN_CANDLES} or more, or wait for {MIN_CANDLES - held} more candles)")


@dataclass(frozen=True, slots=True)
class RetrainResult:
    symbol: str
    path: Path
    rows: int
    seconds: float
    out_of_sample: dict[str, Any]  # walk-forward metrics; never in-sample


def retrain(arrays: CandleArrays, *, symbol: str, timeframe: str, models_dir: Path, fee_bps: float, horizon: int = 6,
            folds: int = 3, iterations: int = 150) -> tuple[RetrainResult, CatBoostTradingModel]:
    """Validate, fit, save and activate a model for ``symbol``; raises DataError on unusable data.

    ``fee_bps`` is the fee the agent pays per side (the config's ``paper.fee_bps``): the labels' threshold,
    the fold backtests and the model's metadata all use it, so the model learns the costs it will trade at."""
    from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
    from engine.models.registry import ModelRegistry
    from engine.models.validation import DataError, Dataset, fit_final, prepare, walk_forward

    t0 = time.perf_counter()
    problem = too_few_candles(symbol, len(arrays))
    if problem is not None:
        raise DataError(problem)
    digest = hashlib.sha256(arrays.close.tobytes() + arrays.ts.tobytes()).hexdigest()
    prepared = prepare([Dataset(f"{symbol}-live", arrays, digest)], horizon, folds, fee_bps)
    params = CatBoostParams(iterations=iterations, depth=4, thread_count=1)
    report = walk_forward(prepared, params, horizon=horizon, folds=folds, embargo=horizon, fee_bps=fee_bps,
                          progress=False)
    stamp = int(arrays.ts[-1])
    model = fit_final(prepared, params, horizon=horizon, fee_bps=fee_bps, name=f"{symbol}-{stamp}", symbol=symbol,
                      timeframe=timeframe)
    model.metrics = {**report.as_dict(), "embargo": horizon, "folds_requested": folds}  # shown by /model
    path = model.save(models_dir / f"{symbol}-{stamp}")
    refusal = ModelRegistry(models_dir).activate(symbol, path)
    if refusal is not None:
        raise DataError(f"{symbol}: the new model was refused: {refusal.reason}")
    loaded = CatBoostTradingModel.load(path)
    result = RetrainResult(symbol, path, len(arrays), time.perf_counter() - t0, dict(report.overall))
    return result, loaded
