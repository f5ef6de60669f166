"""``trading-agent chat``: the whole agent offline, and a Telegram chat in the terminal.

Starts the engine on the trading config the worker would use (``TRADING_CONFIG``, the embedded
defaults otherwise; models from ``MODELS_DIR``) with a synthetic feed whose candle time runs fast (so
trades and alerts come within seconds), a local Bot API emulator on 127.0.0.1 and the real bot
against it, then lets you type commands as an admin. Replies and alerts are printed as they arrive
(``bot.terminal``: HTML tags stripped, times marked "sim", photos and documents saved under ``--files``,
inline buttons shown as numbered choices; typing a number presses that button of the last reply).

With standard input piped, the commands are read from it, each reply is printed, and the command
exits at the end of input::

    printf '/status\\n/balance\\n/positions\\n' | trading-agent chat
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from bot.terminal import CLASSIFY_S, EXPIRED, Terminal

CHAT_TOKEN = "123456:OFFLINE-CHAT-TOKEN"
ADMIN_ID = 1
DEFAULT_SYMBOLS = "BTCUSDT,ETHUSDT"  # without TRADING_CONFIG (the embedded config trades BTCUSDT only)
QUIET_S = 0.3  # a reply is complete when nothing more arrived for this long
PROMPT = "you> "
BATCH_SPEED = 60.0  # from this speed-up on, alerts that arrive together are shown as one block
BATCH_S = 1.0  # ... collected for this long (wall time)
WAIT_PRICES_S = 5.0  # wait silently for the first prices when a candle closes within this (wall time)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Offline: engine on synthetic data, local Bot API emulator and the bot; chat in the terminal."
    parser.add_argument("--symbols", default=None,
                        help=f"comma-separated symbols to trade (default: those of TRADING_CONFIG when it is set, "
                             f"else {DEFAULT_SYMBOLS})")
    parser.add_argument("--speed", type=positive, default=600.0,
                        help="candle time runs this many times faster than wall time (default 600: a 5m candle "
                             "every 0.5 s)")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to keep (default: a temporary one)")
    parser.add_argument("--files", type=Path, default=Path("var/chat"), help="where photos and documents go")
    parser.add_argument("--user-id", type=int, default=ADMIN_ID, help="your (admin) Telegram user id in the chat")
    parser.add_argument("--reply-timeout", type=positive, default=15.0, help="seconds to wait for a reply")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (logs go to stderr)")


def positive(text: str) -> float:
    """An argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from config.settings import ConfigError
    from engine.errors import StoreError
    from engine.logs import configure_logging

    configure_logging(args.log_level, "console", secrets=[CHAT_TOKEN], stream=sys.stderr)
    try:
        return asyncio.run(chat(args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:  # e.g. a --db whose saved engine state this version cannot restore
        print(f"database error: {exc}", file=sys.stderr)
        return 1


class Session:
    """The running stack: emulator, engine, bot, alert sender, and the terminal view of one chat."""

    def __init__(self, args: argparse.Namespace, emu: Any, runtime: Any, terminal: Terminal) -> None:
        self.args = args
        self.emu = emu
        self.runtime = runtime
        self.terminal = terminal
        self.user = args.user_id

    async def say(self, line: str) -> int | None:
        """Send a command (or press button N); the update id, or None if nothing was sent (a note says why)."""
        line = line.strip()
        if not line:
            return None
        if line.isdigit() and len(line) <= 6:
            self.terminal.flush()  # an edit that removed the buttons counts
            choice = self.terminal.choose(int(line))
            if isinstance(choice, str):
                self.terminal.note(choice)
                return None
            try:
                self.emu.press_button(self.user, self.user, *choice)
            except (KeyError, ValueError):  # the bot removed the buttons since the check above
                self.terminal.note(EXPIRED)
                return None
        else:
            self.emu.send_message(self.user, self.user, line, username="you", first_name="You")
        return max((u["update_id"] for u in self.emu.state.pending), default=None)

    async def settle(self, update_id: int | None) -> None:
        """Wait until the bot processed the update and its reply stopped arriving; then show it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.reply_timeout
        if update_id is not None:
            # the emulator has no event for "update handed out", so look every 10 ms
            while any(u["update_id"] <= update_id for u in self.emu.state.pending) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.runtime.application.update_queue.join(), max(0.1, deadline - loop.time()))
        quiet_since = loop.time()
        while loop.time() - quiet_since < QUIET_S and loop.time() < deadline:
            if self.terminal.flush() or self.terminal.pending():
                quiet_since = loop.time()
            await asyncio.sleep(0.02)
        while self.terminal.pending() and loop.time() < deadline:  # a message that came in just now
            self.terminal.flush()
            await asyncio.sleep(0.02)
        self.terminal.flush(batched=False)

    async def piped(self, stdin: IO[str]) -> None:
        async for line in read_lines(stdin):
            if not line.strip():
                continue
            print(f"{PROMPT}{line.strip()}", file=self.terminal.out)
            before = self.terminal.printed
            update_id = await self.say(line)
            await self.settle(update_id)
            if update_id is not None and self.terminal.printed == before:
                self.terminal.note("no reply")

    async def interactive(self, stdin: IO[str]) -> None:
        self.terminal.prompt = PROMPT
        self.terminal.show_prompt()
        printer = asyncio.create_task(self._print_forever(), name="chat-printer")
        try:
            async for line in read_lines(stdin):
                self.terminal.prompted = False  # Enter moved the cursor past the prompt
                if line.strip() in ("/quit", "/exit", "quit", "exit"):
                    break
                await self.say(line)
                self.terminal.show_prompt()
        finally:
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer

    async def _print_forever(self) -> None:
        while True:
            self.terminal.flush()
            await asyncio.sleep(0.05)


async def read_lines(stdin: IO[str]) -> AsyncIterator[str]:
    """Lines of standard input without blocking the event loop (a regular file is read at once)."""
    if not _is_stream(stdin):
        for line in stdin.read().splitlines():
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    try:
        while raw := await reader.readline():
            yield raw.decode("utf-8", errors="replace").rstrip("\n")
    finally:
        transport.close()


def _is_stream(stdin: IO[str]) -> bool:
    import stat

    try:
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def offline_config(symbols: list[str] | None, path: Path | None = None) -> Any:
    """The trading config the worker would use (``path``: TRADING_CONFIG), on a fast synthetic feed."""
    from config.settings import load_trading_config

    base = load_trading_config(path)
    symbols = symbols or list(base.trading.symbols)
    return base.model_copy(update={
        "trading": base.trading.model_copy(update={"symbols": symbols, "update_interval": 0.25}),
        "feed": base.feed.model_copy(update={"source": "synthetic", "stale_after": 20}),
    })


def offline_feeds(config: Any, clock: Any) -> dict[str, Any]:
    """Synthetic feeds whose history ends now, so the chat shows today's dates."""
    from engine.core.types import timeframe_ms
    from engine.feeds.synthetic import SyntheticFeed

    tf = config.trading.timeframe
    start = clock.now_ms() - config.feed.history * timeframe_ms(tf)
    return {s: SyntheticFeed(s, tf, clock, seed=zlib.crc32(s.encode()), start_ms=start, history=config.feed.history)
            for s in config.trading.symbols}


def missing_prices(facade: Any) -> list[str]:
    return [s.symbol for s in facade.status().symbols if s.last_price is None]


async def first_prices(facade: Any, wait_s: float) -> list[str]:
    """Wait up to ``wait_s`` until every symbol has a price; the symbols still without one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline and missing_prices(facade):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return missing_prices(facade)


def waiting_note(facade: Any, missing: list[str], speed: float) -> str:
    """What the chat waits for when the first candle is far away in wall time."""
    candle_s = facade.timeframe_ms / 1000.0 / speed
    return (f"Waiting for the first {facade.timeframe} candle of {', '.join(missing)} to close: at x{speed:g} that "
            f"takes up to {candle_s:,.0f} s of wall time. Commands work meanwhile; prices, /buy and /signal need "
            f"that candle (--speed 600 makes a candle every {facade.timeframe_ms / 600_000:g} s).")


async def announce_prices(terminal: Terminal, facade: Any) -> None:
    """Say once when the first prices are in."""
    while missing_prices(facade):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    terminal.note("the first candle closed: prices are in")


async def chat(args: argparse.Namespace) -> int:
    from bot.alerts import AlertSender
    from bot.app import build_application
    from bot.runtime import Runtime
    from config.settings import load_settings, time_zone
    from engine.app import build
    from engine.core.clock import LiveClock, ScaledClock
    from sim.botapi import BotApiEmulator

    symbols = [s.strip().upper() for s in (args.symbols or "").split(",") if s.strip()]
    workdir = tempfile.TemporaryDirectory(prefix="trading-agent-chat-") if args.db is None else None
    db: Path = args.db if workdir is None else Path(workdir.name) / "agent.db"
    emu = BotApiEmulator(token=CHAT_TOKEN)
    async with emu.run() as base_url:
        settings = load_settings(_env_file=None, telegram_bot_token=CHAT_TOKEN, telegram_admin_ids=[args.user_id],
                                 telegram_api_base_url=base_url, telegram_api_file_url=None, webhook_url=None,
                                 port=None, database_url=None, sqlite_path=db)
        if not symbols and settings.trading_config is None:
            symbols = DEFAULT_SYMBOLS.split(",")
        config = offline_config(symbols, settings.trading_config)
        clock = ScaledClock(LiveClock().now_ms(), speed=args.speed)
        engine_app = await build(settings, config, clock=clock, feeds=offline_feeds(config, clock),
                                 heartbeat_interval=60.0)
        telegram = settings.telegram
        application = build_application(engine_app.facade, telegram)  # confirmations time out on the wall clock
        terminal = Terminal(emu, args.user_id, args.files, sys.stdout,
                            batch_s=BATCH_S if args.speed >= BATCH_SPEED else 0.0, mark_times=args.speed != 1)
        # no per-chat pacing: the terminal is not Telegram, and a x600 market makes alerts faster than 1/s
        sender = AlertSender(application.bot, engine_app.facade, tz=time_zone(telegram.timezone), chat_rate=0.0,
                             on_sent=terminal.on_alert)
        runtime = Runtime(engine_app, application, telegram, sender=sender, poll_timeout=1.0)
        await engine_app.facade.register_chat(args.user_id)  # alerts from the first one on
        await runtime.start()
        facade = engine_app.facade
        source = f"TRADING_CONFIG {settings.trading_config}" if settings.trading_config else "the embedded config"
        pace = ("candle time runs at wall-clock speed" if args.speed == 1 else
                f"candle time runs x{args.speed:g}, so times (marked 'sim') are "
                f"{'ahead of' if args.speed > 1 else 'behind'} the wall clock")
        print(f"Offline chat: paper trading {', '.join(config.trading.symbols)} with {facade.strategy} ({source}) on "
              f"synthetic data; {pace}. Database {db}; files go to {args.files}/. Type /help; /quit or Ctrl-D ends.",
              file=sys.stderr, flush=True)
        candle_s = facade.timeframe_ms / 1000.0 / args.speed
        missing = missing_prices(facade)
        if missing and candle_s <= WAIT_PRICES_S:
            missing = await first_prices(facade, wait_s=3 * candle_s + 10.0)
        announcer = None
        if missing:
            terminal.note(waiting_note(facade, missing, args.speed))
            announcer = asyncio.create_task(announce_prices(terminal, facade), name="chat-first-prices")
        session = Session(args, emu, runtime, terminal)
        try:
            if sys.stdin.isatty():
                await session.interactive(sys.stdin)
            else:
                await session.piped(sys.stdin)
        finally:
            if announcer is not None:
                announcer.cancel()
            await runtime.stop(3.0)
            terminal.prompt = ""
            await asyncio.sleep(CLASSIFY_S)  # the last alerts are marked as such before they are shown
            terminal.flush(force=True)
    if workdir is not None:
        workdir.cleanup()
    return 0
