"""``trading-agent train``: walk-forward validate, then train the shipped model on all data and save it.

    trading-agent train --data FILE [FILE ...] --out models/NAME [--horizon N] [--folds K] [--iterations I]
                        [--symbol S] [--timeframe TF]

Exit codes: 0 saved; 2 the data cannot support the request (too short, horizon longer than the data,
unreadable file) or catboost is unusable. The validation table printed (and stored in the model's
metadata under ``metrics``) holds out-of-sample numbers only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import structlog
from tqdm import tqdm

from engine.cli import non_negative_float, non_negative_int, positive_float, positive_int
from engine.errors import BacktestFailed
from engine.logs import configure_logging
from engine.models.catboost_model import CatBoostParams, check_catboost
from engine.models.validation import (
    DataError,
    ValidationReport,
    fit_final,
    load_candles_csv,
    prepare,
    walk_forward,
)

log = structlog.get_logger("engine.models.train")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, type=Path, metavar="FILE",
                        help="candle CSV file(s): timestamp,open,high,low,close,volume")
    parser.add_argument("--symbol", default=None,
                        help="symbol of the data (default: from the file name, e.g. BTC_USDT-5m.csv -> BTC/USDT)")
    parser.add_argument("--timeframe", default=None,
                        help="candle timeframe, e.g. 5m (default: from the file name, else the timestamps' "
                             "most common spacing)")
    parser.add_argument("--out", required=True, type=Path, help="model directory to write (models/NAME)")
    parser.add_argument("--horizon", type=positive_int, default=12, help="label horizon in candles (default 12)")
    parser.add_argument("--folds", type=positive_int, default=5, help="walk-forward test folds (default 5)")
    parser.add_argument("--iterations", type=positive_int, default=300, help="CatBoost iterations (default 300)")
    parser.add_argument("--depth", type=positive_int, default=6, help="CatBoost tree depth (default 6)")
    parser.add_argument("--learning-rate", type=positive_float, default=0.08,
                        help="CatBoost learning rate (default 0.08)")
    parser.add_argument("--threads", type=positive_int, default=2, help="CatBoost thread_count (default 2)")
    parser.add_argument("--fee-bps", type=non_negative_float, default=10.0,
                        help="fee per side in bps (labels, backtest)")
    parser.add_argument("--embargo", type=non_negative_int, default=None,
                        help="candles left out between training labels and a test fold (default: horizon)")
    parser.add_argument("--evaluator", choices=("auto", "engine", "simple"), default="auto",
                        help="fold backtest: engine.backtest (auto, engine) or the simple evaluator; a failed "
                             "backtest fails the command")
    parser.add_argument("--name", default=None, help="model name (default: the --out folder name)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def format_table(report: ValidationReport) -> str:
    cols = ("fold", "train_rows", "rows", "log_loss", "auc", "accuracy", "baseline_accuracy", "ece", "brier",
            "strategy_return", "buy_and_hold_return", "trades")
    heads = ("fold", "train", "test", "logloss", "auc", "acc", "base_acc", "ece", "brier", "strat%", "b&h%",
             "trades")

    def cell(key: str, value: Any) -> str:
        if key in ("strategy_return", "buy_and_hold_return"):
            return f"{100.0 * float(value):+.2f}"
        if key in ("fold", "train_rows", "rows", "trades"):
            return str(int(value)) if isinstance(value, int | float) else str(value)
        return f"{float(value):.4f}"

    rows = [[cell(c, f[c]) for c in cols] for f in report.folds]
    overall = dict(report.overall, fold="all", train_rows=float("nan"))
    rows.append(["all", "-", *[cell(c, overall[c]) for c in cols[2:]]])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    evaluators = sorted({str(f["evaluator"]) for f in report.folds})
    lines.append(f"(out-of-sample only; strat%/b&h% after fees; backtest: {', '.join(evaluators)}; "
                 f"'all' pools the out-of-sample predictions and compounds the fold returns)")
    return "\n".join(lines)


def train(args: argparse.Namespace) -> int:
    problem = check_catboost()
    if problem:
        raise DataError(problem)
    datasets = [load_candles_csv(p, symbol=args.symbol, timeframe=args.timeframe) for p in args.data]
    for ds in datasets:
        for kind, lines in (("note", ds.notes), ("warning", ds.warnings)):
            for line in lines:
                print(f"{kind}: {ds.name}: {line}", file=sys.stderr)
    if args.depth > 16:
        raise DataError(f"depth must be at most 16 (CatBoost's limit), got {args.depth}")
    embargo = args.horizon if args.embargo is None else args.embargo
    if embargo < 0:
        raise DataError(f"embargo must be >= 0, got {embargo}")
    params = CatBoostParams(iterations=args.iterations, depth=args.depth, learning_rate=args.learning_rate,
                            thread_count=args.threads)
    prepared = prepare(datasets, args.horizon, args.folds, args.fee_bps)
    report = walk_forward(prepared, params, horizon=args.horizon, folds=args.folds, embargo=embargo,
                          fee_bps=args.fee_bps, evaluator=args.evaluator, progress=not args.no_progress)
    print(format_table(report))
    symbols = sorted({d.symbol for d in datasets})
    timeframes = sorted({d.timeframe for d in datasets})
    bar = tqdm(total=params.iterations, desc="final fit", unit="it", file=sys.stderr, disable=args.no_progress)
    with bar:
        model = fit_final(prepared, params, horizon=args.horizon, fee_bps=args.fee_bps,
                          name=args.name or Path(args.out).name, symbol=",".join(symbols),
                          timeframe=",".join(timeframes), progress=None if args.no_progress else bar.update)
    model.metrics = {**report.as_dict(), "embargo": embargo, "folds_requested": args.folds}
    model.save(Path(args.out))
    print(f"saved {model.name} to {args.out} (final model trained on all {model.training.rows} candles "
          f"after validation)")
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging(level="WARNING", stream=sys.stderr)  # stdout carries the table and the summary
    try:
        return train(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BacktestFailed as exc:  # not the input's fault: exit 1, in one line (traceback at DEBUG)
        print(f"error: {exc}", file=sys.stderr)
        return 1
