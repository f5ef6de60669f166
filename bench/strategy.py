"""A user's pandas strategy on 1,000,000 candles, whole processes, side by side with backtesting.py.

    .venv/bin/python bench/strategy.py [--candles 1000000] [--repeat 3] [--profile]

The strategy is the EMA cross with an RSI filter of ``engine/strategy/examples/ema_rsi.py`` (EMA 12/26 of the
close, enter on the cross up while RSI(14) < 70, exit on the cross down, a 5 % stop-loss), loaded from its file
as a user's strategy is. One candle CSV (block-bootstrapped from real candles, see ``bench/common.py``) is
written to a temporary folder, then each of these runs ``--repeat`` times as its own process, timed from start
to exit, with its peak RSS (``ru_maxrss`` of that child):

* ``trading-agent backtest --strategy engine/strategy/examples/ema_rsi.py:EmaRsi`` cold: the columnar cache
  beside the CSV removed first, so the text is parsed;
* the same, warm: the cache from the run before;
* backtesting.py 0.6.6 (``FractionalBacktest``): a script that reads the same CSV with pandas, computes the
  same EMAs and RSI with pandas and runs the same rule, the stop as an ``sl`` order 5 % below the fill (the
  next open), as tests/strategy/test_crosscheck_strategies.py checks trade for trade on real candles.

Long only, full equity, no fees (fees would erode equity to nothing over a million candles and make the runs
incomparable). ``--profile`` then times the stages of our run inside one process (CSV, the strategy's pandas
methods, their checking into the kernel's inputs, the kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# This parent process stays small (no numpy, no engine): a child's ru_maxrss starts from its parent's
# peak at the fork, so a large parent would inflate every peak RSS below. The children import what they need.

STRATEGY_FILE = ROOT / "engine" / "strategy" / "examples" / "ema_rsi.py"
SPEC = f"{STRATEGY_FILE.relative_to(ROOT)}:EmaRsi"
FAST, SLOW, RSI_PERIOD, RSI_MAX, STOPLOSS = 12, 26, 14, 70.0, -0.05  # the example's defaults
STARTUP = max(50, 3 * SLOW)  # the example's startup_candles
START_MS = 1_672_531_200_000
# ------------------------------------------------------------------ the children


def run_backtesting_py(csv: str) -> dict[str, float]:
    """The same rule written for backtesting.py, indicators with pandas as its users write them."""
    import numpy as np
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from backtesting import Strategy
        from backtesting.lib import FractionalBacktest, crossover

    unit = 1e-8  # FractionalBacktest trades satoshis and scales the prices it holds by this
    df = pd.read_csv(csv)
    df.index = pd.to_datetime(df.pop("timestamp"), unit="ms")
    df.columns = ["Open", "High", "Low", "Close", "Volume"]
    close = df["Close"]
    next_open = np.append(df["Open"].to_numpy()[1:], np.nan)

    def ema(span: int) -> Any:
        return close.ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()

    def wilder_rsi(period: int) -> Any:
        change = close.diff()
        gain = change.clip(lower=0).ewm(alpha=1 / period, adjust=False, min_periods=period).mean()
        loss = (-change).clip(lower=0).ewm(alpha=1 / period, adjust=False, min_periods=period).mean()
        return (100 * gain / (gain + loss)).where(loss > 0, 100.0).where(gain.notna()).to_numpy()

    class EmaRsi(Strategy):  # type: ignore[misc]  # backtesting.py ships no type hints
        def init(self) -> None:
            self.fast = self.I(ema, FAST)
            self.slow = self.I(ema, SLOW)
            self.rsi = self.I(wilder_rsi, RSI_PERIOD)

        def next(self) -> None:
            i = len(self.data) - 1
            if i < STARTUP:
                return
            if crossover(self.slow, self.fast):
                if self.position:
                    self.position.close()
            elif crossover(self.fast, self.slow) and self.rsi[-1] < RSI_MAX and not self.position \
                    and i + 1 < len(next_open):
                self.buy(sl=next_open[i] * (1 + STOPLOSS) * unit)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = FractionalBacktest(df, EmaRsi, cash=10_000, commission=0.0, fractional_unit=unit,
                                   finalize_trades=False).run()
    return {"trades": int(stats["# Trades"]), "final_equity": float(stats["Equity Final [$]"])}


def make_csv(csv: str, n: int) -> dict[str, str]:
    from bench.common import bootstrap_csv, source_path

    bootstrap_csv(Path(csv), n, start_ms=START_MS)
    src = source_path()
    return {"source": f"{src.parent.name}/{src.name}"}


def profile(csv: str) -> dict[str, float]:
    """Our run's stages, timed inside one process (warm cache, as the warm row)."""
    t0 = time.perf_counter()
    import numpy as np

    from engine.backtest import BacktestConfig, run_backtest
    from engine.core.risk import Costs, RiskLimits, SignalFilters
    from engine.feeds.candle_file import load_candles
    from engine.strategy.base import candle_frame, to_signals
    from engine.strategy.loader import load_strategy
    from engine.strategy.model import StrategyModel, strategy_limits

    t1 = time.perf_counter()
    candles = load_candles(Path(csv)).arrays
    t2 = time.perf_counter()
    strategy = load_strategy(str(STRATEGY_FILE) + ":EmaRsi")
    frame = candle_frame(candles)
    t3 = time.perf_counter()
    frame = strategy._populated(frame)
    t4 = time.perf_counter()
    to_signals(strategy, frame, np.asarray(candles.ts, dtype=np.int64))
    t5 = time.perf_counter()
    limits = strategy_limits(strategy, RiskLimits(1, 1, 1, 0, 0, 0, 0, 0))
    config = BacktestConfig(symbol="BTCUSDT", cash=10_000, limits=limits, costs=Costs(0, 0),
                            filters=SignalFilters(0.0, 0))
    result = run_backtest(candles, StrategyModel(strategy), config)  # the signals again, then the kernel
    t6 = time.perf_counter()
    return {"imports (engine, numpy, pandas)": t1 - t0, "read candles (columnar cache)": t2 - t1,
            "candle DataFrame (candle_frame)": t3 - t2, "the strategy's populate_* (pandas)": t4 - t3,
            "their checks into the kernel's inputs (to_signals)": t5 - t4,
            "run_backtest less one signals pass (kernel, trades, tags)": (t6 - t5) - (t5 - t2),
            "in-process total": t6 - t0, "trades": float(len(result.trades))}


