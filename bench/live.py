"""Live trading's order path: decision-to-order latency, and what the order path costs in memory.

    .venv/bin/python bench/live.py [--symbols 4] [--speed 600] [--orders 200] [--max-seconds 240]

1. Latency: one ``python -m bot`` with TRADING_MODE=live trades ``--symbols`` symbols (a fast SMA(2, 5) on wavy 1m
   candles, no cooldown) against the fake exchange (``python -m sim.exchange``, signed Binance requests through
   the real ccxt, over local HTTP) until ``--orders`` candle decisions have sent their order. For each, the worker
   logs ``live_order.latency``: ``decision_to_send_ms`` from the start of the candle's decision step (model,
   core step, its commit, the sizing and guards, the commit of the order in the books' ``sent`` table) to the
   order manager's submit (which commits the order's row as SUBMITTING and makes the one create request), and
   ``round_trip_ms`` of that submit (the row's commit, ccxt's signing, the HTTP request, the fake's fill and its
   answer recorded). Target: p99 of decision to send <= 20 ms.
2. Memory: the peak RSS (VmHWM) of that live worker, and of the same worker in paper mode on the same market for
   the same number of decided candles (paper also reads the market through ccxt: ``feed.source = "exchange"``):
   the difference is what the order path costs (ccxt's private API, the order manager, the trader).

Prints a table with the machine's load average; the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.botapi import BotApiEmulator
from tests.worker.rig import TOKEN, FakeExchangeProc, Worker, make_candles, worker_env

ALL_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "LTCUSDT", "DOTUSDT", "BNBUSDT")
KEY, SECRET = "AK-bench-live-0b1d", "SK-bench-live-7e3a52"
FUNDS = 1_000_000.0


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def vm_hwm_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), MB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM")


def decided(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    except sqlite3.Error:
        return 0


def toml(path: Path, symbols: tuple[str, ...], interval: float) -> Path:
    names = ", ".join(f'"{s}"' for s in symbols)
    path.write_text(
        f'[trading]\nsymbols = [{names}]\ntimeframe = "1m"\nupdate_interval = {interval}\nfast = 2\nslow = 5\n'
        '[signal_filters]\ncooldown = 0\n'
        '[risk]\nposition_fraction = 0.1\nmax_daily_loss_pct = 0.9\nmax_drawdown_pct = 0.9\n'
        '[feed]\nsource = "exchange"\nstale_after = 1000\nhistory = 300\n'
        # at 600x a 0.5 s poll is 5 candles: entries may be sent up to 30 candles after their candle (every one is
        # timed; a real 1m market polled each 0.5 s is a hundredth of a candle behind)
        '[live]\nmax_order_notional = 1000000\nmax_daily_notional = 1000000000\nentry_deadline = 30\n',
        encoding="utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(root: Path, csvs: list[Path], symbols: tuple[str, ...], *, mode: str, speed: float, interval: float,
              orders: int, candles: int, max_s: float) -> dict[str, Any]:
    """One worker in ``mode`` until ``orders`` decisions sent their order (live) or ``candles`` were decided."""
    home = root / mode
    home.mkdir()
    exchange = await FakeExchangeProc.start(csvs, speed=speed, history=400,
                                            extra=["--account", f"{KEY}:{SECRET}", "--balance", f"USDT={FUNDS}"])
    emu = BotApiEmulator(token=TOKEN)
    live = {"TRADING_MODE": "live", "EXCHANGE_API_KEY": KEY, "EXCHANGE_API_SECRET": SECRET} if mode == "live" else {}
    try:
        async with emu.run():
            env = worker_env(home, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                             trading_config=toml(home / "trading.toml", symbols, interval), LOG_LEVEL="INFO", **live)
            worker = await Worker.start(env, home)
            try:
                await worker.wait_for("ready", timeout=90)
                started = time.monotonic()
                load_before = loadavg()
                while True:
                    n = decided(home / "agent.db")
                    sent = len(worker.logged("live_order.latency"))
                    if (mode == "live" and sent >= orders) or (mode != "live" and n >= candles):
                        break
                    if time.monotonic() - started > max_s:
                        break
                    if worker.proc.returncode is not None:
                        raise SystemExit(f"{mode} worker exited: {await worker.stderr()}")
                    await asyncio.sleep(0.5)
                took = time.monotonic() - started
                peak = vm_hwm_mb(worker.proc.pid)
                n = decided(home / "agent.db")
                load_after = loadavg()
            finally:
                if worker.proc.returncode is None:
                    worker.proc.send_signal(signal.SIGTERM)
                await worker.finish(30)
    finally:
        await exchange.stop()
    latency = worker.logged("live_order.latency")
    return {"decided": n, "took_s": took, "peak_mb": peak, "load": f"{load_before} -> {load_after}",
            "to_send": [float(e["decision_to_send_ms"]) for e in latency],
            "round_trip": [float(e["round_trip_ms"]) for e in latency],
            "refused": len(worker.logged("live_order.refused")), "failed": len(worker.logged("live_order.send_failed")),
            "why": Counter(str(e.get("reason", "")).split(":")[0].split(" (")[0][:60]
                           for e in worker.logged("live_order.refused"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=4, choices=range(1, len(ALL_SYMBOLS) + 1))
    ap.add_argument("--speed", type=float, default=600.0, help="fake exchange speed (1m candles: speed/60 per s)")
    ap.add_argument("--interval", type=float, default=0.5,
                    help="[trading] update_interval: seconds between candle polls, ticker polls (live: stops are "
                         "checked on each) and order polls (at most 1 s)")
    ap.add_argument("--orders", type=int, default=200, help="candle decisions' orders to time (live)")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="stop a run after this long anyway")
    args = ap.parse_args()
    from engine.feeds.csvio import write_csv
    from engine.logs import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)  # the in-process emulator's chatter off
    symbols = ALL_SYMBOLS[:args.symbols]
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        market = root / "market"
        market.mkdir()
        csvs = []
        for k, s in enumerate(symbols):
            path = market / f"{s[:-4]}_USDT-1m.csv"
            write_csv(path, make_candles(20_000, seed=500 + k))
            csvs.append(path)
        common = {"speed": args.speed, "interval": args.interval, "max_s": args.max_seconds}
        live = asyncio.run(run(root, csvs, symbols, mode="live", orders=args.orders, candles=0, **common))
        paper = asyncio.run(run(root, csvs, symbols, mode="paper", orders=0, candles=live["decided"], **common))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    to_send, trip = live["to_send"], live["round_trip"]
    if not to_send:
        raise SystemExit("the live worker sent no order from a candle decision")
    total = [a + b for a, b in zip(to_send, trip, strict=True)]
    rows = [
        ("orders timed (candle decisions, live)", f"{len(to_send)} in {live['took_s']:.0f} s", f"{args.orders}"),
        ("decision to send, p50", f"{statistics.median(to_send):.2f} ms", ""),
        ("decision to send, p99", f"{percentile(to_send, 0.99):.2f} ms", "<= 20 ms"),
        ("decision to send, max", f"{max(to_send):.2f} ms", ""),
        ("submit round trip (row, request, answer), p50", f"{statistics.median(trip):.2f} ms", ""),
        ("submit round trip, p99", f"{percentile(trip, 0.99):.2f} ms", ""),
        ("decision to answer (sum), p99", f"{percentile(total, 0.99):.2f} ms", ""),
        ("orders refused / failed", f"{live['refused']} / {live['failed']}", "0 / 0"),
        *((f"  refused: {why}", str(n), "") for why, n in live["why"].most_common(3)),
        ("candles decided: live / paper", f"{live['decided']:,} / {paper['decided']:,}", "equal"),
        ("peak RSS, live worker", f"{live['peak_mb']:.1f} MB", ""),
        ("peak RSS, paper worker (same market)", f"{paper['peak_mb']:.1f} MB", ""),
        ("order path's RSS cost (live - paper)", f"{live['peak_mb'] - paper['peak_mb']:+.1f} MB", ""),
    ]
    from bench.common import print_table

    title = (f"\nlive order path ({sys.platform}, Python {sys.version.split()[0]}, {len(symbols)} symbols polled "
             f"every {args.interval:g} s, fake exchange at {args.speed:g}x, {os.cpu_count()} CPUs; load average live "
             f"{live['load']}, paper {paper['load']})")
    print_table(title, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
