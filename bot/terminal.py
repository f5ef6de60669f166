"""The terminal view of one chat with the bot, for ``trading-agent chat``: what the bot sends, printed in order.

Replies and alerts are printed as they arrive (HTML tags stripped; with ``mark_times`` the times are marked
"sim": they are the synthetic market's, ahead of the wall clock); photos and documents are saved under
``files`` and their path is printed; inline buttons are shown as numbered choices (``choose`` turns a
number into the button of the last reply). At high speed-ups alerts that arrive together are shown as one
combined block.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import IO, Any

CLASSIFY_S = 0.15  # a message is shown once this old, so the alert sender can claim it first
BATCH_MIN = 3  # fewer alerts than this are shown one by one
BATCH_LINES = 8  # distinct headlines listed in a combined block
TAG_RE = re.compile(r"<[^>]+>")
TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?::\d{2})? [A-Z][A-Za-z0-9+-]{0,5})(?!\w)")
EXPIRED = "that choice has expired: the buttons it answered are gone; send the command again"


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
