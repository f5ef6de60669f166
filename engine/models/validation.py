"""Walk-forward validation with purging and an embargo, out-of-sample metrics and fold backtests.

Splits (per input file, then pooled across files): the rows that have both full feature history and
a label (``LOOKBACK - 1 <= t < n - horizon``) are cut into ``folds + 1`` equal consecutive blocks.
Fold k tests on block k (k = 1..folds) and trains on every earlier row t whose label window
``[t, t + horizon]`` ends more than ``embargo`` candles before the test block starts:

    t + horizon + embargo < test_start

so no training label is computed from a price inside (or just before) the test block. Training only
ever uses the past: an expanding window.

Every number reported here is out of sample: per fold it comes from a model that never saw that
fold, and the overall numbers pool those out-of-sample predictions. Metrics: multi-class log-loss,
one-vs-rest macro AUC, accuracy against the class-prior baseline (the majority class of the training
rows, predicted for every test row), expected calibration error (10 equal-width confidence bins) and
the multi-class Brier score; and a backtest of the fold's signals after fees against buy-and-hold on
the same candles.

The fold backtest uses ``engine.backtest.run_backtest`` (the live decision path), configured as a plain
signal test: all-in positions (position_fraction 1), no stops, no daily-loss or drawdown halts, no
confidence filter. If it fails, the validation fails (``BacktestFailed``, one line): there is no silent
second opinion. A small vectorized long-only evaluator (``simple_long_only``) runs only when asked for
(``evaluator="simple"``). Which one ran is recorded per fold.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from tqdm import tqdm

from engine.core.model import DOWN, FLAT, UP, CandleArrays, GenericTradingModel
from engine.core.trading import signals_from_proba
from engine.core.types import Action
from engine.errors import BacktestFailed
from engine.errors import DataError as DataError  # raised here, caught by the commands under this name
from engine.feeds.candle_file import load_candles
from engine.feeds.csvio import CsvFormatError, symbol_from_filename
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel, TrainingInfo
from engine.models.features import LOOKBACK, compute_features
from engine.models.labels import NO_LABEL, make_labels

log = structlog.get_logger("engine.models.validation")

MIN_BLOCK_ROWS = 50  # each of the folds + 1 blocks needs at least this many usable rows


# --- data --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    arrays: CandleArrays
    sha256: str
    symbol: str = ""  # as a model's metadata records it: BASE/QUOTE when the file is named BASE_QUOTE-TF.csv
    timeframe: str = ""
    notes: tuple[str, ...] = ()  # what reading the file inferred or converted, one line each
    warnings: tuple[str, ...] = ()  # gaps in the candles


def load_candles_csv(path: Path, *, symbol: str | None = None, timeframe: str | None = None) -> Dataset:
    """Read a candle CSV as ``engine.feeds.candle_file.load_candles`` does (ms, s or µs timestamps, ISO dates,
    the timeframe from the name or the spacing); every problem is a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        candles = load_candles(path, symbol=symbol, timeframe=timeframe)
        raw = path.read_bytes()
    except (CsvFormatError, ValueError, OSError) as exc:
        raise DataError(str(exc)) from None
    recorded = candles.symbol
    if not symbol:
        with contextlib.suppress(ValueError):
            symbol_from_filename(path)  # a BASE_QUOTE-TF.csv name: keep the BASE/QUOTE spelling
            recorded = symbol_timeframe(path.name)[0]
    return Dataset(path.name, candles.arrays, hashlib.sha256(raw).hexdigest(), recorded, candles.timeframe,
                   candles.notes, candles.warnings)


def symbol_timeframe(name: str) -> tuple[str, str]:
    """``BTC_USDT-5m.csv`` -> ("BTC/USDT", "5m") (freqtrade naming); ("", "") when it does not parse."""
    stem = name.rsplit(".", 1)[0]
    if "-" not in stem:
        return "", ""
    pair, tf = stem.rsplit("-", 1)
    return pair.replace("_", "/", 1), tf


# --- splits ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoldSplit:
    """Row indices of one file for one fold: train rows ``[first, train_stop)``, test ``[start, stop)``."""

    first: int
    train_stop: int
    test_start: int
    test_stop: int


