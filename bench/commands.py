"""Command reply latency and throughput through the Bot API emulator while the engine trades 10 symbols.

    .venv/bin/python bench/commands.py [--duration 10] [--concurrent-updates 64]

Two processes, as in production where Telegram is elsewhere: this one runs the engine (10 symbols on
synthetic feeds, candle time sped up so it keeps stepping and writing to SQLite), the real bot
(``build_application``, no rate limiter unless --rate-limiter) and the alert sender; a child process runs the emulator
and the load generator, and measures each reply from the moment the update is offered to the bot
until the bot's sendMessage reaches the emulator (one clock, in the child). Prints a table.

Scenarios: 100 commands/s open loop over 50 chats (target p99 <= 10 ms), then 50 chats each sending
its next command as soon as the previous reply arrived (target >= 500 replies/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKEN = "123456:TEST-TOKEN"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "DOTUSDT", "LTCUSDT",
           "LINKUSDT")
CHATS = 50
ALERT_CHAT = 999  # receives every alert while the bench chats have theirs off
COMMAND = "/status"
WARMUP = 50  # commands in the 1 s warm-up before the measured scenarios


# ---------------------------------------------------------------------------- child: emulator + load


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def one_command(emu: Any, chat: int, latencies: list[float], lost: list[int]) -> None:
    before = len(emu.transcript(chat))
    t0 = time.perf_counter()
    emu.send_message(chat, chat, COMMAND)
    try:
        await emu.wait_for_messages(chat, 1, since=before, timeout=10.0)
    except TimeoutError:
        lost.append(chat)
        return
    latencies.append((time.perf_counter() - t0) * 1000.0)


async def open_loop(emu: Any, rate: float, duration: float, chats: int) -> dict[str, Any]:
    cpu0 = time.process_time()
    latencies: list[float] = []
    lost: list[int] = []
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = int(rate * duration)
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        tasks.append(asyncio.create_task(one_command(emu, 1 + i % chats, latencies, lost)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    return summary(f"{rate:g} cmd/s open loop, {chats} chats", latencies, lost, elapsed, cpu0)


async def closed_loop(emu: Any, duration: float, chats: int) -> dict[str, Any]:
    cpu0 = time.process_time()
    latencies: list[float] = []
    lost: list[int] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + duration

    async def user(chat: int) -> None:
        while loop.time() < end:
            await one_command(emu, chat, latencies, lost)

    start = loop.time()
    await asyncio.gather(*(user(c) for c in range(1, chats + 1)))
    return summary(f"{chats} chats, closed loop", latencies, lost, loop.time() - start, cpu0)


def summary(name: str, latencies: list[float], lost: list[int], elapsed: float, cpu0: float) -> dict[str, Any]:
    return {"driver_cpu": (time.process_time() - cpu0) / elapsed if elapsed else 0.0, "scenario": name,
            "replies": len(latencies), "lost": len(lost), "seconds": elapsed,
            "per_s": len(latencies) / elapsed if elapsed else 0.0, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "max": max(latencies, default=float("nan"))}


async def driver(args: argparse.Namespace) -> None:
    from sim.botapi import BotApiEmulator

    emu = BotApiEmulator(token=TOKEN)
    async with emu.run() as base_url:
        print(f"URL {base_url}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # "go"
        await open_loop(emu, WARMUP, 1.0, CHATS)  # warm-up: connections, caches
        results = [await open_loop(emu, args.rate, args.duration, CHATS),
                   await closed_loop(emu, args.duration, CHATS)]
        print("RESULT " + json.dumps(results), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # "bye"


# ---------------------------------------------------------------------------- parent: engine + bot


def trading_config() -> Any:
    from config.settings import FeedSection, TradingConfig, TradingSection

    return TradingConfig(trading=TradingSection(symbols=list(SYMBOLS), timeframe="1m", update_interval=0.1, fast=5,
                                                slow=20),
                         feed=FeedSection(source="synthetic", history=200, stale_after=1000))


async def bot_side(args: argparse.Namespace) -> list[dict[str, Any]]:
    from bot.alerts import AlertSender
    from bot.app import build_application
    from bot.chat import offline_feeds
    from bot.runtime import Runtime
    from config.settings import Settings
    from engine.app import build
    from engine.core.clock import LiveClock, ScaledClock

    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--driver", "--rate", str(args.rate), "--duration", str(args.duration),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    base_url = (await child.stdout.readline()).decode().split()[1]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, telegram_bot_token=TOKEN,  # type: ignore[call-arg]
                            telegram_admin_ids=list(range(1, CHATS + 1)), telegram_api_base_url=base_url,
                            sqlite_path=Path(tmp) / "agent.db")
        clock = ScaledClock(LiveClock().now_ms(), speed=args.speed)  # 120: a 1m candle every 0.5 s per symbol
        config = trading_config()
        engine_app = await build(settings, config, clock=clock, feeds=offline_feeds(config, clock))
        facade = engine_app.facade
        for chat in range(1, CHATS + 1):  # the bench chats get no alerts; one other chat gets them all
            for kind in facade.alert_kinds():
                await facade.set_alert_mode(chat, kind, "off")
        await facade.register_chat(ALERT_CHAT)
        application = build_application(facade, settings.telegram, rate_limiter=args.rate_limiter,
                                         concurrent_updates=args.concurrent_updates, http=args.http)
        sender = AlertSender(application.bot, facade, chat_rate=0.0)
        runtime = Runtime(engine_app, application, settings.telegram, sender=sender, poll_timeout=10.0)
        await runtime.start()
        steps0 = await engine_steps(engine_app)
        t0, cpu0 = time.perf_counter(), time.process_time()
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        line = (await child.stdout.readline()).decode()
        elapsed = time.perf_counter() - t0
        bot_cpu = (time.process_time() - cpu0) / elapsed
        steps = await engine_steps(engine_app) - steps0
        await runtime.stop(3.0)
        child.stdin.write(b"bye\n")
        await child.stdin.drain()
        await child.wait()
    results: list[dict[str, Any]] = json.loads(line.removeprefix("RESULT "))
    for r in results:
        r["engine_steps_per_s"] = steps / elapsed
        r["alerts"] = sender.delivered
        r["bot_cpu"] = bot_cpu
        r["bot_cpu_ms_per_reply"] = bot_cpu * elapsed * 1000.0 / max(1, WARMUP + sum(x["replies"] for x in results))
    return results


async def engine_steps(engine_app: Any) -> int:
    return sum(len(st.decision_ms) for st in engine_app.engine.symbols.values())


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nCommand replies through the emulator ({COMMAND}), engine trading {len(SYMBOLS)} symbols, "
          f"concurrent_updates={args.concurrent_updates}, "
          f"{'AIORateLimiter' if args.rate_limiter else 'no rate limiter'}, {args.http}\n")
    head = f"{'scenario':<32} {'replies':>8} {'lost':>5} {'replies/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['scenario']:<32} {r['replies']:>8} {r['lost']:>5} {r['per_s']:>10.1f} {r['p50']:>8.2f} "
              f"{r['p99']:>8.2f} {r['max']:>8.2f}")
    print(f"\nCPU of one core, whole run: bot process {results[0]['bot_cpu']:.0%}; emulator+load process per "
          f"scenario: {', '.join(format(r['driver_cpu'], '.0%') for r in results)}")
    print(f"bot process CPU per reply (engine included): {results[0]['bot_cpu_ms_per_reply']:.2f} ms")
    print(f"engine steps during the run: {results[0]['engine_steps_per_s']:.1f} candles/s; "
          f"alerts delivered to the alert chat: {results[0]['alerts']}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (other processes share these cores)")
    print("targets: p99 <= 10 ms at 100 commands/s; >= 500 replies/s with 50 chats")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second in the open-loop scenario")
    parser.add_argument("--concurrent-updates", type=int, default=64)
    parser.add_argument("--speed", type=float, default=120.0,
                        help="candle time speed-up (120: each symbol closes a 1m candle every 0.5 s; 1: idle engine)")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="sys.setswitchinterval for the bot process (GIL hand-over to the SQLite thread)")
    parser.add_argument("--http", choices=("httpx", "aiohttp"), default="aiohttp",
                        help="Bot API transport (aiohttp: bot.request.AiohttpRequest, the production default; "
                             "httpx: PTB's HTTPXRequest)")
    parser.add_argument("--rate-limiter", action="store_true",
                        help="with the production AIORateLimiter (it holds replies to Telegram's 30 messages/s)")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.switch_interval_ms and not args.driver:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    from engine.logs import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)
    if args.driver:
        asyncio.run(driver(args))
        return
    print_table(asyncio.run(bot_side(args)), args)


if __name__ == "__main__":
    main()
