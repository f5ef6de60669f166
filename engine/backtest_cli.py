"""``trading-agent backtest``: the live decision path over a CSV file with a simulated clock."""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.backtest import BacktestConfig, BacktestResult, run_backtest
from engine.cli import non_negative_float, positive_float, positive_int
from engine.core.model import CandleArrays, GenericTradingModel, SmaCrossModel
from engine.core.risk import Costs, RiskLimits
from engine.core.types import Trade
from engine.feeds.candle_file import CandleFile, iso_utc, load_candles
from engine.feeds.csvio import CsvFormatError

if TYPE_CHECKING:
    from config.trading import TradingConfig
    from engine.models.catboost_model import CatBoostTradingModel
    from engine.strategy.base import Strategy

METRIC_ROWS = [
    ("total_return", "Total return", "ret"), ("cagr", "CAGR", "ret"), ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"), ("max_drawdown", "Max drawdown", "pct"), ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"), ("exposure", "Exposure", "pct"), ("trades", "Trades", "int"),
    ("fees", "Fees", "money"), ("final_equity", "Final equity", "money"),
    ("buy_and_hold_return", "Buy & hold return", "ret"),
]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path,
                   help="candle CSV: timestamp,open,high,low,close,volume (ms, s or µs; or a date column in ISO "
                        "8601)")
    p.add_argument("--symbol", help="symbol name (default: from the file name, e.g. BTC_USDT-5m.csv -> BTCUSDT)")
    p.add_argument("--timeframe", help="candle timeframe, e.g. 5m (default: from the file name, else the "
                                       "timestamps' most common spacing)")
    p.add_argument("--strategy", action="append", dest="strategies", metavar="SPEC",
                   help="the strategy: a built-in (sma-cross, rsi-mean-reversion, bollinger-breakout; "
                        "`trading-agent strategies` lists them), path/to/file.py:Class or module.path:Class "
                        "(default: the config's [trading] strategy, sma-cross). Give it 2 or more times to compare "
                        "strategies on the same candles: one table, one chart")
    p.add_argument("--param", action="append", dest="params", metavar="[N:]NAME=VALUE",
                   help="a strategy parameter (repeatable), over the config's [strategy.params]: NAME=VALUE sets it "
                        "for every strategy given that declares NAME; N:NAME=VALUE for the N-th --strategy only")
    p.add_argument("--fast", type=positive_int, default=None,
                   help="sma-cross fast moving average, in candles (default: the config's trading.fast, 10); "
                        "the same as --param fast=N")
    p.add_argument("--slow", type=positive_int, default=None,
                   help="sma-cross slow moving average, in candles (default: the config's trading.slow, 30); "
                        "the same as --param slow=N")
    p.add_argument("--model", type=Path, help="a trained model directory (instead of --strategy)")
    p.add_argument("--force", action="store_true",
                   help="backtest a model on another symbol or timeframe than it was trained on")
    p.add_argument("--config", type=Path, help="trading config TOML (risk and signal filters); default: embedded")
    p.add_argument("--fee-bps", type=non_negative_float, default=10.0, help="fee per side in basis points (default 10)")
    p.add_argument("--slippage-bps", type=non_negative_float, default=0.0,
                   help="slippage per fill in basis points (default 0)")
    p.add_argument("--cash", type=positive_float, default=10_000.0, help="starting cash (default 10,000)")
    p.add_argument("--json", type=Path, dest="json_out",
                   help="write metrics and every trade as JSON here (comparing: a list, one per strategy)")
    p.add_argument("--chart", type=Path, help="write the equity curve as a PNG here (comparing: every strategy's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr for long runs")


def _fmt(value: float, kind: str) -> str:
    if value != value:  # NaN
        return "n/a"
    if kind == "ret":
        return f"{value * 100:+.2f} %"
    if kind == "pct":
        return f"{value * 100:.2f} %"
    if kind == "int":
        return f"{int(value)}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.3f}" if value not in (float("inf"),) else "inf"