def check_length(name: str, n: int, horizon: int, folds: int) -> None:
    """Raise ``DataError`` with the specific reason when n candles cannot support the validation."""
    if horizon < 1:
        raise DataError(f"horizon must be at least 1 candle, got {horizon}")
    if folds < 1:
        raise DataError(f"folds must be at least 1, got {folds}")
    if horizon >= n:
        raise DataError(f"horizon {horizon} is longer than the data: {name} has {n} candles, "
                        f"so no candle has a label {horizon} candles ahead")
    usable = n - horizon - (LOOKBACK - 1)
    need = (folds + 1) * MIN_BLOCK_ROWS
    if usable < need:
        raise DataError(
            f"data too short: {name} has {n} candles; the features need {LOOKBACK - 1} candles of history "
            f"and the labels the last {horizon}, leaving {max(usable, 0)} usable rows, but {folds} folds need "
            f"{folds + 1} blocks of at least {MIN_BLOCK_ROWS} rows ({need}); "
            f"give at least {need + horizon + LOOKBACK - 1} candles or fewer folds")


def walk_forward_splits(n: int, horizon: int, folds: int, embargo: int) -> list[FoldSplit]:
    """Purged, embargoed expanding-window splits of one series of n candles (see module docstring)."""
    first = LOOKBACK - 1
    stop = n - horizon
    edges = np.linspace(first, stop, folds + 2).round().astype(int)
    out = []
    for k in range(1, folds + 1):
        test_start, test_stop = int(edges[k]), int(edges[k + 1])
        train_stop = max(first, test_start - horizon - embargo)  # rows t < train_stop: t+h+embargo < start
        out.append(FoldSplit(first, train_stop, test_start, test_stop))
    return out


