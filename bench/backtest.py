"""Backtest speed and memory: ours against backtesting.py on the same strategy and data, plus the live
loop's per-candle decision latency. Prints a table.

    .venv/bin/python bench/backtest.py [--candles 1000000]

Each side runs in its own subprocess so that peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bootstrap_candles, peak_rss_mb, source_path

FAST, SLOW = 10, 30


def run_ours(n: int) -> dict[str, float]:
    from engine.backtest import BacktestConfig, run_backtest
    from engine.core.kernel import JITTED
    from engine.core.model import SmaCrossModel
    from engine.core.risk import Costs, RiskLimits, SignalFilters

    assert JITTED, "the benchmark measures the compiled kernel: install numba"
    candles = bootstrap_candles(n)
    base_rss = peak_rss_mb()
    limits = RiskLimits(1.0, 1.0, 1.0, 0, 0, 0, 0, 0)
    config = BacktestConfig(symbol="BTCUSD", cash=10_000, limits=limits, costs=Costs(0, 0),
                            filters=SignalFilters(0.6, 0))
    run_backtest(candles.slice(0, 50_000), SmaCrossModel(FAST, SLOW), config)  # warm caches
    t0 = time.perf_counter()
    result = run_backtest(candles, SmaCrossModel(FAST, SLOW), config)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "candles": n, "trades": len(result.trades), "final_equity": result.final_equity,
            "peak_rss_mb": peak_rss_mb(), "data_rss_mb": base_rss}


def run_theirs(n: int) -> dict[str, float]:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from backtesting import Strategy
        from backtesting.lib import FractionalBacktest, crossover

    candles = bootstrap_candles(n)
    index = pd.to_datetime(candles.ts, unit="ms")
    df = pd.DataFrame({"Open": candles.open, "High": candles.high, "Low": candles.low, "Close": candles.close,
                       "Volume": candles.volume}, index=index)
    del candles
    base_rss = peak_rss_mb()

    def sma(values: np.ndarray, k: int) -> np.ndarray:
        return pd.Series(values).rolling(k).mean().to_numpy()

    raw_close = df["Close"].to_numpy()  # FractionalBacktest scales prices; average the real ones

    class SmaCross(Strategy):
        def init(self) -> None:
            self.a = self.I(sma, raw_close, FAST)
            self.b = self.I(sma, raw_close, SLOW)

        def next(self) -> None:
            if crossover(self.a, self.b):
                if not self.position:
                    self.buy()
            elif crossover(self.b, self.a) and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(df, SmaCross, cash=10_000, commission=0.0, fractional_unit=1e-8)
        t0 = time.perf_counter()
        stats = bt.run()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "candles": n, "trades": int(stats["# Trades"]),
            "final_equity": float(stats["Equity Final [$]"]), "peak_rss_mb": peak_rss_mb(), "data_rss_mb": base_rss}


def run_latency(n: int = 3000) -> dict[str, float]:
    """Live path per candle: trailing-window features + model + TradingCore.on_candle (no I/O)."""
    from engine.core.clock import SimClock
    from engine.core.model import SmaCrossModel
    from engine.core.risk import Costs, RiskLimits, SignalFilters
    from engine.core.trading import TradingCore
    from engine.loop import live_proba

    candles = bootstrap_candles(n + 100)
    model = SmaCrossModel(FAST, SLOW)
    core = TradingCore(limits=RiskLimits(), costs=Costs(), filters=SignalFilters(), starting_cash=10_000,
                       clock=SimClock())
    window: deque = deque(maxlen=model.lookback)
    samples = []
    for i in range(n + 100):
        candle = candles.candle(i)
        t0 = time.perf_counter()
        window.append(candle)
        proba = live_proba(model, window)
        core.on_candle("BTCUSD", candle, proba)
        if i >= 100:
            samples.append((time.perf_counter() - t0) * 1000.0)
    return {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99)),
            "max_ms": float(np.max(samples))}


def child(side: str, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", side, "--candles", str(n)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["ours", "theirs", "latency"])
    args = parser.parse_args()
    if args.child:
        fn = {"ours": run_ours, "theirs": run_theirs, "latency": lambda n: run_latency()}[args.child]
        print(json.dumps(fn(args.candles)))
        return 0
    n = args.candles
    print(f"Backtest benchmark: SMA cross ({FAST}/{SLOW}), long only, full equity, no fees")
    print("(fees would erode equity to nothing over 1M candles and make the two runs incomparable).")
    src = source_path()
    print(f"Data: {n:,} 5m candles block-bootstrapped (one-day blocks, seed 42) from the real "
          f"{src.parent.name}/{src.name};")
    print("      synthetic in sequence, real in candle shape. Each side runs in its own process.\n")
    ours, theirs, lat = child("ours", n), child("theirs", n), child("latency", n)
    rows = [("ours (trading-agent)", ours), ("backtesting.py 0.6.6", theirs)]
    print(f"| {'engine':<22} | {'candles/s':>12} | {'seconds':>8} | {'trades':>7} | {'final equity':>13} | "
          f"{'peak RSS MB':>11} |")
    print(f"|{'-' * 24}|{'-' * 14}|{'-' * 10}|{'-' * 9}|{'-' * 15}|{'-' * 13}|")
    for name, r in rows:
        print(f"| {name:<22} | {r['candles'] / r['seconds']:>12,.0f} | {r['seconds']:>8.2f} | {r['trades']:>7} | "
              f"{r['final_equity']:>13,.2f} | {r['peak_rss_mb']:>11.0f} |")
    ratio = (ours["candles"] / ours["seconds"]) / (theirs["candles"] / theirs["seconds"])
    print(f"\nspeed ratio: {ratio:.1f}x (target >= 20x); peak memory {ours['peak_rss_mb']:.0f} MB vs "
          f"{theirs['peak_rss_mb']:.0f} MB")
    print("trade counts can differ slightly: where the two averages are equal up to float noise, backtesting.py's")
    print("strict comparison decides on the last bits and ours treats them as level (engine.core.model._side).")
    print(f"live decision latency per candle (features + model + risk + paper fill, no I/O): "
          f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms (target p99 <= 2 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
