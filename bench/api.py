"""The HTTP API in the whole worker: read latency under load, WebSocket event delivery, and its memory.

    .venv/bin/python bench/api.py [--rate 200] [--duration 20] [--clients 100] [--speed 240] [--reads-only]

Every part runs ``python -m bot`` as deployed (paper trading, SQLite) against the Bot API emulator, trading 10
symbols on 1m candles from the fake exchange (``python -m sim.exchange --speed``: at 240 each symbol closes a
candle every 0.25 s) with the SMA-cross strategy, so the engine keeps deciding, filling and publishing events while
the API is measured. The load comes from this process, over loopback.

1. Reads: ``--rate`` requests/s, open loop (each request starts at its scheduled time, whatever the previous ones
   did), for ``--duration`` s, round-robin over the JSON reads that mirror the chat (status, balance, positions,
   trades, orders, pnl, performance, risk, strategy) with a viewer token. A request's latency runs from its
   scheduled start to the end of its response body, so a client or server that falls behind is counted.
   Target p99 <= 10 ms. The reads of closed trades (trades, pnl, performance) are reported apart too, with the
   trades and steps the worker had recorded by the end, and the machine's load average and CPU pressure before
   and after.
2. WebSocket: ``--clients`` clients on ``/api/v1/ws`` for ``--duration`` s. The delivery time of an event runs
   from the engine publishing it to a client having parsed it. Method: the worker is started through this file
   (``--serve``), which runs ``bot.__main__.main`` unchanged except that the hub's ``event_message`` (called
   synchronously inside ``EventBus.publish``, once per event for all clients) adds ``"published_ns":
   time.time_ns()`` to the message; the client subtracts it from its own ``time.time_ns()`` on receipt: one
   machine, one clock. Target p99 <= 50 ms.
3. Memory: the worker's RSS (/proc/<pid>/statm) with the API off (``API_ENABLED=0``) and on (``API_ENABLED=1``,
   nothing connected), each the median of one-a-second samples over the last half of ``--duration`` s of
   trading; and the RSS of the worker of parts 1 and 2 right after its load. Target: the API adds <= 30 MB.

``--reads-only`` runs part 1 alone. Prints a table. The numbers depend on the machine (and on what else runs on
it: see the load average and the CPU pressure); the bench prints them whatever they are.
"""

from __future__ import annotations

import sys
import time

if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:  # the worker, stamping each event's publication
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import bot.api.hub as hub
    from bot.__main__ import main as worker_main

    plain = hub.event_message

    def stamped(event: object) -> str:
        published_ns = time.time_ns()
        return plain(event)[:-1] + f',"published_ns":{published_ns}}}'  # type: ignore[arg-type]

    hub.event_message = stamped
    code = worker_main()
    if len(sys.argv) > 2:  # the top-level packages the worker had loaded, for the memory report
        Path(sys.argv[2]).write_text("\n".join(sorted({m.split(".")[0] for m in sys.modules})), encoding="utf-8")
    sys.exit(code)

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THIS = str(Path(__file__).resolve())
VIEWER = "bench-viewer-token-0123456789"
READS = ("status", "balance", "positions", "trades", "orders", "pnl?period=day", "performance", "risk", "strategy")
CLOSED_TRADE_READS = ("trades", "pnl?period=day", "performance")  # the figures of closed trades (engine.results)


def loadavg() -> str:
    """The machine's 1- and 5-minute load averages (runnable processes; the bench's own included), and its CPU
    pressure (Linux PSI: the share of the last 10 s in which some runnable task waited for a CPU)."""
    text = " / ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:2])
    psi = Path("/proc/pressure/cpu")
    if psi.exists():
        some = psi.read_text(encoding="utf-8").split()[1]  # "avg10=92.69"
        text += f", CPU pressure {float(some.split('=')[1]):.0f} %"
    return text


def recorded(db: Path) -> tuple[int, int]:
    """Closed trades and engine steps (equity snapshots) in a worker's SQLite database."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(db)) as connection:
        trades = connection.execute("SELECT count(*) FROM trades").fetchone()[0]
        steps = connection.execute("SELECT count(*) FROM equity_snapshots").fetchone()[0]
    return int(trades), int(steps)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def spawn(env: dict[str, str], cwd: Path, *, stamped: bool, modules: str = "") -> Any:
    """A worker: ``python -m bot``, or this file's ``--serve`` (the same, events stamped)."""
    from tests.worker.rig import Worker

    if not stamped:
        return await Worker.start(env, cwd)
    proc = await asyncio.create_subprocess_exec(sys.executable, THIS, "--serve", *([modules] if modules else []),
                                                cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    worker = Worker(proc)
    worker._reader = asyncio.create_task(worker._read())
    return worker


async def stop(worker: Any) -> None:
    worker.proc.send_signal(signal.SIGTERM)
    await worker.finish(20)


async def read_load(base: str, rate: float, duration: float) -> dict[str, list[float]]:
    import aiohttp

    latencies: dict[str, list[float]] = {r: [] for r in READS}
    failures: list[float] = []
    headers = {"Authorization": f"Bearer {VIEWER}"}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(base_url=base, connector=connector, headers=headers) as http:
        for route in READS:  # warm: the first of each opens connections and fills caches
            async with http.get(f"/api/v1/{route}") as answer:
                await answer.read()
                if answer.status != 200:
                    raise SystemExit(f"GET /api/v1/{route}: {answer.status} {await answer.text()}")

        async def one(route: str, at: float) -> None:
            async with http.get(f"/api/v1/{route}") as answer:
                await answer.read()
                (latencies[route] if answer.status == 200 else failures).append((time.perf_counter() - at) * 1e3)

        tasks = []
        start = time.perf_counter() + 0.1
        n = int(rate * duration)
        for i in range(n):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(READS[i % len(READS)], at)))
        await asyncio.gather(*tasks)
    latencies["failed"] = failures
    return latencies


