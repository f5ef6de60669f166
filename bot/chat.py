"""``trading-agent chat``: the whole agent offline, and a Telegram chat in the terminal.

Starts the engine on the trading config the worker would use (``TRADING_CONFIG``, the embedded
defaults otherwise; models from ``MODELS_DIR``) with a synthetic feed whose candle time runs fast (so
trades and alerts come within seconds), a local Bot API emulator on 127.0.0.1 and the real bot
against it, then lets you type commands as an admin. Replies and alerts are printed as they arrive
(HTML tags stripped; times are marked "sim": they are the synthetic market's, ahead of the wall
clock); photos and documents are saved under ``--files`` and their path is printed; inline buttons
are shown as numbered choices, and typing a number presses that button of the last reply. At high
speed-ups alerts that arrive together are shown as one combined block.

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
DEFAULT_SYMBOLS = "BTCUSDT,ETHUSDT"  # without TRADING_CONFIG (the embedded config trades BTCUSDT only)
QUIET_S = 0.3  # a reply is complete when nothing more arrived for this long
CLASSIFY_S = 0.15  # a message is shown once this old, so the alert sender can claim it first
PROMPT = "you> "
BATCH_SPEED = 60.0  # from this speed-up on, alerts that arrive together are shown as one block
BATCH_S = 1.0  # ... collected for this long (wall time)
BATCH_MIN = 3  # fewer alerts than this are shown one by one
BATCH_LINES = 8  # distinct headlines listed in a combined block
WAIT_PRICES_S = 5.0  # wait silently for the first prices when a candle closes within this (wall time)
TAG_RE = re.compile(r"<[^>]+>")
TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? [A-Z][A-Za-z0-9+-]{0,5})(?!\w)")
EXPIRED = "that choice has expired: the buttons it answered are gone; send the command again"


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
    from engine.logs import configure_logging

    configure_logging(args.log_level, "console", secrets=[CHAT_TOKEN], stream=sys.stderr)
    try:
        return asyncio.run(chat(args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def plain(text: str | None, raw: str | None = None) -> str:
    """What a person sees: the parsed text, or the raw HTML with tags stripped."""
    if text is not None:
        return text
    return html.unescape(TAG_RE.sub("", raw or ""))


def simulated(text: str) -> str:
    """Times in ``text`` marked as the synthetic market's (``2026-11-24 04:45 UTC sim``)."""
    return TIME_RE.sub(r"\1 sim", text)


def headline(text: str) -> str:
    """The first line of an alert, which names what happened (and the symbol)."""
    return text.strip().split("\n", 1)[0]


def combined(texts: list[str], span_s: float) -> str:
    """One block for many alerts: how many of each headline, and the latest one in full."""
    counts: dict[str, int] = {}
    for text in texts:
        counts[headline(text)] = counts.get(headline(text), 0) + 1
    lines = [f"{len(texts)} alerts in the last {span_s:.1f} s (combined; /trades and /positions have the details):"]
    lines += [f"  {n} × {line}" for line, n in list(counts.items())[:BATCH_LINES]]
    if len(counts) > BATCH_LINES:
        lines.append(f"  … and {len(counts) - BATCH_LINES} more kinds")
    lines.append("  latest: " + " · ".join(part.strip() for part in texts[-1].strip().splitlines() if part.strip()))
    return "\n".join(lines)


