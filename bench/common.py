"""Shared benchmark helpers: long candle series block-bootstrapped from real candles, whole processes timed."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.core.model import CandleArrays
from engine.feeds.csvio import read_csv, write_csv

ROOT = Path(__file__).resolve().parents[1]
# the larger real file beside the checkout when it is there (the README's figures were measured on it),
# else the sample shipped in the repository
# the trading config of the side-by-side runs: all-in, no stops and no risk halts, as the peers trade
FULL_EQUITY = """[risk]
position_fraction = 1.0
max_position_fraction = 1.0
max_total_exposure = 1.0
stop_loss_pct = 0.0
take_profit_pct = 0.0
trailing_stop_pct = 0.0
max_daily_loss_pct = 0.0
max_drawdown_pct = 0.0
"""
SOURCES = (ROOT.parent / "shared" / "data" / "BTC_USD-5m.csv", ROOT / "data" / "sample" / "BTC_USDT-5m.csv")


def source_path() -> Path:
    return next(p for p in SOURCES if p.is_file())


def bootstrap_candles(n: int, *, seed: int = 42, block: int = 288, step_ms: int = 300_000) -> CandleArrays:
    """``n`` candles whose shapes come from real ones: blocks of consecutive real candles (one day of 5m
    candles each), sampled with replacement, re-chained so each candle keeps its real open/high/low/close
    relative to the previous close."""
    real = read_csv(source_path())
    prev = real.close[:-1]
    rel = np.stack([real.open[1:] / prev, real.high[1:] / prev, real.low[1:] / prev, real.close[1:] / prev])
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, rel.shape[1] - block, size=n // block + 1)
    idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
    close = np.cumprod(rel[3, idx])
    close *= 20_000.0
    base = np.empty(n)  # previous close
    base[0] = 20_000.0
    base[1:] = close[:-1]
    columns = []
    for row in range(3):  # open, high, low, built one at a time to keep peak memory low
        col = rel[row, idx]
        col *= base
        columns.append(col)
    del base
    ts = 1_672_531_200_000 + np.arange(n, dtype=np.int64) * step_ms
    return CandleArrays(ts, columns[0], columns[1], columns[2], close, real.volume[1:][idx])


def bootstrap_csv(path: Path, n: int, *, start_ms: int = 1_672_531_200_000) -> Path:
    """``bootstrap_candles(n)`` written as a candle CSV (as ``download`` writes one), starting at ``start_ms``.

    Re-chaining leaves a high or low a rounding error inside max/min(open, close) on ~2 % of the candles;
    they are set to the open or close, as a real candle's would be, so the file passes the readers' checks."""
    c = bootstrap_candles(n)
    high = np.maximum(c.high, np.maximum(c.open, c.close))
    low = np.minimum(c.low, np.minimum(c.open, c.close))
    ts = c.ts - c.ts[0] + start_ms
    write_csv(path, CandleArrays(ts, c.open, high, low, c.close, c.volume))
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run ``cmd`` to its end: (wall seconds, its CPU seconds (user + system), its own peak RSS in MB, its stdout);
    stderr is shown on failure. CPU seconds move less than wall time when others share the machine."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage alone
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()}")
        return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, out.read().decode()


def our_trades(report: str) -> int:
    """The trade count of a ``trading-agent backtest`` report (-1 when it has none)."""
    found = re.search(r"^\s+Trades\s+(\d+)", report, re.MULTILINE)
    return int(found.group(1)) if found else -1


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    """A bench's result: its title line, then one measure per row with its value and target, aligned."""
    print(title)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>22}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>22}  {target}")
