"""Retraining from chat: walk-forward validation and a final fit on the candles the engine holds,
run in a worker thread (CatBoost trains in C++ without the GIL, so the event loop keeps its pace),
then an atomic swap of the symbol's model.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.model import CandleArrays
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
from engine.models.registry import ModelRegistry
from engine.models.validation import DataError, Dataset, fit_final, prepare, walk_forward

MIN_CANDLES = 600


@dataclass(frozen=True, slots=True)
class RetrainResult:
    symbol: str
    path: Path
    rows: int
    seconds: float
    out_of_sample: dict[str, Any]  # walk-forward metrics; never in-sample


def retrain(arrays: CandleArrays, *, symbol: str, timeframe: str, models_dir: Path, horizon: int = 6,
            folds: int = 3, iterations: int = 150) -> tuple[RetrainResult, CatBoostTradingModel]:
    """Validate, fit, save and activate a model for ``symbol``; raises DataError on unusable data."""
    t0 = time.perf_counter()
    if len(arrays) < MIN_CANDLES:
        raise DataError(f"{symbol}: {len(arrays)} candles held; retraining needs at least {MIN_CANDLES}")
    digest = hashlib.sha256(arrays.close.tobytes() + arrays.ts.tobytes()).hexdigest()
    prepared = prepare([Dataset(f"{symbol}-live", arrays, digest)], horizon, folds, 10.0)
    params = CatBoostParams(iterations=iterations, depth=4, thread_count=1)
    report = walk_forward(prepared, params, horizon=horizon, folds=folds, embargo=horizon, fee_bps=10.0,
                          progress=False)
    stamp = int(arrays.ts[-1])
    model = fit_final(prepared, params, horizon=horizon, fee_bps=10.0, name=f"{symbol}-{stamp}", symbol=symbol,
                      timeframe=timeframe)
    model.metrics = {**report.as_dict(), "embargo": horizon, "folds_requested": folds}  # shown by /model
    path = model.save(models_dir / f"{symbol}-{stamp}")
    refusal = ModelRegistry(models_dir).activate(symbol, path)
    if refusal is not None:
        raise DataError(f"{symbol}: the new model was refused: {refusal.reason}")
    loaded = CatBoostTradingModel.load(path)
    result = RetrainResult(symbol, path, len(arrays), time.perf_counter() - t0, dict(report.overall))
    return result, loaded