class Terminal:
    """Prints what the bot sends to one chat, in order: replies, alerts, edits, files and buttons."""

    def __init__(self, emu: Any, chat_id: int, files: Path, out: IO[str], *, batch_s: float = 0.0,
                 mark_times: bool = False) -> None:
        self.emu = emu
        self.chat_id = chat_id
        self.files = files
        self.out = out
        self.batch_s = batch_s  # > 0: alerts that arrive within this many seconds are shown as one block
        self.mark_times = mark_times
        self.prompt = ""  # shown after output when standard input is a terminal
        self.prompted = False
        self.printed = 0  # blocks printed so far (replies, edits, pop-ups, notes)
        self.shown = 0  # transcript index of the next message to show
        self.revisions: dict[int, int] = {}
        self.first_seen: dict[int, float] = {}
        self.alert_ids: set[int] = set()
        self.answers_seen = 0  # callback answers (pop-ups) already shown
        self.last_reply: int | None = None  # the last message that was not an alert: numbers press its buttons
        self.offered = False  # ... and it had buttons when shown
        self.buttons: list[tuple[int, str, str]] = []  # (message id, label, callback data) on it now

    def on_alert(self, delivery: Any, message: Any) -> None:
        if delivery.chat_id == self.chat_id:
            self.alert_ids.add(message.message_id)

    def flush(self, *, force: bool = False, batched: bool = True) -> int:
        """Show messages not shown yet (and edits and pop-ups); how many replies (not alerts) were shown.

        A message is shown once it is known to be an alert or is ``CLASSIFY_S`` old (``force``: at once, for
        the end of the session); alerts wait ``batch_s`` to be combined (``force``, not ``batched``: not)."""
        transcript = self.emu.transcript(self.chat_id)
        now = time.monotonic()
        shown = 0
        for message in transcript[: self.shown]:
            if len(message.revisions) > self.revisions.get(message.message_id, 0):
                self.revisions[message.message_id] = len(message.revisions)
                self._show(message, edited=True)
        self._show_answers()
        while self.shown < len(transcript):
            message = transcript[self.shown]
            seen = self.first_seen.setdefault(message.message_id, now)
            if message.message_id in self.alert_ids and self.batch_s > 0:
                run = self._alert_run(transcript, now, force=force or not batched)
                if run is None:
                    break
                if run is not None and len(run) >= BATCH_MIN:
                    self._show_block(run, now)
                    self.shown += len(run)
                    continue
            elif not force and message.message_id not in self.alert_ids and now - seen < CLASSIFY_S:
                break
            self.revisions[message.message_id] = len(message.revisions)
            self._show(message, edited=False)
            self.shown += 1
            shown += message.message_id not in self.alert_ids
        self.out.flush()
        return shown

    def _alert_run(self, transcript: list[Any], now: float, *, force: bool) -> list[Any] | None:
        """The alerts from the next one to show up to the next reply, once the first waited ``batch_s``."""
        run = []
        for message in transcript[self.shown:]:
            if message.message_id not in self.alert_ids:
                break
            self.first_seen.setdefault(message.message_id, now)
            run.append(message)
        return run if force or now - self.first_seen[run[0].message_id] >= self.batch_s else None

    def _show_block(self, run: list[Any], now: float) -> None:
        for message in run:
            self.revisions[message.message_id] = len(message.revisions)
        span = max(self.batch_s, now - self.first_seen[run[0].message_id])
        self._print("🔔 alerts> " + self._marked(combined([plain(m.text, m.raw_text) for m in run], span)) + "\n")

    def _show_answers(self) -> None:
        """Pop-up answers to button presses (e.g. "Too late"), which Telegram shows over the chat."""
        answers = [a for a in self.emu.callback_answers if a.chat_id == self.chat_id]
        for answer in answers[self.answers_seen:]:
            if answer.show_alert and answer.text:
                self._print(f"bot (pop-up)> {answer.text}\n")
        self.answers_seen = len(answers)

    def _print(self, text: str) -> None:
        """Print a block of output; with a prompt on screen, print over it and show it again after."""
        if self.prompted:
            self.out.write("\r\x1b[K")
            self.prompted = False
        print(text, file=self.out)
        self.printed += 1
        self.show_prompt()

    def show_prompt(self) -> None:
        if self.prompt and not self.prompted:
            self.out.write(self.prompt)
            self.out.flush()
            self.prompted = True

    def _marked(self, text: str) -> str:
        return simulated(text) if self.mark_times else text

    def pending(self) -> int:
        """Messages not shown yet that may be replies (alerts waiting to be combined do not count)."""
        return sum(m.message_id not in self.alert_ids for m in self.emu.transcript(self.chat_id)[self.shown:])

    def choose(self, number: int) -> tuple[int, str] | str:
        """(message id, callback data) of button ``number`` on the last reply, or why there is none."""
        if not self.buttons:
            return EXPIRED if self.offered else f"no button {number}: the last reply has no buttons"
        if not 1 <= number <= len(self.buttons):
            return f"no button {number}; choose {'1' if len(self.buttons) == 1 else f'1-{len(self.buttons)}'}"
        message_id, _, data = self.buttons[number - 1]
        live = self.emu.state.find_sent(self.chat_id, message_id)
        if live is None or live.deleted or data not in [b.get("callback_data") for row in live.buttons() for b in row]:
            return EXPIRED
        return message_id, data

    def _show(self, message: Any, *, edited: bool) -> None:
        alert = message.message_id in self.alert_ids
        who = "🔔 alert" if alert else "bot"
        prefix = f"{who} (edited)> " if edited else f"{who}> "
        if not alert and (not edited or message.message_id == self.last_reply):
            self.last_reply = message.message_id
            self._take_buttons(message, edited=edited)
        if message.deleted:
            self._print(f"{prefix}[message deleted]\n")
            return
        text = self._marked(plain(message.text, message.raw_text))
        lines = []
        if message.kind != "text":
            lines.append(f"{prefix}[{message.kind} saved to {self._save(message)}]")
            if text:
                lines.append(text)
        else:
            lines.append(prefix + text)
        if message.buttons():
            labels = [str(b.get("text")) for row in message.buttons() for b in row]
            choices = "   ".join(f"[{i}] {label}" for i, label in enumerate(labels, 1))
            lines.append(f"    {choices}   (type the number to press)")
        self._print("\n".join(lines) + "\n")

    def note(self, text: str) -> None:
        """A line from the terminal itself (not from the bot)."""
        self._print(f"({text})\n")

    def _save(self, message: Any) -> Path:
        self.files.mkdir(parents=True, exist_ok=True)
        data = message.photo if message.photo is not None else (message.document or b"")
        suffix = ".png" if message.kind == "photo" else Path(message.file_name or "file.bin").suffix or ".bin"
        path = self.files / f"chat{self.chat_id}-msg{message.message_id}{suffix}"
        path.write_bytes(data)
        return path

    def _take_buttons(self, message: Any, *, edited: bool) -> None:
        """Numbers now press the buttons of ``message`` (the last reply); an edit may have removed them."""
        self.buttons = [] if message.deleted else [
            (message.message_id, str(b.get("text")), str(b.get("callback_data", "")))
            for row in message.buttons() for b in row]
        self.offered = bool(self.buttons) or (edited and self.offered)


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
    from bot.runtime import Runtime, zone
    from config.settings import load_settings
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
        application = build_application(engine_app.facade, settings)  # confirmations time out on the wall clock
        terminal = Terminal(emu, args.user_id, args.files, sys.stdout,
                            batch_s=BATCH_S if args.speed >= BATCH_SPEED else 0.0, mark_times=args.speed != 1)
        # no per-chat pacing: the terminal is not Telegram, and a x600 market makes alerts faster than 1/s
        sender = AlertSender(application.bot, engine_app.facade, tz=zone(settings.timezone), chat_rate=0.0,
                             on_sent=terminal.on_alert)
        runtime = Runtime(engine_app, application, settings, sender=sender, poll_timeout=1.0)
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
