"""``trading-agent check-lookahead``: prove a model's features and predictions are causal.

The model runs once on the full series. Then, for every cut point c, it runs again on the series
truncated after candle c - 1 (``candles[:c]``) and, for the live path, on the trailing window of
``lookback`` candles ending at c - 1. A causal model gives bit-identical features and probabilities
for every row both runs share; any value that differs means a row used candles after it (or, for the
window run, candles older than ``lookback``). Every differing value is reported (kind, column, row,
cut, full-data value, truncated value). Exit code 0 when clean, 1 when leaks are found, 2 for bad
input.

``--strategy SPEC [--param NAME=VALUE ...]`` checks a strategy instead (a built-in, ``file.py:Class`` or
``module:Class``) with ``engine.strategy.lookahead.check_lookahead``: signals and indicator columns on the whole
series against truncated prefixes; a leak names the column and its first candle (``engine.strategy.cli``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.cli import non_negative_int, positive_int
from engine.core.model import CLASSES, CandleArrays, GenericTradingModel, SmaCrossModel
from engine.logs import configure_logging

DEFAULT_CUTS = 24


@dataclass(frozen=True, slots=True)
class Leak:
    kind: str  # "feature" | "prediction" | "window-feature" | "window-prediction"
    column: str
    row: int
    cut: int
    full_value: float
    truncated_value: float


@dataclass(slots=True)
class LookaheadReport:
    model: str
    rows: int
    cut_points: list[int]
    checked_values: int = 0
    leaks: list[Leak] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.leaks

    def summary(self, limit: int = 20) -> str:
        head = (f"{self.model}: {self.rows} candles, {len(self.cut_points)} cut points, "
                f"{self.checked_values} values compared: ")
        if self.clean:
            return head + "no look-ahead found"
        cols = sorted({f"{lk.kind}:{lk.column}" for lk in self.leaks})
        lines = [head + f"{len(self.leaks)} values differ (look-ahead) in {', '.join(cols)}"]
        for lk in self.leaks[:limit]:
            lines.append(f"  {lk.kind} {lk.column} row {lk.row} (cut {lk.cut}): full {lk.full_value!r} "
                         f"truncated {lk.truncated_value!r}")
        if len(self.leaks) > limit:
            lines.append(f"  ... and {len(self.leaks) - limit} more")
        return "\n".join(lines)


def default_cut_points(n: int, lookback: int, count: int = DEFAULT_CUTS) -> list[int]:
    """``count`` cut points spread from ``lookback`` to n - 1 (each is the length of a truncated run)."""
    lo = min(max(lookback, 2), n - 1)
    if n - 1 <= lo:
        return [n - 1] if n > 1 else []
    return sorted({int(c) for c in np.linspace(lo, n - 1, count).round()})


def _diff(kind: str, names: tuple[str, ...], full: np.ndarray, part: np.ndarray, row0: int, cut: int,
          out: list[Leak]) -> int:
    same = (full == part) | (np.isnan(full) & np.isnan(part))
    for r, j in zip(*np.nonzero(~same), strict=True):
        out.append(Leak(kind, names[j], int(row0 + r), cut, float(full[r, j]), float(part[r, j])))
    return int(full.size)


def check_lookahead(arrays: CandleArrays, model: GenericTradingModel,
                    cut_points: list[int] | None = None) -> LookaheadReport:
    """Compare the full-data run with truncated and trailing-window runs (see module docstring)."""
    n = len(arrays)
    cuts = default_cut_points(n, model.lookback) if cut_points is None else sorted(set(cut_points))
    report = LookaheadReport(model.name, n, cuts)
    full_x = model.features(arrays)
    full_p = model.predict_proba(full_x)
    fnames = tuple(model.feature_names)
    pnames = CLASSES
    for c in cuts:
        if not 1 <= c <= n:
            raise ValueError(f"cut point {c} outside 1..{n}")
        part = arrays.slice(0, c)
        x = model.features(part)
        p = model.predict_proba(x)
        report.checked_values += _diff("feature", fnames, full_x[:c], x, 0, c, report.leaks)
        report.checked_values += _diff("prediction", pnames, full_p[:c], p, 0, c, report.leaks)
        if c >= model.lookback:
            start = c - model.lookback
            wx = model.features(arrays.slice(start, c))[-1:]
            wp = model.predict_proba(wx)
            report.checked_values += _diff("window-feature", fnames, full_x[c - 1:c], wx, c - 1, c, report.leaks)
            report.checked_values += _diff("window-prediction", pnames, full_p[c - 1:c], wp, c - 1, c,
                                           report.leaks)
    return report


# --- CLI ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path,
                        help="candle CSV: timestamp,open,high,low,close,volume (ms, s or µs; or a date column in "
                             "ISO 8601)")
    parser.add_argument("--symbol", default=None, help="symbol of the data (default: from the file name)")
    parser.add_argument("--timeframe", default=None,
                        help="candle timeframe, e.g. 5m (default: from the file name, else the timestamps' "
                             "most common spacing)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a saved model directory, or 'sma-cross' for the built-in rule model")
    what.add_argument("--strategy", metavar="SPEC",
                      help="a strategy to check instead: a built-in name, path/to/file.py:Class or module.path:Class")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="a parameter of the --strategy (repeatable), over the config's [strategy.params]")
    parser.add_argument("--config", type=Path,
                        help="trading config TOML (its [strategy.params] for --strategy); default: embedded")
    parser.add_argument("--cuts", type=positive_int, default=DEFAULT_CUTS,
                        help=f"cut points (default {DEFAULT_CUTS}; for --strategy, as many again just after its "
                             "signals)")
    parser.add_argument("--show", type=non_negative_int, default=20, help="differing values to print (default 20)")


def _load_model(spec: str) -> GenericTradingModel:
    if spec == "sma-cross":
        rule: GenericTradingModel = SmaCrossModel()
        return rule
    from engine.models.catboost_model import CatBoostTradingModel

    return CatBoostTradingModel.load(Path(spec))


def run(args: argparse.Namespace) -> int:
    from engine.feeds.candle_file import load_candles
    from engine.feeds.csvio import CsvFormatError
    from engine.models.catboost_model import ModelLoadError

    configure_logging(level="WARNING", stream=sys.stderr)  # stdout carries the report
    if args.strategy is not None:
        from engine.strategy.cli import check_lookahead_command

        return check_lookahead_command(args)
    if args.param or args.config is not None:
        print("error: --param and --config go with --strategy; a --model is checked as saved", file=sys.stderr)
        return 2
    try:
        model = _load_model(args.model)
        data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe,
                            min_candles=model.lookback + 1, needed_by=f"checking {model.name}")
    except (CsvFormatError, ModelLoadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for kind, lines in (("note", data.notes), ("warning", data.warnings)):
        for line in lines:
            print(f"{kind}: {line}", file=sys.stderr)
    arrays = data.arrays
    report = check_lookahead(arrays, model, default_cut_points(len(arrays), model.lookback, args.cuts))
    print(report.summary(args.show))
    return 0 if report.clean else 1