def render_table(result: BacktestResult, *, in_sample: str | None = None, warnings: Sequence[str] = ()) -> str:
    """The report: ``in_sample`` (a model tested on its own training window) is its first line."""
    lines = [] if in_sample is None else [in_sample]
    lines.append(f"Backtest {result.symbol} · {result.model} · {len(result.ts):,} candles")
    lines += [f"  warning: {w}" for w in warnings]
    lines.append("")
    width = max(len(label) for _, label, _ in METRIC_ROWS)
    for key, label, kind in METRIC_ROWS:
        lines.append(f"  {label:<{width}}  {_fmt(result.metrics[key], kind):>14}")
    if result.open_position:
        lines.append(f"  (open position at the end, marked to the last close: {result.open_position['quantity']:.6g})")
    return "\n".join(lines)


def result_json(result: BacktestResult, *, timeframe: str = "", in_sample_candles: int = 0,
                warnings: Sequence[str] = ()) -> dict[str, object]:
    return {
        "symbol": result.symbol,
        "timeframe": timeframe,
        "model": result.model,
        "candles": len(result.ts),
        "in_sample_candles": in_sample_candles,
        "warnings": list(warnings),
        "metrics": result.metrics,
        "open_position": result.open_position,
        "trades": [{name: getattr(t, name) for name in TRADE_FIELDS} for t in result.trades],
    }


TRADE_FIELDS = tuple(f.name for f in fields(Trade))
_TRADE_INDENT = "\n" + " " * 6  # a trade's keys, as json.dumps(indent=2) places them inside "trades"


def dumps_result(doc: dict[str, object]) -> str:
    """``json.dumps(doc, indent=2)``, byte for byte, with the trades (the bulk) through json's C encoder:
    the pure-Python encoder that ``indent`` selects took ~0.5 s for 20,000 trades."""
    trades = doc["trades"]
    text = json.dumps({**doc, "trades": []}, indent=2)  # "trades" is the last key: the text ends '[]\n}'
    if not isinstance(trades, list) or not trades:
        return json.dumps(doc, indent=2)
    items = [json.dumps(t, separators=("," + _TRADE_INDENT, ": ")) for t in trades]
    body = ",\n    ".join("{" + _TRADE_INDENT + item[1:-1] + "\n    }" for item in items)
    return text[:-len("[]\n}")] + "[\n    " + body + "\n  ]\n}"


def _trained(args: argparse.Namespace) -> CatBoostTradingModel | None:
    if args.model is None:
        return None
    from engine.models.catboost_model import CatBoostTradingModel, ModelLoadError

    try:
        return CatBoostTradingModel.load(args.model)
    except ModelLoadError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Entry:
    """One run: the model the kernel trades, under which risk limits, and the strategy it stands for (if any)."""

    model: GenericTradingModel
    limits: RiskLimits
    strategy: Strategy | None = None


def _config_name(args: argparse.Namespace) -> str:
    return f"trading config {args.config}" if args.config is not None else "the trading config"


def _strategies(args: argparse.Namespace, cfg: TradingConfig) -> list[Entry]:
    """The strategies asked for (``--strategy``, else the config's), each with its parameters. The plain sma-cross
    (no ``--param``, no ``[strategy.params]``) stays on ``SmaCrossModel`` without importing the strategy layer
    (pandas); any other goes through ``engine.strategy.cli`` (the ``--param`` rules are its docstring's)."""
    specs: list[str] = [s.strip() for s in args.strategies] if args.strategies else [cfg.trading.strategy]
    if "model" in specs:
        if args.strategies:
            raise ValueError("--strategy model: a trained model is backtested with --model DIR")
        raise ValueError(f"{args.config} sets strategy = \"model\": pass --model DIR to backtest a trained model "
                         f"(a backtest does not read the model registry)")
    limits = cfg.risk.to_core()
    table = cfg.strategy.params if cfg.trading.strategy == "sma-cross" else {}
    if specs == ["sma-cross"] and not args.params and not table:
        fast = cfg.trading.fast if args.fast is None else args.fast
        slow = cfg.trading.slow if args.slow is None else args.slow
        return [Entry(SmaCrossModel(fast, slow), limits)]
    from engine.strategy.builtins import SmaCross
    from engine.strategy.cli import cli_params, load_strategies
    from engine.strategy.model import StrategyModel, strategy_limits

    given = cli_params(args.params, fast=args.fast, slow=args.slow)
    entries = []
    for strategy in load_strategies(specs, given, cfg, _config_name(args)):
        # sma-cross trades exactly as SmaCrossModel (a test): the fast path, whatever set its parameters
        model: GenericTradingModel = (SmaCrossModel(strategy.fast, strategy.slow) if type(strategy) is SmaCross
                                      else StrategyModel(strategy))
        entries.append(Entry(model, strategy_limits(strategy, limits), strategy))
    names = [e.model.name for e in entries]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise ValueError(f"{twice} is asked for twice; give one other parameters (--param N:NAME=VALUE sets them "
                         "for the N-th --strategy)")
    return entries