# ------------------------------------------------------------------ the table


def our_command(csv: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "backtest", "--strategy", SPEC, "--data", str(csv), "--fee-bps", "0",
            "--config", str(config), "--no-progress"]


@dataclass
class Row:
    label: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    trades: int = -1


def repeat(label: str, times: int, run: Callable[[], tuple[float, float, float, int]]) -> Row:
    row = Row(label)
    for _ in range(times):
        seconds, cpu, peak, row.trades = run()
        row.walls.append(seconds)
        row.cpus.append(cpu)
        row.peaks.append(peak)
        print(f"  {label}: {seconds:.2f} s, CPU {cpu:.2f} s, {peak:.0f} MB", file=sys.stderr)
    return row


def span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}-{format(hi, fmt)}"


def child(args: argparse.Namespace) -> int:
    if args.child == "csv":
        result: dict[str, object] = dict(make_csv(args.csv, args.candles))
    elif args.child == "profile":
        result = dict(profile(args.csv))
    else:
        result = dict(run_backtesting_py(args.csv))
    print(json.dumps(result))
    return 0


def main() -> int:
    # here, not at the top: a peer's child process (this file with --child) must not import our engine
    from bench.common import FULL_EQUITY, our_trades, timed

    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also time our run's stages in one process")
    parser.add_argument("--child", choices=["backtesting.py", "csv", "profile"])
    parser.add_argument("--csv")
    args = parser.parse_args()
    if args.child:
        return child(args)
    n = args.candles
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "BTC_USDT-5m.csv"
        made = subprocess.run([sys.executable, __file__, "--child", "csv", "--csv", str(csv), "--candles", str(n)],
                              check=True, capture_output=True, text=True, cwd=ROOT)
        src = json.loads(made.stdout.strip().splitlines()[-1])["source"]
        print(f"Strategy benchmark: {SPEC} (EMA {FAST}/{SLOW} cross, RSI({RSI_PERIOD}) < {RSI_MAX:g} filter, "
              f"{-STOPLOSS:.0%} stop),")
        print(f"long only, full equity, no fees, {n:,} 5m candles block-bootstrapped (one-day blocks, seed 42) "
              f"from the real {src}.")
        print(f"Whole processes, start to exit, {args.repeat} runs each; load average at start "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
        config = folder / "full-equity.toml"
        config.write_text(FULL_EQUITY)
        cache = folder / f".{csv.name}.arrow"

        def ours(cold: bool) -> tuple[float, float, float, int]:
            if cold:
                cache.unlink(missing_ok=True)
            seconds, cpu, peak, out = timed(our_command(csv, config))
            return seconds, cpu, peak, our_trades(out)

        def peer() -> tuple[float, float, float, int]:
            seconds, cpu, peak, out = timed([sys.executable, __file__, "--child", "backtesting.py", "--csv", str(csv)])
            return seconds, cpu, peak, int(json.loads(out.strip().splitlines()[-1])["trades"])

        rows = [repeat("trading-agent backtest --strategy, cold (parses the CSV)", args.repeat, lambda: ours(True)),
                repeat("trading-agent backtest --strategy, warm (columnar cache)", args.repeat, lambda: ours(False)),
                repeat("backtesting.py 0.6.6, same rule", args.repeat, peer)]
        stages = None
        if args.profile:
            ran = subprocess.run([sys.executable, __file__, "--child", "profile", "--csv", str(csv)], check=True,
                                 capture_output=True, text=True, cwd=ROOT)
            stages = json.loads(ran.stdout.strip().splitlines()[-1])
    print(f"| {'whole process':<56} | {'wall s':>11} | {'CPU s':>11} | {'candles/s (best)':>16} | "
          f"{'peak RSS MB':>11} | {'trades':>6} |")
    print(f"|{'-' * 58}|{'-' * 13}|{'-' * 13}|{'-' * 18}|{'-' * 13}|{'-' * 8}|")
    for r in rows:
        print(f"| {r.label:<56} | {span(r.walls, '.2f'):>11} | {span(r.cpus, '.2f'):>11} | "
              f"{n / min(r.walls):>16,.0f} | {span(r.peaks, '.0f'):>11} | {r.trades:>6} |")
    cold, warm, peer_wall = (statistics.median(r.walls) for r in rows)
    cold_cpu, warm_cpu, peer_cpu = (statistics.median(r.cpus) for r in rows)
    cold_rss, warm_rss, peer_rss = (max(r.peaks) for r in rows)
    print(f"\nmedian speed-up over backtesting.py ({peer_wall:.2f} s): cold {peer_wall / cold:.1f}x, warm "
          f"{peer_wall / warm:.1f}x (goal >= 10x); in CPU time cold {peer_cpu / cold_cpu:.1f}x, warm "
          f"{peer_cpu / warm_cpu:.1f}x")
    print(f"peak RSS {cold_rss:.0f} / {warm_rss:.0f} MB against {peer_rss:.0f} MB (goal: lower)")
    if stages is not None:
        print("\nwhere our warm run's time goes (one process, seconds):")
        for name, seconds in stages.items():
            if name != "trades":
                print(f"  {name:<58} {seconds:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