# --- metrics -----------------------------------------------------------------------------------------


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    eps = 1e-15
    return float(-np.mean(np.log(np.clip(p[np.arange(y.shape[0]), y], eps, 1.0))))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], s.shape[0]]
    ranks = np.empty(a.shape[0])
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def auc_ovr_macro(y: np.ndarray, p: np.ndarray) -> float:
    """Macro average of one-vs-rest ROC AUC over the classes present with both outcomes (ties: 1/2)."""
    aucs = []
    for c in range(p.shape[1]):
        pos = y == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _average_ranks(p[:, c])
        aucs.append((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def brier(y: np.ndarray, p: np.ndarray) -> float:
    onehot = np.zeros_like(p)
    onehot[np.arange(y.shape[0]), y] = 1.0
    return float(np.mean(((p - onehot) ** 2).sum(axis=1)))


def classification_metrics(y: np.ndarray, p: np.ndarray, baseline_class: int) -> dict[str, float]:
    return {
        "rows": float(y.shape[0]),
        "log_loss": log_loss(y, p),
        "auc": auc_ovr_macro(y, p),
        "accuracy": float(np.mean(p.argmax(axis=1) == y)),
        "baseline_accuracy": float(np.mean(y == baseline_class)),
        "ece": expected_calibration_error(y, p),
        "brier": brier(y, p),
    }


# --- fold backtest -------------------------------------------------------------------------------------


def simple_long_only(arrays: CandleArrays, proba: np.ndarray, fee_bps: float) -> tuple[float, int]:
    """(total return, entries) of a long-only, all-in strategy driven by ``proba`` (``evaluator="simple"``).

    The signal of candle t (ENTER on up, EXIT on down, HOLD on flat; NaN rows hold) is executed at the
    open of t+1. Fees of ``fee_bps`` are paid on each side; an open position is marked out at the
    last close and pays its exit fee.
    """
    n = len(arrays)
    if n == 0:
        return 0.0, 0
    action, _ = signals_from_proba(np.nan_to_num(proba, nan=0.0))
    want = np.where(action == Action.ENTER, 1, np.where(action == Action.EXIT, 0, -1))  # -1: keep
    last = np.where(want >= 0, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)  # index of the latest ENTER/EXIT signal, -1 before the first
    state = np.where(last >= 0, want[np.maximum(last, 0)], 0).astype(np.float64)
    held = np.zeros(n)
    held[1:] = state[:-1]  # held during [open t, open t+1) after the signal of t-1
    nxt = np.r_[arrays.open[1:], arrays.close[-1]]
    log_growth = float(np.sum(held * np.log(nxt / arrays.open)))
    steps = np.diff(np.r_[0.0, held, 0.0])
    changes = int(np.abs(steps).sum())
    fee = fee_bps / 10_000.0
    return math.exp(log_growth) * (1.0 - fee) ** changes - 1.0, int(np.count_nonzero(steps > 0))


def buy_and_hold(arrays: CandleArrays, fee_bps: float) -> float:
    fee = fee_bps / 10_000.0
    return float(arrays.close[-1] / arrays.open[0]) * (1.0 - fee) ** 2 - 1.0


class _WarmupMasked:
    """A model wrapper whose first ``warmup`` rows predict flat (no trading before the test fold)."""

    def __init__(self, model: GenericTradingModel, warmup: int) -> None:
        self._model = model
        self._warmup = warmup
        self.name = model.name
        self.feature_names = model.feature_names
        self.lookback = model.lookback

    def features(self, candles: CandleArrays) -> np.ndarray:
        return self._model.features(candles)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self._model.predict_proba(x)
        p[: self._warmup] = (0.0, 1.0, 0.0)
        return p

    def metadata(self) -> dict[str, Any]:
        return self._model.metadata()


def backtest_segment(arrays: CandleArrays, start: int, stop: int, model: GenericTradingModel,
                     fee_bps: float, evaluator: str = "auto") -> dict[str, float | str]:
    """Out-of-sample backtest of ``model`` on candles [start, stop) (features warm up on earlier rows)."""
    lead = min(start, model.lookback - 1)
    window = arrays.slice(start - lead, stop)
    test = arrays.slice(start, stop)
    bh = buy_and_hold(test, fee_bps)
    if evaluator in ("auto", "engine"):
        try:
            ret, trades = _engine_backtest(window, _WarmupMasked(model, lead), fee_bps)
        except Exception as exc:  # the edge of the whole backtester: whatever failed in it fails this validation
            log.debug("fold_backtest_failed", exc_info=True)
            raise BacktestFailed(f"the fold backtest on candles {start}..{stop} failed: "
                                 f"{type(exc).__name__}: {_first_line(exc)}") from exc
        return {"strategy_return": ret, "buy_and_hold_return": bh, "trades": float(trades),
                "evaluator": "engine.backtest.run_backtest"}
    proba = model.predict_proba(model.features(window))[lead:]
    ret, entries = simple_long_only(test, proba, fee_bps)
    return {"strategy_return": ret, "buy_and_hold_return": bh, "trades": float(entries),
            "evaluator": "simple_long_only"}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _engine_backtest(window: CandleArrays, model: GenericTradingModel, fee_bps: float) -> tuple[float, int]:
    from engine.backtest import BacktestConfig, run_backtest
    from engine.core.risk import Costs, RiskLimits, SignalFilters

    limits = RiskLimits(position_fraction=1.0, max_position_fraction=1.0, max_total_exposure=1.0,
                        stop_loss_pct=0.0, take_profit_pct=0.0, trailing_stop_pct=0.0,
                        max_daily_loss_pct=0.0, max_drawdown_pct=0.0)
    config = BacktestConfig(limits=limits, costs=Costs(fee_bps=fee_bps), filters=SignalFilters(min_confidence=0.0))
    result = run_backtest(window, model, config)
    return float(result.final_equity / result.starting_cash - 1.0), len(result.trades)


# --- walk-forward ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ValidationReport:
    folds: list[dict[str, Any]] = field(default_factory=list)
    overall: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "overall": self.overall, "out_of_sample": True}


@dataclass(frozen=True, slots=True)
class Prepared:
    dataset: Dataset
    x: np.ndarray
    y: np.ndarray


def prepare(datasets: Sequence[Dataset], horizon: int, folds: int, fee_bps: float) -> list[Prepared]:
    out = []
    for ds in datasets:
        check_length(ds.name, len(ds.arrays), horizon, folds)
        out.append(Prepared(ds, compute_features(ds.arrays), make_labels(ds.arrays.close, horizon, fee_bps)))
    return out


def _rows(p: Prepared, start: int, stop: int) -> np.ndarray:
    idx = np.arange(start, stop)
    ok = np.isfinite(p.x[idx]).all(axis=1) & (p.y[idx] != NO_LABEL)
    out: np.ndarray = idx[ok]
    return out


def walk_forward(prepared: Sequence[Prepared], params: CatBoostParams, *, horizon: int, folds: int,
                 embargo: int, fee_bps: float, evaluator: str = "auto",
                 progress: bool = True) -> ValidationReport:
    """Purged, embargoed walk-forward over the prepared files; only out-of-sample numbers."""
    report = ValidationReport()
    splits = [walk_forward_splits(len(p.dataset.arrays), horizon, folds, embargo) for p in prepared]
    all_y: list[np.ndarray] = []
    all_p: list[np.ndarray] = []
    all_base: list[np.ndarray] = []
    bar = tqdm(total=folds, desc="walk-forward", unit="fold", file=sys.stderr, disable=not progress)
    for k in range(folds):
        tr_x, tr_y, te_x, te_y = [], [], [], []
        for p, sp in zip(prepared, splits, strict=True):
            s = sp[k]
            tr = _rows(p, s.first, s.train_stop)
            te = _rows(p, s.test_start, s.test_stop)
            tr_x.append(p.x[tr])
            tr_y.append(p.y[tr])
            te_x.append(p.x[te])
            te_y.append(p.y[te])
        xtr, ytr = np.concatenate(tr_x), np.concatenate(tr_y)
        xte, yte = np.concatenate(te_x), np.concatenate(te_y)
        if np.unique(ytr).shape[0] < 2 or yte.shape[0] == 0:
            raise DataError(f"fold {k + 1}: training rows hold a single class or the test fold is empty; "
                            f"use fewer folds, a longer file or another horizon")
        model = CatBoostTradingModel(params, horizon=horizon, fee_bps=fee_bps)
        model.fit(xtr, ytr)
        proba = model.predict_proba(xte)
        base = int(np.bincount(ytr, minlength=3).argmax())
        row: dict[str, Any] = {"fold": k + 1, "train_rows": int(ytr.shape[0]),
                               **classification_metrics(yte, proba, base), "baseline_class": base}
        bts = [backtest_segment(p.dataset.arrays, sp[k].test_start, sp[k].test_stop, model, fee_bps, evaluator)
               for p, sp in zip(prepared, splits, strict=True)]
        row["strategy_return"] = float(np.mean([float(b["strategy_return"]) for b in bts]))
        row["buy_and_hold_return"] = float(np.mean([float(b["buy_and_hold_return"]) for b in bts]))
        row["trades"] = float(sum(float(b["trades"]) for b in bts))
        row["evaluator"] = ",".join(sorted({str(b["evaluator"]) for b in bts}))
        report.folds.append(row)
        all_y.append(yte)
        all_p.append(proba)
        all_base.append(np.full(yte.shape[0], base))
        bar.update(1)
        log.info("fold_done", fold=k + 1, log_loss=row["log_loss"], auc=row["auc"])
    bar.close()
    y, proba_all = np.concatenate(all_y), np.concatenate(all_p)
    overall: dict[str, Any] = dict(classification_metrics(y, proba_all, DOWN))
    overall["baseline_accuracy"] = float(np.mean(y == np.concatenate(all_base)))
    rets = np.array([f["strategy_return"] for f in report.folds])
    bhs = np.array([f["buy_and_hold_return"] for f in report.folds])
    overall["strategy_return"] = float(np.prod(1.0 + rets) - 1.0)
    overall["buy_and_hold_return"] = float(np.prod(1.0 + bhs) - 1.0)
    overall["trades"] = float(sum(f["trades"] for f in report.folds))
    overall["class_share"] = [float(np.mean(y == c)) for c in (DOWN, FLAT, UP)]
    report.overall = overall
    return report


def training_info(prepared: Sequence[Prepared]) -> TrainingInfo:
    h = hashlib.sha256()
    for p in prepared:
        h.update(p.dataset.sha256.encode())
    first = min(int(p.dataset.arrays.ts[0]) for p in prepared)
    last = max(int(p.dataset.arrays.ts[-1]) for p in prepared)
    rows = sum(len(p.dataset.arrays) for p in prepared)
    return TrainingInfo(first, last, rows, h.hexdigest(), tuple(p.dataset.name for p in prepared))


def fit_final(prepared: Sequence[Prepared], params: CatBoostParams, *, horizon: int, fee_bps: float,
              name: str, symbol: str, timeframe: str,
              progress: Callable[[int], None] | None = None) -> CatBoostTradingModel:
    """The shipped model: trained on every labelled row of every file (after validation); ``progress(1)``
    after each boosting iteration."""
    xs = [p.x[_rows(p, 0, len(p.dataset.arrays))] for p in prepared]
    ys = [p.y[_rows(p, 0, len(p.dataset.arrays))] for p in prepared]
    model = CatBoostTradingModel(params, name=name, horizon=horizon, fee_bps=fee_bps, symbol=symbol,
                                 timeframe=timeframe)
    model.fit(np.concatenate(xs), np.concatenate(ys), info=training_info(prepared), progress=progress)
    return model

