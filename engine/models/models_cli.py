"""``trading-agent models``: the model registry from the command line.

    trading-agent models list [--models-dir DIR]
    trading-agent models activate ID [--symbol SYMBOL] [--models-dir DIR]

``list`` shows every saved model (its id is its folder name): name, symbol, timeframe, training window,
out-of-sample metrics, and the symbols ``active.json`` points at it. ``activate`` checks that the model
loads and was trained on the symbol, then rewrites ``active.json`` atomically; the worker loads active
models when it starts. The directory is ``--models-dir``, else ``MODELS_DIR``, else ``models``.

Exit codes: 0 done; 2 bad input (an unknown id, a model that does not load or fit, an unusable catboost).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from engine.core.types import Refusal
from engine.logs import configure_logging
from engine.models.registry import ModelEntry, ModelRegistry, plain_symbol, trained_symbols

MODELS_DIR_ENV = "MODELS_DIR"
HEADS = ("id", "name", "symbol", "tf", "trained (UTC)", "candles", "auc", "acc/base %", "strat/b&h %", "active for")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{list,activate}")
    listing = sub.add_parser("list", help="the saved models, their metrics and where each is active")
    activate = sub.add_parser("activate", help="make a model the active one for a symbol (models/active.json)")
    activate.add_argument("model_id", metavar="ID", help="the model's id: its folder name, as `models list` shows")
    activate.add_argument("--symbol", default=None,
                          help="the symbol to trade with it, as in the trading config (BTCUSDT); default: the "
                               "symbol the model was trained on")
    for p in (listing, activate):
        p.add_argument("--models-dir", type=Path, default=None,
                       help=f"the model registry (default: ${MODELS_DIR_ENV}, else models)")


def models_dir(args: argparse.Namespace) -> Path:
    given: Path | None = args.models_dir
    return given if given is not None else Path(os.environ.get(MODELS_DIR_ENV) or "models")


def _num(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _day(ms: float | None) -> str:
    return "?" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _pair(a: float | None, b: float | None, fmt: str) -> str:
    return "-" if a is None or b is None else f"{a * 100:{fmt}}/{b * 100:{fmt}}"


def row(entry: ModelEntry) -> list[str]:
    """One table row: what the model is, what it was trained on, how it did out of sample, where it is active."""
    meta = entry.meta
    training = meta.get("training")
    training = training if isinstance(training, Mapping) else {}
    metrics = meta.get("metrics")
    overall = metrics.get("overall") if isinstance(metrics, Mapping) else None
    overall = overall if isinstance(overall, Mapping) else {}
    rows = _num(training, "rows")
    auc = _num(overall, "auc")
    return [entry.model_id, str(meta.get("name") or "?"), str(meta.get("symbol") or "?"),
            str(meta.get("timeframe") or "?"),
            f"{_day(_num(training, 'first_ts'))}..{_day(_num(training, 'last_ts'))}",
            "?" if rows is None else f"{int(rows):,}", "-" if auc is None else f"{auc:.3f}",
            _pair(_num(overall, "accuracy"), _num(overall, "baseline_accuracy"), ".1f"),
            _pair(_num(overall, "strategy_return"), _num(overall, "buy_and_hold_return"), "+.2f"),
            ", ".join(entry.active_for) or "-"]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def list_models(registry: ModelRegistry) -> int:
    if not registry.root.is_dir():
        print(f"no models: {registry.root} does not exist (train one: trading-agent train --data FILE "
              f"--out {registry.root / 'NAME'})")
        return 0
    entries = registry.entries()
    active = registry.active()
    if not entries:
        print(f"no models in {registry.root} (train one: trading-agent train --data FILE --out "
              f"{registry.root / 'NAME'})")
    else:
        print(table([row(e) for e in entries]))
        print("(metrics: walk-forward, out of sample only; strat/b&h after fees)")
        for e in entries:
            if e.problem:
                print(f"{e.model_id}: cannot be loaded: {e.problem}")
    if isinstance(active, Refusal):
        print(f"{registry.active_path}: {active.reason}")
        return 0
    listed = {e.path.resolve() for e in entries}
    for symbol, path in sorted(active.items()):
        target = path if Path(path).is_absolute() else registry.root / path
        if Path(target).resolve() not in listed:
            print(f"{symbol}: {registry.active_path} points at {path}, which is not a model in {registry.root}")
    return 0


def activate(registry: ModelRegistry, model_id: str, symbol: str | None) -> int:
    from engine.models.catboost_model import check_catboost

    found = registry.find(model_id)
    if isinstance(found, Refusal):
        return _fail(found.reason)
    if symbol is None:
        model_symbols = next((trained_symbols(str(e.meta.get("symbol") or "")) for e in registry.entries()
                              if e.path == found), [])
        if len(model_symbols) != 1:
            trained = ", ".join(model_symbols) or "an unrecorded symbol"
            return _fail(f"model {model_id} was trained on {trained}; say which symbol it trades with --symbol")
        symbol = model_symbols[0]
    if not plain_symbol(symbol):
        return _fail(f"--symbol {symbol!r} is not a symbol (like BTCUSDT)")
    problem = check_catboost()
    if problem:
        return _fail(problem)
    key = plain_symbol(symbol)
    refusal = registry.activate(key, found.name)  # relative to the registry, as active.json stores it
    if refusal is not None:
        return _fail(refusal.reason)
    print(f"activated {model_id} for {key} in {registry.active_path}; set trading.strategy = \"model\" in the "
          f"trading config, and the worker loads it at its next start")
    return 0


def _fail(reason: str) -> int:
    print(f"error: {reason}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    configure_logging(level="WARNING", stream=sys.stderr)  # stdout carries the table
    registry = ModelRegistry(models_dir(args))
    if args.action == "list":
        return list_models(registry)
    return activate(registry, args.model_id, args.symbol)