def _warnings(entry: Entry, data: CandleFile) -> list[str]:
    """The data's warnings, and the strategy's when it is written for other candles than the data holds."""
    if entry.strategy is None:
        return list(data.warnings)
    from engine.strategy.cli import timeframe_warning

    other = timeframe_warning(entry.strategy, data.timeframe, data.path.name)
    return [*data.warnings, *([other] if other else [])]


def _model_symbols(model: CatBoostTradingModel) -> tuple[set[str], set[str]]:
    """The symbols (as BASEQUOTE) and timeframes a model's metadata says it was trained on (empty: unknown)."""
    symbols = {re.sub(r"[^A-Za-z0-9]", "", s).upper() for s in model.symbol.split(",") if s.strip()}
    timeframes = {t.strip() for t in model.timeframe.split(",") if t.strip()}
    return symbols, timeframes


def _mismatch(model: CatBoostTradingModel, data: CandleFile) -> str | None:
    symbols, timeframes = _model_symbols(model)
    if (not symbols or data.symbol in symbols) and (not timeframes or data.timeframe in timeframes):
        return None
    return (f"model {model.name} was trained on {model.symbol or '?'} {model.timeframe or '?'} candles, "
            f"{data.path.name} holds {data.symbol} {data.timeframe}; pass --force to backtest it anyway")


def _in_sample(model: CatBoostTradingModel, data: CandleFile) -> tuple[int, str | None]:
    """Candles inside the model's training window, and the report's first line saying so."""
    first, last = model.training.first_ts, model.training.last_ts
    if first is None or last is None:
        return 0, None
    ts = data.arrays.ts
    inside = int(np.count_nonzero((ts >= first) & (ts <= last)))
    if inside == 0:
        return 0, None
    return inside, (f"IN-SAMPLE: {inside:,} of {len(ts):,} candles lie inside the model's training window "
                    f"({iso_utc(first)} .. {iso_utc(last)}); these numbers are not out of sample")


def _say(lines: Sequence[str], kind: str) -> None:
    for line in lines:
        print(f"{kind}: {line}", file=sys.stderr)


def _header(name: str, width: int = 22) -> list[str]:
    """A strategy's name as a column heading: broken after '(' and ',' into lines of at most ``width``."""
    lines: list[str] = []
    for token in re.split(r"(?<=[(,])", name):
        if lines and len(lines[-1]) + len(token) <= width:
            lines[-1] += token
        else:
            lines.append(token)
    return lines


def render_compare(results: Sequence[BacktestResult], *, warnings: Sequence[str] = ()) -> str:
    """One table: the single report's metric rows, one column per strategy headed by its name."""
    first = results[0]
    lines = [f"Compare {first.symbol} · {len(first.ts):,} candles · {len(results)} strategies"]
    lines += [f"  warning: {w}" for w in warnings]
    lines.append("")
    width = max(len(label) for _, label, _ in METRIC_ROWS)
    heads = [_header(r.model) for r in results]
    col = max(14, *(len(line) for head in heads for line in head))
    depth = max(len(head) for head in heads)
    for k in range(depth):  # headings sit on the bottom line, just above their numbers
        cells = [head[k - depth + len(head)] if k >= depth - len(head) else "" for head in heads]
        lines.append((f"  {'':<{width}}" + "".join(f"  {c:>{col}}" for c in cells)).rstrip())
    for key, label, kind in METRIC_ROWS:
        lines.append(f"  {label:<{width}}" + "".join(f"  {_fmt(r.metrics[key], kind):>{col}}" for r in results))
    held = [r.model for r in results if r.open_position]
    if held:
        lines.append(f"  (open position at the end, marked to the last close: {', '.join(held)})")
    return "\n".join(lines)


