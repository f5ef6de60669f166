"""Backtest speed and memory as a user feels them: whole processes, start to exit, side by side.

    .venv/bin/python bench/backtest.py [--candles 1000000] [--repeat 3]

One candle CSV (block-bootstrapped from real candles, see ``bench/common.py``) is written to a temporary
folder, then each of these runs ``--repeat`` times as its own process, timed from start to exit, with
its peak RSS (``ru_maxrss`` of that child):

* ``trading-agent backtest`` cold: the columnar cache beside the CSV removed first, so the text is parsed;
* ``trading-agent backtest`` warm: the cache from the run before;
* backtesting.py (``FractionalBacktest``) and vectorbt (``Portfolio.from_signals``), each a script that
  reads the same CSV with pandas and runs the same SMA cross;
* ``trading-agent backtest --model``: a CatBoost model (trained first on the shipped sample, not timed),
  features and predictions over every candle, warm.

SMA cross 10/30, long only, full equity, no fees (fees would erode equity to nothing over a million
candles and make the runs incomparable). Also printed: the live loop's per-candle decision latency.
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
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# This parent process stays small (no numpy, no engine): a child's ru_maxrss starts from its parent's
# peak at the fork, so a large parent would inflate every peak RSS below. The children import what they need.

FAST, SLOW = 10, 30
START_MS = 1_893_456_000_000  # 2030-01-01: after the sample the model is trained on (no IN-SAMPLE line)
# ------------------------------------------------------------------ the peers, each a whole process


def run_backtesting_py(csv: str) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from backtesting import Strategy
        from backtesting.lib import FractionalBacktest, crossover

    df = pd.read_csv(csv)
    df.index = pd.to_datetime(df.pop("timestamp"), unit="ms")
    df.columns = ["Open", "High", "Low", "Close", "Volume"]
    raw_close = df["Close"].to_numpy()  # FractionalBacktest scales prices; average the real ones

    def sma(values: np.ndarray, k: int) -> np.ndarray:
        return pd.Series(values).rolling(k).mean().to_numpy()

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
        stats = FractionalBacktest(df, SmaCross, cash=10_000, commission=0.0, fractional_unit=1e-8).run()
    return {"trades": int(stats["# Trades"]), "final_equity": float(stats["Equity Final [$]"])}


def run_vectorbt(csv: str) -> dict[str, float]:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt

    df = pd.read_csv(csv)
    close = pd.Series(df["close"].to_numpy(), index=pd.to_datetime(df["timestamp"], unit="ms"))
    fast, slow = vbt.MA.run(close, FAST), vbt.MA.run(close, SLOW)
    pf = vbt.Portfolio.from_signals(close, fast.ma_crossed_above(slow), fast.ma_crossed_below(slow),
                                    init_cash=10_000, fees=0.0, freq="5min")
    return {"trades": int(pf.trades.count()), "final_equity": float(pf.final_value())}


def run_latency(n: int = 3000) -> dict[str, float]:
    """Live path per candle: trailing-window features + model + TradingCore.on_candle (no I/O)."""
    import numpy as np

    from bench.common import bootstrap_candles
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
    return {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}


def make_csv(csv: str, n: int) -> dict[str, str]:
    from bench.common import bootstrap_csv, source_path

    bootstrap_csv(Path(csv), n, start_ms=START_MS)
    src = source_path()
    return {"source": f"{src.parent.name}/{src.name}"}


CHILDREN = {"backtesting.py": run_backtesting_py, "vectorbt": run_vectorbt}


# ------------------------------------------------------------------ the table


def our_command(csv: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "backtest", "--data", str(csv), "--fee-bps", "0", "--config",
            str(config), "--no-progress", *extra]


def repeat(label: str, n: int, times: int, run: object) -> dict[str, object]:
    walls, cpus, peaks, trades = [], [], [], -1
    for _ in range(times):
        seconds, cpu, peak, trades = run()  # type: ignore[operator]
        walls.append(seconds)
        cpus.append(cpu)
        peaks.append(peak)
        print(f"  {label}: {seconds:.2f} s, CPU {cpu:.2f} s, {peak:.0f} MB", file=sys.stderr)
    return {"label": label, "walls": walls, "cpus": cpus, "peaks": peaks, "trades": trades, "n": n}


def span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}-{format(hi, fmt)}"


def train_model(folder: Path) -> Path:
    out = folder / "model"
    sample = ROOT / "data" / "sample" / "BTC_USDT-5m.csv"
    subprocess.run([sys.executable, "-m", "engine.cli", "train", "--data", str(sample), "--out", str(out),
                    "--iterations", "100", "--folds", "2", "--no-progress"], cwd=ROOT, check=True,
                   capture_output=True)
    return out


def main() -> int:
    # here, not at the top: a peer's child process (this file with --child) must not import our engine
    from bench.common import FULL_EQUITY, our_trades, timed

    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=[*CHILDREN, "latency", "csv"])
    parser.add_argument("--csv")
    args = parser.parse_args()
    if args.child:
        if args.child == "csv":
            result: dict[str, object] = dict(make_csv(args.csv, args.candles))
        else:
            result = dict(run_latency() if args.child == "latency" else CHILDREN[args.child](args.csv))
        print(json.dumps(result))
        return 0
    n = args.candles
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "BTC_USDT-5m.csv"
        made = subprocess.run([sys.executable, __file__, "--child", "csv", "--csv", str(csv), "--candles", str(n)],
                              check=True, capture_output=True, text=True, cwd=ROOT)
        src = json.loads(made.stdout.strip().splitlines()[-1])["source"]
        print(f"Backtest benchmark: SMA cross ({FAST}/{SLOW}), long only, full equity, no fees, {n:,} 5m candles")
        print(f"block-bootstrapped (one-day blocks, seed 42) from the real {src}.")
        print(f"Whole processes, start to exit, {args.repeat} runs each; load average at start "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
        config = folder / "full-equity.toml"
        config.write_text(FULL_EQUITY)
        cache = folder / f".{csv.name}.arrow"
        model = train_model(folder)

        def ours(cold: bool, *extra: str) -> tuple[float, float, float, int]:
            if cold:
                cache.unlink(missing_ok=True)
            seconds, cpu, peak, out = timed(our_command(csv, config, *extra))
            return seconds, cpu, peak, our_trades(out)

        def peer(name: str) -> tuple[float, float, float, int]:
            seconds, cpu, peak, out = timed([sys.executable, __file__, "--child", name, "--csv", str(csv)])
            return seconds, cpu, peak, int(json.loads(out.strip().splitlines()[-1])["trades"])

        rows = [repeat("trading-agent backtest, cold (parses the CSV)", n, args.repeat, lambda: ours(True)),
                repeat("trading-agent backtest, warm (columnar cache)", n, args.repeat, lambda: ours(False)),
                repeat("backtesting.py 0.6.6", n, args.repeat, lambda: peer("backtesting.py")),
                repeat("vectorbt", n, args.repeat, lambda: peer("vectorbt")),
                repeat("trading-agent backtest --model (CatBoost), warm", n, args.repeat,
                       lambda: ours(False, "--model", str(model), "--force"))]
    print(f"| {'whole process':<48} | {'wall s':>11} | {'CPU s':>11} | {'candles/s (best)':>16} | "
          f"{'peak RSS MB':>11} | {'trades':>6} |")
    print(f"|{'-' * 50}|{'-' * 13}|{'-' * 13}|{'-' * 18}|{'-' * 13}|{'-' * 8}|")
    for r in rows:
        walls, cpus, peaks = r["walls"], r["cpus"], r["peaks"]
        print(f"| {r['label']:<48} | {span(walls, '.2f'):>11} | {span(cpus, '.2f'):>11} | "  # type: ignore[arg-type]
              f"{n / min(walls):>16,.0f} | {span(peaks, '.0f'):>11} | "  # type: ignore[call-overload, arg-type]
              f"{r['trades']:>6} |")
    cold, warm, bt, vbt = (statistics.median(r["walls"]) for r in rows[:4])  # type: ignore[arg-type]
    peer_best = min(bt, vbt)
    print(f"\nmedian ratio against the faster peer ({peer_best:.2f} s): warm {peer_best / warm:.1f}x "
          f"(goal >= 20x), cold {peer_best / cold:.1f}x (goal >= 8x); peak RSS goal <= 200 MB")
    c_cold, c_warm, c_bt, c_vbt = (statistics.median(r["cpus"]) for r in rows[:4])  # type: ignore[arg-type]
    c_peer = min(c_bt, c_vbt)
    print(f"in CPU seconds (steadier than wall time on a shared machine), against the peer using less "
          f"({c_peer:.2f} s): warm {c_peer / c_warm:.1f}x, cold {c_peer / c_cold:.1f}x")
    print("vectorbt fills at the signal candle's close (its default), backtesting.py and ours at the next open;")
    print("trade counts differ slightly where the two averages are equal up to float noise.")
    lat = json.loads(subprocess.run([sys.executable, __file__, "--child", "latency"], check=True, capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip().splitlines()[-1])
    print(f"live decision latency per candle (features + model + risk + paper fill, no I/O): "
          f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms (target p99 <= 2 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
