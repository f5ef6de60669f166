"""``trading-agent chat``: the whole agent offline, and a Telegram chat in the terminal.

Starts the engine on the embedded default config with a synthetic feed whose candle time runs fast
(so trades and alerts come within seconds), a local Bot API emulator on 127.0.0.1 and the real bot
against it, then lets you type commands as an admin. Replies and alerts are printed as they arrive
(HTML tags stripped); photos and documents are saved under ``--files`` and their path is printed;
inline buttons are shown as numbered choices, and typing the number presses the button.

With standard input piped, the commands are read from it, each reply is printed, and the command
exits at the end of input::

    printf '/status\\n/balance\\n/positions\\n' | trading-agent chat
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import os
import re
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

CHAT_TOKEN = "123456:OFFLINE-CHAT-TOKEN"
ADMIN_ID = 1
QUIET_S = 0.3  # a reply is complete when nothing more arrived for this long
CLASSIFY_S = 0.15  # a message is shown once this old, so the alert sender can claim it first
TAG_RE = re.compile(r"<[^>]+>")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Offline: engine on synthetic data, local Bot API emulator and the bot; chat in the terminal."
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated symbols to trade")
    parser.add_argument("--speed", type=float, default=600.0,
                        help="candle time runs this many times faster than wall time (default 600: a 5m candle "
                             "every 0.5 s)")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to keep (default: a temporary one)")
    parser.add_argument("--files", type=Path, default=Path("var/chat"), help="where photos and documents go")
    parser.add_argument("--user-id", type=int, default=ADMIN_ID, help="your (admin) Telegram user id in the chat")
    parser.add_argument("--reply-timeout", type=float, default=15.0, help="seconds to wait for a reply")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (logs go to stderr)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from engine.logs import configure_logging

    configure_logging(args.log_level, "console", secrets=[CHAT_TOKEN], stream=sys.stderr)
    try:
        return asyncio.run(chat(args))
    except KeyboardInterrupt:
        return 130


def plain(text: str | None, raw: str | None = None) -> str:
    """What a person sees: the parsed text, or the raw HTML with tags stripped."""
    if text is not None:
        return text
    return html.unescape(TAG_RE.sub("", raw or ""))


class Terminal:
    """Prints what the bot sends to one chat, in order: replies, alerts, edits, files and buttons."""

    def __init__(self, emu: Any, chat_id: int, files: Path, out: IO[str]) -> None:
        self.emu = emu
        self.chat_id = chat_id
        self.files = files
        self.out = out
        self.shown = 0  # transcript index of the next message to show
        self.revisions: dict[int, int] = {}
        self.first_seen: dict[int, float] = {}
        self.alert_ids: set[int] = set()
        self.buttons: list[tuple[int, str, str]] = []  # (message id, label, callback data)

    def on_alert(self, delivery: Any, message: Any) -> None:
        if delivery.chat_id == self.chat_id:
            self.alert_ids.add(message.message_id)

    def flush(self, *, force: bool = False) -> int:
        """Show messages not shown yet (and edits); how many were shown."""
        transcript = self.emu.transcript(self.chat_id)
        now = time.monotonic()
        shown = 0
        for message in transcript[: self.shown]:
            if len(message.revisions) > self.revisions.get(message.message_id, 0):
                self.revisions[message.message_id] = len(message.revisions)
                self._show(message, edited=True)
        while self.shown < len(transcript):
            message = transcript[self.shown]
            seen = self.first_seen.setdefault(message.message_id, now)
            if not force and message.message_id not in self.alert_ids and now - seen < CLASSIFY_S:
                break
            self.revisions[message.message_id] = len(message.revisions)
            self._show(message, edited=False)
            self.shown += 1
            shown += 1
        self.out.flush()
        return shown

    def pending(self) -> int:
        return len(self.emu.transcript(self.chat_id)) - self.shown

    def _show(self, message: Any, *, edited: bool) -> None:
        who = "🔔 alert" if message.message_id in self.alert_ids else "bot"
        prefix = f"{who} (edited)> " if edited else f"{who}> "
        if message.deleted:
            print(f"{prefix}[message deleted]", file=self.out)
            return
        text = plain(message.text, message.raw_text)
        if message.kind != "text":
            path = self._save(message)
            print(f"{prefix}[{message.kind} saved to {path}]", file=self.out)
            if text:
                print(text, file=self.out)
        else:
            print(prefix + text, file=self.out)
        self._show_buttons(message)
        print(file=self.out)

    def _save(self, message: Any) -> Path:
        self.files.mkdir(parents=True, exist_ok=True)
        data = message.photo if message.photo is not None else (message.document or b"")
        suffix = ".png" if message.kind == "photo" else Path(message.file_name or "file.bin").suffix or ".bin"
        path = self.files / f"chat{self.chat_id}-msg{message.message_id}{suffix}"
        path.write_bytes(data)
        return path

    def _show_buttons(self, message: Any) -> None:
        rows = message.buttons()
        if not rows:
            return
        self.buttons = [(message.message_id, str(b.get("text")), str(b.get("callback_data", "")))
                        for row in rows for b in row]
        choices = "   ".join(f"[{i}] {label}" for i, (_, label, _) in enumerate(self.buttons, 1))
        print(f"    {choices}   (type the number to press)", file=self.out)


class Session:
    """The running stack: emulator, engine, bot, alert sender, and the terminal view of one chat."""

    def __init__(self, args: argparse.Namespace, emu: Any, runtime: Any, terminal: Terminal) -> None:
        self.args = args
        self.emu = emu
        self.runtime = runtime
        self.terminal = terminal
        self.user = args.user_id

    async def say(self, line: str) -> int | None:
        """Send a command (or press button N); the update id, or None if there was nothing to send."""
        line = line.strip()
        if not line:
            return None
        buttons = self.terminal.buttons
        if line.isdigit() and buttons:
            index = int(line) - 1
            if not 0 <= index < len(buttons):
                print(f"(no button {line}; choose 1-{len(buttons)})", file=self.terminal.out)
                return None
            message_id, _, data = buttons[index]
            self.emu.press_button(self.user, self.user, message_id, data)
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
        self.terminal.flush(force=True)

    async def piped(self, stdin: IO[str]) -> None:
        async for line in read_lines(stdin):
            if not line.strip():
                continue
            before = len(self.emu.transcript(self.terminal.chat_id))
            print(f"you> {line.strip()}", file=self.terminal.out)
            await self.settle(await self.say(line))
            if len(self.emu.transcript(self.terminal.chat_id)) == before:
                print("(no reply)\n", file=self.terminal.out)

    async def interactive(self, stdin: IO[str]) -> None:
        printer = asyncio.create_task(self._print_forever(), name="chat-printer")
        try:
            async for line in read_lines(stdin):
                if line.strip() in ("/quit", "/exit", "quit", "exit"):
                    break
                await self.say(line)
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


def offline_config(symbols: list[str]) -> Any:
    from config.settings import load_trading_config

    base = load_trading_config()
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


async def first_prices(facade: Any, wait_s: float) -> None:
    """Wait (a little) until every symbol has a live candle, so the first /buy has a price."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline and any(s.last_price is None for s in facade.status().symbols):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def chat(args: argparse.Namespace) -> int:
    from bot.alerts import AlertSender
    from bot.app import build_application
    from bot.runtime import Runtime, zone
    from config.settings import load_settings
    from engine.app import build
    from engine.core.clock import LiveClock, ScaledClock
    from sim.botapi import BotApiEmulator

    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    workdir = tempfile.TemporaryDirectory(prefix="trading-agent-chat-") if args.db is None else None
    db: Path = args.db if workdir is None else Path(workdir.name) / "agent.db"
    emu = BotApiEmulator(token=CHAT_TOKEN)
    async with emu.run() as base_url:
        settings = load_settings(_env_file=None, telegram_bot_token=CHAT_TOKEN, telegram_admin_ids=[args.user_id],
                                 telegram_api_base_url=base_url, telegram_api_file_url=None, webhook_url=None,
                                 port=None, database_url=None, sqlite_path=db)
        config = offline_config(symbols)
        clock = ScaledClock(LiveClock().now_ms(), speed=args.speed)
        engine_app = await build(settings, config, clock=clock, feeds=offline_feeds(config, clock),
                                 heartbeat_interval=60.0)
        # Confirmations expire after 60 s of the person's time; the market clock here runs x600.
        application = build_application(engine_app.facade, settings, clock=LiveClock().now_ms)
        terminal = Terminal(emu, args.user_id, args.files, sys.stdout)
        sender = AlertSender(application.bot, engine_app.facade, tz=zone(settings.timezone), on_sent=terminal.on_alert)
        runtime = Runtime(engine_app, application, settings, sender=sender, poll_timeout=1.0)
        await engine_app.facade.register_chat(args.user_id)  # alerts from the first one on
        await runtime.start()
        await first_prices(engine_app.facade, wait_s=max(2.0, 2000.0 / args.speed * 5))
        session = Session(args, emu, runtime, terminal)
        print(f"Offline chat: paper trading {', '.join(symbols)} on synthetic data, candle time x{args.speed:g}. "
              f"Database {db}; files go to {args.files}/. Type /help; /quit or Ctrl-D ends.", file=sys.stderr)
        try:
            if sys.stdin.isatty():
                await session.interactive(sys.stdin)
            else:
                await session.piped(sys.stdin)
        finally:
            await runtime.stop(3.0)
            terminal.flush(force=True)
    if workdir is not None:
        workdir.cleanup()
    return 0
