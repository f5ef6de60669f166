"""The worker process as deployed: start-up time to ready, and memory over a long trading run.

    .venv/bin/python bench/worker.py [--starts 5] [--candles 100000] [--speed 1500]

1. Start-up: ``python -m bot`` is spawned ``--starts`` times (fresh SQLite file the first time, then
   on the existing one) against the Bot API emulator and a synthetic feed for 10 symbols; measured from
   the spawn until the worker logs ``ready`` (getMe answered, engine loops and alert sender running).
   Target <= 2 s.
2. Memory: one ``python -m bot`` trades 10 symbols, each with a CatBoost model loaded from the model
   registry (``strategy = "model"``), on 1m candles served by the fake exchange
   (``python -m sim.exchange --speed``) until it has decided ``--candles`` candles in
   total. Its RSS (/proc/<pid>/statm) is sampled every second; reported at the half-way point and at
   the end, and the growth over the second half. Target <= 256 MB with ccxt loaded (the exchange layer),
   no growth over the second half.
3. Start-up through ccxt: as 1, with ``feed.source = "exchange"`` against the fake exchange (ccxt's
   exchange class loaded, markets read, clock followed). Target <= 2.5 s.

Prints a table. The numbers depend on the machine; the bench prints them whatever they are.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.botapi import BotApiEmulator
from tests.worker.rig import TOKEN, FakeExchangeProc, Worker, make_candles, worker_env

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "DOTUSDT", "LTCUSDT",
           "LINKUSDT")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


def toml(path: Path, *, strategy: str, source: str, history: int) -> Path:
    names = ", ".join(f'"{s}"' for s in SYMBOLS)
    path.write_text(
        f'[trading]\nsymbols = [{names}]\ntimeframe = "1m"\nupdate_interval = 0.2\nstrategy = "{strategy}"\n'
        'fast = 3\nslow = 8\n[signal_filters]\nmin_confidence = 0.5\n[risk]\nmax_daily_loss_pct = 1.0\n'
        f'max_drawdown_pct = 1.0\n[feed]\nsource = "{source}"\nstale_after = 1000\nhistory = {history}\n',
        encoding="utf-8")
    return path


async def startup_times(root: Path, starts: int, source: str) -> list[float]:
    """Spawn to ``ready``: ``source`` "synthetic" (no exchange), or "exchange": ccxt loaded, the fake exchange's
    markets read and its clock followed (``python -m sim.exchange``, 10 symbols)."""
    from engine.feeds.csvio import write_csv

    exchange = None
    url = "http://127.0.0.1:9"
    if source == "exchange":
        market = root / "market"
        market.mkdir()
        csvs = []
        for k, s in enumerate(SYMBOLS):
            path = market / f"{s[:-4]}_USDT-1m.csv"
            write_csv(path, make_candles(600, seed=1000 + k))
            csvs.append(path)
        exchange = await FakeExchangeProc.start(csvs, speed=1.0, history=400)
        url = exchange.base_url
    emu = BotApiEmulator(token=TOKEN)
    times = []
    try:
        async with emu.run():
            env = worker_env(root, emulator_url=emu.base_url, exchange_url=url, db=None,
                             trading_config=toml(root / "startup.toml", strategy="sma-cross", source=source,
                                                 history=100), LOG_LEVEL="INFO")
            for _ in range(starts):
                t0 = time.monotonic()
                worker = await Worker.start(env, root)
                await worker.wait_for("ready", timeout=60)
                times.append(time.monotonic() - t0)
                worker.proc.send_signal(signal.SIGTERM)
                await worker.finish()
    finally:
        if exchange is not None:
            await exchange.stop()
    return times


def train_models(root: Path) -> Path:
    from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
    from engine.models.features import compute_features
    from engine.models.labels import make_labels
    from engine.models.registry import ModelRegistry

    candles = make_candles(20_000, seed=7)
    model = CatBoostTradingModel(CatBoostParams(iterations=200, depth=6, thread_count=2), name="bench-worker",
                                 horizon=12, timeframe="1m")
    model.fit(compute_features(candles), make_labels(candles.close, horizon=12, fee_bps=10.0))
    models = root / "models"
    path = model.save(models / "bench-worker")
    registry = ModelRegistry(models)
    for s in SYMBOLS:
        refused = registry.activate(s, path)
        if refused is not None:
            raise SystemExit(f"model refused for {s}: {refused}")
    return models


def decided(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    except sqlite3.Error:
        return 0


async def memory_run(root: Path, candles: int, speed: float,
                     samples: list[tuple[int, float]]) -> dict[str, float]:
    from engine.feeds.csvio import write_csv

    per_symbol = candles // len(SYMBOLS)
    history = 300
    market = root / "market"
    market.mkdir()
    csvs = []
    for k, s in enumerate(SYMBOLS):
        path = market / f"{s[:-4]}_USDT-1m.csv"
        write_csv(path, make_candles(per_symbol + history + 400, seed=1000 + k))
        csvs.append(path)
    models = train_models(root)
    exchange = await FakeExchangeProc.start(csvs, speed=speed, history=history + 100)
    emu = BotApiEmulator(token=TOKEN)
    async with emu.run():
        env = worker_env(root, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                         trading_config=toml(root / "memory.toml", strategy="model", source="exchange",
                                             history=history), MODELS_DIR=str(models), LOG_LEVEL="WARNING")
        worker = await Worker.start({**env, "LOG_LEVEL": "INFO"}, root)
        try:
            await worker.wait_for("ready", timeout=60)
            db = root / "agent.db"
            started = time.monotonic()
            last_progress = (0, started)
            while True:
                n = decided(db)
                samples.append((n, rss_mb(worker.proc.pid)))
                if n >= candles:
                    break
                if n > last_progress[0]:
                    last_progress = (n, time.monotonic())
                elif time.monotonic() - last_progress[1] > 60:
                    raise SystemExit(f"no progress for 60 s at {n} decisions")
                if worker.proc.returncode is not None:
                    raise SystemExit(f"worker exited: {await worker.stderr()}")
                await asyncio.sleep(1.0)
            took = time.monotonic() - started
            refused = len(worker.logged("model_refused"))
        finally:
            worker.proc.send_signal(signal.SIGTERM)
            await worker.finish(20)
            await exchange.stop()
    half = next(rss for n, rss in samples if n >= candles // 2)
    second_half = [rss for n, rss in samples if n >= candles // 2]
    last_quarter = [rss for n, rss in samples if n >= candles * 3 // 4]
    return {"decisions": samples[-1][0], "took_s": took, "rss_half": half, "rss_end": samples[-1][1],
            "rss_max": max(r for _, r in samples), "growth_2nd_half": second_half[-1] - second_half[0],
            "growth_last_quarter": last_quarter[-1] - last_quarter[0],
            "max_2nd_half": max(second_half), "models_refused": refused}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--candles", type=int, default=100_000)
    ap.add_argument("--speed", type=float, default=1500.0, help="fake exchange speed (1m candles: speed/60 per s)")
    ap.add_argument("--samples", type=Path, default=None, help="write the (decisions, RSS MB) samples to this CSV")
    args = ap.parse_args()
    from engine.logs import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)  # the in-process emulator's chatter off
    root = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    samples: list[tuple[int, float]] = []  # (decisions, RSS MB), one a second
    try:
        for part in ("startup", "startup-exchange", "memory"):
            (root / part).mkdir()
        times = asyncio.run(startup_times(root / "startup", args.starts, "synthetic"))
        ex_times = asyncio.run(startup_times(root / "startup-exchange", args.starts, "exchange"))
        mem = asyncio.run(memory_run(root / "memory", args.candles, args.speed, samples))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.samples is not None:
        args.samples.write_text("decisions,rss_mb\n" + "".join(f"{n},{r:.2f}\n" for n, r in samples))
    rows = [
        ("start to ready, first (fresh db)", f"{times[0]:.2f} s", "<= 2 s"),
        (f"start to ready, median of {len(times)}", f"{statistics.median(times):.2f} s", "<= 2 s"),
        ("start to ready, max", f"{max(times):.2f} s", "<= 2 s"),
        ("start to ready via ccxt (fake exchange), first", f"{ex_times[0]:.2f} s", "<= 2.5 s"),
        (f"start to ready via ccxt, median of {len(ex_times)}", f"{statistics.median(ex_times):.2f} s", "<= 2.5 s"),
        ("candles decided (10 symbols, CatBoost)", f"{mem['decisions']:,} in {mem['took_s']:.0f} s",
         f"{args.candles:,}"),
        ("models refused", f"{mem['models_refused']:.0f}", "0"),
        ("RSS at half-way", f"{mem['rss_half']:.1f} MB", "<= 256 MB"),
        ("RSS at the end", f"{mem['rss_end']:.1f} MB", "<= 256 MB"),
        ("RSS max over the run", f"{mem['rss_max']:.1f} MB", "<= 256 MB"),
        ("RSS growth over the second half", f"{mem['growth_2nd_half']:+.1f} MB", "~0"),
        ("RSS growth over the last quarter", f"{mem['growth_last_quarter']:+.1f} MB", "~0"),
    ]
    from bench.common import print_table

    print_table(f"\nworker process ({sys.platform}, Python {sys.version.split()[0]}, TRADING_AGENT_JIT=0)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