def dumps_results(docs: Sequence[dict[str, object]]) -> str:
    """``json.dumps(docs, indent=2)``, byte for byte, each document through ``dumps_result``."""
    if not docs:
        return "[]"
    return "[\n" + ",\n".join(textwrap.indent(dumps_result(doc), "  ") for doc in docs) + "\n]"


def _backtest(candles: CandleArrays, entry: Entry, config: BacktestConfig, quiet: bool) -> BacktestResult:
    bar = None
    progress = None
    if not quiet and len(candles) > 200_000:
        from tqdm import tqdm

        bar = tqdm(total=len(candles), unit="candle", unit_scale=True, file=sys.stderr, leave=False)
        progress = bar.update
    try:
        return run_backtest(candles, entry.model, replace(config, limits=entry.limits), progress)
    finally:
        if bar is not None:
            bar.close()


def run(args: argparse.Namespace) -> int:
    from config.trading import ConfigError, load_trading_config

    try:
        cfg = load_trading_config(args.config)
        specs = args.strategies or [cfg.trading.strategy]
        if args.model is not None or any(spec.strip() != "sma-cross" for spec in specs):
            # a trained model or a strategy's code may log; sma-cross's own path logs nothing and so does not
            # import structlog (~30 ms)
            from engine.logs import configure_logging

            configure_logging(level="WARNING", stream=sys.stderr)  # stdout carries the report
        if args.model is not None and (args.strategies or args.params):
            raise ValueError("--model backtests a trained model: leave out --strategy and --param")
        trained = _trained(args)
        entries = [Entry(trained, cfg.risk.to_core())] if trained is not None else _strategies(args, cfg)
        longest = max((e.model for e in entries), key=lambda m: m.lookback)
        data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe,
                            min_candles=longest.lookback + 1, needed_by=f"a backtest of {longest.name}")
        costs = Costs(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
        problem = None if trained is None else _mismatch(trained, data)
        if problem is not None and not args.force:
            raise ValueError(problem)
        candles, symbol = data.arrays, data.symbol
        config = BacktestConfig(symbol=symbol, cash=args.cash, limits=cfg.risk.to_core(), costs=costs,
                                filters=cfg.signal_filters.to_core())
        results = [_backtest(candles, entry, config, args.no_progress) for entry in entries]
    except (ConfigError, CsvFormatError, ValueError, OSError) as exc:  # a strategy's own error is a ConfigError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _say(data.notes, "note")
    if problem is not None:
        _say([problem.split(";")[0] + " (--force)"], "note")
    if len(results) > 1:
        return _report_comparison(args, results, [_warnings(e, data) for e in entries], data)
    in_sample_candles, in_sample = (0, None) if trained is None else _in_sample(trained, data)
    result, warnings = results[0], _warnings(entries[0], data)
    print(render_table(result, in_sample=in_sample, warnings=warnings))
    if args.json_out:
        args.json_out.write_text(dumps_result(result_json(result, timeframe=data.timeframe,
                                                          in_sample_candles=in_sample_candles,
                                                          warnings=[*([in_sample] if in_sample else []),
                                                                    *warnings])))
        print(f"\nJSON written to {args.json_out}")
    if args.chart:
        from engine.charts import equity_png

        args.chart.write_bytes(equity_png([int(t) for t in result.ts], [float(e) for e in result.equity],
                                          title=f"{symbol} · {result.model}"))
        print(f"Equity chart written to {args.chart}")
    return 0


def _report_comparison(args: argparse.Namespace, results: Sequence[BacktestResult],
                       warnings: Sequence[Sequence[str]], data: CandleFile) -> int:
    shown = list(dict.fromkeys(w for ws in warnings for w in ws))  # the data's once, then each strategy's
    print(render_compare(results, warnings=shown))
    if args.json_out:
        docs = [result_json(r, timeframe=data.timeframe, warnings=w) for r, w in zip(results, warnings, strict=True)]
        args.json_out.write_text(dumps_results(docs))
        print(f"\nJSON written to {args.json_out}")
    if args.chart:
        from engine.charts import equity_curves_png

        ts = [int(t) for t in results[0].ts]
        args.chart.write_bytes(equity_curves_png(ts, [(r.model, [float(e) for e in r.equity]) for r in results],
                                                 title=f"{data.symbol} · {len(results)} strategies"))
        print(f"Equity chart written to {args.chart}")
    return 0