async def ws_clients(base: str, clients: int, duration: float) -> tuple[list[float], int, int]:
    """Delivery times (ms) over all clients, the events seen by the first client, and clients that got dropped."""
    from websockets.asyncio.client import connect

    url = base.replace("http://", "ws://") + f"/api/v1/ws?token={VIEWER}"
    delays: list[float] = []
    seen: list[int] = [0] * clients
    dropped = 0

    async def client(k: int) -> None:
        nonlocal dropped
        try:
            async with connect(url, max_queue=None, ping_interval=None) as ws:
                assert json.loads(await ws.recv())["type"] == "ready"
                end = time.monotonic() + duration
                while (left := end - time.monotonic()) > 0:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    now_ns = time.time_ns()
                    message = json.loads(raw)
                    if message.get("type") == "event" and "published_ns" in message:
                        delays.append((now_ns - message["published_ns"]) / 1e6)
                        seen[k] += 1
        except Exception as exc:  # a client closed by the server (too slow) or refused
            dropped += 1
            print(f"ws client {k}: {type(exc).__name__}: {exc}", file=sys.stderr)

    await asyncio.gather(*(client(k) for k in range(clients)))
    return delays, seen[0], dropped


async def rss_run(env: dict[str, str], root: Path, duration: float) -> float:
    from bench.worker import rss_mb

    worker = await spawn(env, root, stamped=False)
    try:
        await worker.wait_for("ready", timeout=60)
        samples = []
        for _ in range(int(duration)):
            await asyncio.sleep(1.0)
            samples.append(rss_mb(worker.proc.pid))
            if worker.proc.returncode is not None:
                raise SystemExit(f"worker exited: {await worker.stderr()}")
        return statistics.median(samples[len(samples) // 2:])
    finally:
        await stop(worker)


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from bench.worker import SYMBOLS, rss_mb, toml
    from engine.feeds.csvio import write_csv
    from sim.botapi import BotApiEmulator
    from tests.worker.rig import TOKEN, FakeExchangeProc, free_port, make_candles, worker_env

    market = root / "market"
    market.mkdir()
    history = 200
    per_symbol = int(args.speed / 60 * (4 * args.duration + 200)) + history + 400  # never runs out
    csvs = []
    for k, s in enumerate(SYMBOLS):
        path = market / f"{s[:-4]}_USDT-1m.csv"
        write_csv(path, make_candles(per_symbol, seed=1000 + k))
        csvs.append(path)
    out: dict[str, Any] = {}
    exchange = await FakeExchangeProc.start(csvs, speed=args.speed, history=history + 100)
    emu = BotApiEmulator(token=TOKEN)
    try:
        async with emu.run():
            def env(name: str, **extra: str) -> dict[str, str]:
                (root / name).mkdir()
                base = worker_env(root / name, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                                  trading_config=toml(root / name / "t.toml", strategy="sma-cross",
                                                      source="exchange", history=history), LOG_LEVEL="INFO")
                return {k: v for k, v in base.items() if not k.startswith("API_")} | extra

            if not args.reads_only:
                out["rss_off"] = await rss_run(env("off", API_ENABLED="0"), root / "off", args.duration)
                port = free_port()
                out["rss_on"] = await rss_run(env("on", API_ENABLED="1", API_PORT=str(port),
                                                  API_TOKENS=f"viewer:{VIEWER}"), root / "on", args.duration)
            port = free_port()
            worker = await spawn(env("load", API_ENABLED="1", API_PORT=str(port), API_TOKENS=f"viewer:{VIEWER}"),
                                 root / "load", stamped=True, modules=str(root / "modules.txt"))
            try:
                await worker.wait_for("ready", timeout=60)
                base = f"http://127.0.0.1:{port}"
                await asyncio.sleep(3.0)  # the engine's first polls and decisions
                out["rss_before"] = rss_mb(worker.proc.pid)
                out["load_before"] = loadavg()
                out["reads"] = await read_load(base, args.rate, args.duration)
                out["load_after"] = loadavg()
                out["rss_reads"] = rss_mb(worker.proc.pid)
                if not args.reads_only:
                    out["ws"] = await ws_clients(base, args.clients, args.duration)
                    out["rss_loaded"] = rss_mb(worker.proc.pid)
                if worker.proc.returncode is not None:
                    raise SystemExit(f"worker exited: {await worker.stderr()}")
            finally:
                await stop(worker)
            out["recorded"] = recorded(root / "load" / "agent.db")
            loaded = set((root / "modules.txt").read_text(encoding="utf-8").split())
            out["heavy"] = sorted(loaded & {"pandas", "matplotlib", "numba", "PIL", "catboost", "scipy"})
    finally:
        await exchange.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0, help="reads per second, open loop")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of each part")
    ap.add_argument("--clients", type=int, default=100, help="WebSocket clients")
    ap.add_argument("--speed", type=float, default=240.0, help="fake exchange speed (1m candles: speed/60 per s)")
    ap.add_argument("--reads-only", action="store_true", help="part 1 alone (no WebSocket, no memory runs)")
    args = ap.parse_args()
    from engine.logs import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)  # the in-process emulator's chatter off
    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        out = asyncio.run(run(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    reads = out["reads"]
    failed = reads.pop("failed")
    every = [v for vs in reads.values() for v in vs]
    closed = [v for r in CLOSED_TRADE_READS for v in reads[r]]
    in_memory = [v for r in READS if r not in CLOSED_TRADE_READS for v in reads[r]]
    worst = max(reads, key=lambda r: pct(reads[r], 0.99))
    trades, steps = out["recorded"]
    rows = [
        (f"API reads at {args.rate:.0f}/s for {args.duration:.0f} s (10 symbols trading)",
         f"{len(every):,} ok, {len(failed)} failed", f"{int(args.rate * args.duration):,}"),
        ("machine load (1 / 5 min), CPU pressure: before the reads", out["load_before"], ""),
        ("machine load (1 / 5 min), CPU pressure: after the reads", out["load_after"], ""),
        ("load run: closed trades / engine steps recorded", f"{trades:,} / {steps:,}", ""),
        ("read latency p50", f"{pct(every, 0.5):.2f} ms", ""),
        ("read latency p99", f"{pct(every, 0.99):.2f} ms", "<= 10 ms"),
        ("read latency max", f"{max(every):.2f} ms", ""),
        (f"read p99 of the slowest route ({worst.split('?')[0]})", f"{pct(reads[worst], 0.99):.2f} ms", ""),
        ("reads of closed trades (trades, pnl, performance): p50 / p99",
         f"{pct(closed, 0.5):.1f} / {pct(closed, 0.99):.1f} ms", ""),
        ("the other reads: p50 / p99", f"{pct(in_memory, 0.5):.1f} / {pct(in_memory, 0.99):.1f} ms", ""),
        *((f"  GET {r.split('?')[0]}: p50 / p99", f"{pct(reads[r], 0.5):.1f} / {pct(reads[r], 0.99):.1f} ms", "")
          for r in READS),
    ]
    if not args.reads_only:
        rows += ws_rows(args, out)
    rows.append(("load run: libraries loaded", ", ".join(out["heavy"]) or "none of pandas/matplotlib/numba", ""))
    from bench.common import print_table

    print_table(f"\nHTTP API in the worker ({sys.platform}, Python {sys.version.split()[0]}, TRADING_AGENT_JIT=0)",
                rows)
    return 0


def ws_rows(args: argparse.Namespace, out: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The rows of parts 2 and 3."""
    delays, events, dropped = out["ws"]
    return [
        (f"WebSocket: {args.clients} clients, events seen by one", f"{events}", "> 0"),
        ("WebSocket deliveries (events x clients)", f"{len(delays):,}", ""),
        ("WebSocket clients dropped", f"{dropped}", "0"),
        ("WebSocket delivery p50", f"{pct(delays, 0.5):.2f} ms", ""),
        ("WebSocket delivery p99", f"{pct(delays, 0.99):.2f} ms", "<= 50 ms"),
        ("WebSocket delivery max", f"{max(delays, default=float('nan')):.2f} ms", ""),
        ("worker RSS, API off", f"{out['rss_off']:.1f} MB", ""),
        ("worker RSS, API on (idle)", f"{out['rss_on']:.1f} MB", ""),
        ("the API's cost (on - off)", f"{out['rss_on'] - out['rss_off']:+.1f} MB", "<= 30 MB"),
        ("load run: worker RSS before the reads", f"{out['rss_before']:.1f} MB", ""),
        ("load run: after the reads", f"{out['rss_reads']:.1f} MB", ""),
        (f"load run: after the reads and {args.clients} WebSockets", f"{out['rss_loaded']:.1f} MB", ""),
    ]


if __name__ == "__main__":
    sys.exit(main())
