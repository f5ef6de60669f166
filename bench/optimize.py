"""The optimiser's throughput: trials per minute for sma-cross on 100,000 candles, one job and one per core.

    .venv/bin/python bench/optimize.py [--candles 100000] [--trials 400] [--jobs 1,2] [--walk-forward 0,5]

One candle CSV (block-bootstrapped from real 5m candles, see ``bench/common.py``) is written to a temporary
folder; then each (walk-forward, jobs) pair runs ``trading-agent optimize --strategy sma-cross`` over sma-cross's
declared space (fast 1..500, slow 2..1000) as its own process, on a fresh SQLite study (the default storage),
seed 42, no plots. Two rates per run: the search's own (trials over the seconds the command reports for its
studies: the figure the goal is about) and the whole process's (trials over its wall time from start to exit:
imports, the look-ahead check, the workers' start, the report). ``--walk-forward 0`` backtests every trial on all
the candles; 5 folds search in-sample windows of 4/9 of them. The CPU column is the process's with its workers;
trials per CPU-minute (trials over that CPU time) is what the run would do on cores of its own, which a shared
machine's wall time does not show.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from bench.common import bootstrap_csv, timed

    parser = argparse.ArgumentParser()
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=400, help="trials per study")
    parser.add_argument("--jobs", default=f"1,{os.cpu_count() or 1}")
    parser.add_argument("--walk-forward", default="0,5")
    parser.add_argument("--storage", default="sqlite,journal", help="sqlite (the default storage), journal or both")
    args = parser.parse_args()
    jobs = sorted({int(j) for j in args.jobs.split(",")})
    runs = [(k, j, kind) for kind in args.storage.split(",") for k in (int(x) for x in args.walk_forward.split(","))
            for j in jobs]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = bootstrap_csv(folder / "BTC_USDT-5m.csv", args.candles)
        print(f"Optimiser benchmark: sma-cross (fast 1..500, slow 2..1000), objective Sharpe, {args.candles:,} 5m "
              f"candles block-bootstrapped from real ones, {args.trials} trials per study, seed 42.")
        print(f"Whole processes; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
        for k, j, kind in runs:
            out = folder / f"{kind}-wf{k}-j{j}"
            storage = ["--storage", str(out / "study.log")] if kind == "journal" else []
            load = os.getloadavg()[0]
            cmd = [sys.executable, "-m", "engine.cli", "optimize", "--strategy", "sma-cross", "--data", str(csv),
                   "--walk-forward", str(k), "--trials", str(args.trials), "--jobs", str(j), "--seed", "42",
                   "--no-progress", "--no-plots", "--out", str(out), *storage]
            wall, cpu, peak, text = timed(cmd)
            found = re.search(r"· (\d+) trials run now in ([\d.]+) s", text)
            if found is None:
                raise SystemExit(f"no timing in the report:\n{text}")
            trials, search = int(found.group(1)), float(found.group(2))
            rows.append((kind, k, j, trials, search, wall, cpu, peak, load))
            print(f"  {kind}, walk-forward {k}, {j} job(s): {trials} trials, search {search:.1f} s, whole "
                  f"{wall:.1f} s", file=sys.stderr)
    print(f"| {'storage':<7} | {'walk-forward':>12} | {'jobs':>4} | {'trials':>6} | {'search s':>8} | "
          f"{'trials/min (search)':>19} | {'whole s':>7} | {'trials/min (whole)':>18} | {'CPU s':>6} | "
          f"{'trials/CPU-min':>14} | {'peak RSS MB':>11} | {'load':>4} |")
    print(f"|{'-' * 9}|{'-' * 14}|{'-' * 6}|{'-' * 8}|{'-' * 10}|{'-' * 21}|{'-' * 9}|{'-' * 20}|{'-' * 8}|"
          f"{'-' * 16}|{'-' * 13}|{'-' * 6}|")
    for kind, k, j, trials, search, wall, cpu, peak, load in rows:
        print(f"| {kind:<7} | {k if k else 'in-sample':>12} | {j:>4} | {trials:>6} | {search:>8.1f} | "
              f"{trials / search * 60:>19,.0f} | {wall:>7.1f} | {trials / wall * 60:>18,.0f} | {cpu:>6.1f} | "
              f"{trials / cpu * 60:>14,.0f} | {peak:>11.0f} | {load:>4.1f} |")
    one = {(kind, k): t / s for kind, k, j, t, s, *_ in rows if j == jobs[0]}
    for kind, k, j, t, s, *_ in rows:
        if j != jobs[0] and (kind, k) in one:
            print(f"{kind}, walk-forward {k}: {j} jobs run {t / s / one[kind, k]:.2f}x the trials per second of "
                  f"{jobs[0]} (linear: {j / jobs[0]:.0f}x)")
    print("goal: >= 2,000 trials/min with one job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
