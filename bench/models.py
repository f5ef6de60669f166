"""Benchmark of the learned model: per-candle decision latency, batch throughput, training time.

    .venv/bin/python bench/models.py [--rows 1000000] [--train-rows 100000] [--iterations 300]

* Per-candle latency: ``features(last LOOKBACK candles)[-1:]`` + ``predict_proba`` on one row, as
  the live path calls it, over real candles (target p99 <= 2 ms).
* Batch: ``features`` + ``predict_proba`` over a 1,000,000-candle series (target >= 200,000
  candles/s). The series is SYNTHETIC: it is built by block-bootstrapping real 5m candles from
  ../shared/data, or data/sample/ without it (blocks of 288 consecutive candles' returns, high/low/open
  relative to the close and volume, drawn with replacement and chained into one price path).
* Training: CatBoost fit on 100,000 bootstrapped rows with the default parameters.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.core.model import CandleArrays
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
from engine.models.features import LOOKBACK, compute_features
from engine.models.labels import make_labels
from engine.models.validation import load_candles_csv

ROOT = Path(__file__).resolve().parents[1]
# the larger real set beside the checkout when it is there (the README's figures were measured on it),
# else the 5m files of the sample shipped in the repository
SHARED = (ROOT.parent / "shared" / "data",
          ("BTC_USD-5m.csv", "BTC_USDT-5m.csv", "ETH_BTC-5m.csv", "LTC_BTC-5m.csv", "XLM_BTC-5m.csv"))
SAMPLE = (ROOT / "data" / "sample", ("BTC_USDT-5m.csv", "ETH_BTC-5m.csv", "XRP_ETH-5m.csv"))
DATA_DIR, SOURCE_FILES = SHARED if all((SHARED[0] / f).is_file() for f in SHARED[1]) else SAMPLE
BLOCK = 288  # one day of 5m candles


def bootstrap(sources: list[CandleArrays], rows: int, seed: int = 0) -> CandleArrays:
    """A synthetic series of ``rows`` candles made of random blocks of real candles (see docstring)."""
    rng = np.random.default_rng(seed)
    parts = []
    for c in sources:
        lr = np.log(c.close[1:] / c.close[:-1])
        parts.append(np.column_stack([lr, np.log(c.open[1:] / c.close[:-1]), np.log(c.high[1:] / c.close[1:]),
                                      np.log(c.low[1:] / c.close[1:]), c.volume[1:]]))
    starts = [(i, s) for i, p in enumerate(parts) for s in range(0, p.shape[0] - BLOCK, BLOCK // 4)]
    picks = rng.integers(0, len(starts), rows // BLOCK + 1)
    table = np.concatenate([parts[starts[k][0]][starts[k][1]:starts[k][1] + BLOCK] for k in picks])[:rows]
    close = 100.0 * np.exp(np.cumsum(table[:, 0]))
    prev = np.r_[100.0, close[:-1]]
    opn = prev * np.exp(table[:, 1])
    high = np.maximum(close * np.exp(table[:, 2]), np.maximum(opn, close))
    low = np.minimum(close * np.exp(table[:, 3]), np.minimum(opn, close))
    ts = 1_700_000_000_000 + np.arange(rows, dtype=np.int64) * 300_000
    return CandleArrays(ts, opn, high, low, close, table[:, 4].copy())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=100_000)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--live-candles", type=int, default=3_000)
    args = ap.parse_args()
    sources = [load_candles_csv(DATA_DIR / f).arrays for f in SOURCE_FILES]
    params = CatBoostParams(iterations=args.iterations, depth=args.depth, thread_count=args.threads)

    # training on bootstrapped rows
    train = bootstrap(sources, args.train_rows, seed=1)
    x_train = compute_features(train)
    y_train = make_labels(train.close, horizon=12)
    model = CatBoostTradingModel(params, name="bench")
    t0 = time.perf_counter()
    model.fit(x_train, y_train)
    train_s = time.perf_counter() - t0

    # per-candle latency on real candles
    real = sources[0]
    n_live = min(args.live_candles, len(real) - LOOKBACK)
    lat_total, lat_feat, lat_pred, cpu_total = [], [], [], []
    for t in range(LOOKBACK - 1, LOOKBACK - 1 + 200):  # warm-up (caches, first-call costs)
        model.predict_proba(model.features(real.slice(t - LOOKBACK + 1, t + 1))[-1:])
    for t in range(LOOKBACK - 1, LOOKBACK - 1 + n_live):
        window = real.slice(t - LOOKBACK + 1, t + 1)
        cpu0 = time.thread_time()
        a = time.perf_counter()
        x = model.features(window)[-1:]
        b = time.perf_counter()
        model.predict_proba(x)
        c = time.perf_counter()
        cpu_total.append(time.thread_time() - cpu0)
        lat_feat.append(b - a)
        lat_pred.append(c - b)
        lat_total.append(c - a)

    # batch throughput on a bootstrapped series
    big = bootstrap(sources, args.rows, seed=2)
    t0 = time.perf_counter()
    xb = model.features(big)
    t1 = time.perf_counter()
    model.predict_proba(xb)
    t2 = time.perf_counter()

    def ms(v: list[float], q: float) -> str:
        return f"{1000.0 * float(np.percentile(v, q)):.3f}"

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"models benchmark: python {platform.python_version()}, {os.cpu_count()} cpus (load {load:.1f}), catboost "
          f"iterations={args.iterations} depth={args.depth} threads={args.threads}, LOOKBACK={LOOKBACK}")
    print(f"{'measure':<52} {'value':>12}  target")
    rows = [
        ("per-candle decision p50 ms (features + predict)", ms(lat_total, 50), ""),
        ("per-candle decision p99 ms (features + predict)", ms(lat_total, 99), "<= 2 ms"),
        ("  same, CPU time of the thread p50 / p99 ms", f"{ms(cpu_total, 50)}/{ms(cpu_total, 99)}", ""),
        ("  features only p50 / p99 ms", f"{ms(lat_feat, 50)}/{ms(lat_feat, 99)}", ""),
        ("  predict_proba only p50 / p99 ms", f"{ms(lat_pred, 50)}/{ms(lat_pred, 99)}", ""),
        (f"batch candles/s, {args.rows:,} bootstrapped rows", f"{args.rows / (t2 - t0):,.0f}", ">= 200,000"),
        ("  features s / predict_proba s", f"{t1 - t0:.2f}/{t2 - t1:.2f}", ""),
        (f"training s, {args.train_rows:,} bootstrapped rows", f"{train_s:.2f}", ""),
    ]
    for name, value, target in rows:
        print(f"{name:<52} {value:>12}  {target}")
    print(f"(latency over {n_live} real {SOURCE_FILES[0]} candles; batch and training rows are synthetic, "
          f"block-bootstrapped from {len(SOURCE_FILES)} real 5m files in {DATA_DIR})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
