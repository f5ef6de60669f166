"""``trading-agent backtest``: the live decision path over a CSV file with a simulated clock."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from engine.backtest import BacktestConfig, BacktestResult, run_backtest
from engine.core.model import GenericTradingModel, SmaCrossModel
from engine.core.risk import Costs

METRIC_ROWS = [
    ("total_return", "Total return", "ret"), ("cagr", "CAGR", "ret"), ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"), ("max_drawdown", "Max drawdown", "pct"), ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"), ("exposure", "Exposure", "pct"), ("trades", "Trades", "int"),
    ("fees", "Fees", "money"), ("final_equity", "Final equity", "money"),
    ("buy_and_hold_return", "Buy & hold return", "ret"),
]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="CSV file: timestamp,open,high,low,close,volume")
    p.add_argument("--symbol", help="symbol name (default: from the file name, e.g. BTC_USDT-5m.csv -> BTCUSDT)")
    p.add_argument("--strategy", default="sma-cross", choices=["sma-cross"])
    p.add_argument("--fast", type=int, default=10)
    p.add_argument("--slow", type=int, default=30)
    p.add_argument("--model", type=Path, help="a trained model directory (overrides --strategy)")
    p.add_argument("--config", type=Path, help="trading config TOML (risk and signal filters); default: embedded")
    p.add_argument("--fee-bps", type=float, default=10.0)
    p.add_argument("--slippage-bps", type=float, default=0.0)
    p.add_argument("--cash", type=float, default=10_000.0)
    p.add_argument("--json", type=Path, dest="json_out", help="write metrics and every trade as JSON here")
    p.add_argument("--chart", type=Path, help="write the equity curve as a PNG here")
    p.add_argument("--no-progress", action="store_true")


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


def render_table(result: BacktestResult) -> str:
    lines = [f"Backtest {result.symbol} · {result.model} · {len(result.ts):,} candles", ""]
    width = max(len(label) for _, label, _ in METRIC_ROWS)
    for key, label, kind in METRIC_ROWS:
        lines.append(f"  {label:<{width}}  {_fmt(result.metrics[key], kind):>14}")
    if result.open_position:
        lines.append(f"  (open position at the end, marked to the last close: {result.open_position['quantity']:.6g})")
    return "\n".join(lines)


def result_json(result: BacktestResult) -> dict[str, object]:
    return {
        "symbol": result.symbol,
        "model": result.model,
        "candles": len(result.ts),
        "metrics": result.metrics,
        "open_position": result.open_position,
        "trades": [asdict(t) for t in result.trades],
    }


def _model(args: argparse.Namespace) -> GenericTradingModel:
    if args.model is not None:
        from engine.models.catboost_model import CatBoostTradingModel

        return CatBoostTradingModel.load(args.model)
    return SmaCrossModel(args.fast, args.slow)


def run(args: argparse.Namespace) -> int:
    from config.settings import ConfigError, load_trading_config
    from engine.feeds.csvio import CsvFormatError, read_csv, symbol_from_filename

    try:
        cfg = load_trading_config(args.config)
        candles = read_csv(args.data)
        model = _model(args)
        costs = Costs(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
    except (ConfigError, CsvFormatError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(candles) < 2:
        print(f"error: {args.data} has {len(candles)} candles; a backtest needs at least 2", file=sys.stderr)
        return 2
    symbol = args.symbol or symbol_from_filename(args.data.name)[0]
    config = BacktestConfig(symbol=symbol, cash=args.cash, limits=cfg.risk.to_core(), costs=costs,
                            filters=cfg.signal_filters.to_core())
    progress = None
    bar = None
    if not args.no_progress and len(candles) > 200_000:
        from tqdm import tqdm

        bar = tqdm(total=len(candles), unit="candle", unit_scale=True, file=sys.stderr)
        progress = bar.update
    result = run_backtest(candles, model, config, progress)
    if bar is not None:
        bar.close()
    print(render_table(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result_json(result), indent=2))
        print(f"\nJSON written to {args.json_out}")
    if args.chart:
        from engine.charts import equity_png

        args.chart.write_bytes(equity_png([int(t) for t in result.ts], [float(e) for e in result.equity],
                                          title=f"{symbol} · {result.model}"))
        print(f"Equity chart written to {args.chart}")
    return 0
