"""Yes / No confirmations for anything that moves money or changes settings.

A handler validates first, then calls ``ask`` with an HTML summary of what will happen and the
coroutine that does it. The prompt carries inline Yes / No buttons (``cf:<token>:y|n``). A press
runs the action only when it comes from the user who asked, within ``TTL_MS`` by the injected
clock (the wall clock by default: people answer on it, even when the engine's clock follows a fast
simulated exchange; tests inject their own to expire a prompt without waiting); a late, foreign or
repeated press gets a clear ``answerCallbackQuery`` text and changes nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

log = structlog.get_logger("bot.confirm")

TTL_MS = 60_000
PREFIX = "cf:"
Action = Callable[[], Awaitable[str]]  # does the thing; returns the HTML result to show


def wall_ms() -> int:
    """The wall clock in ms: the time base of a person's answer."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Pending:
    token: str
    user_id: int
    chat_id: int
    created_ms: int
    summary: str  # HTML, already escaped
    action: Action
    working: str | None = None  # HTML shown in place of the prompt while a slow action runs


class Confirmations:
    """Prompts waiting for an answer, by token. Only the event loop touches it: no locking needed."""

    def __init__(self, clock: Callable[[], int], ttl_ms: int = TTL_MS) -> None:
        self._clock = clock
        self.ttl_ms = ttl_ms
        self._pending: dict[str, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def create(self, user_id: int, chat_id: int, summary: str, action: Action, working: str | None = None) -> Pending:
        now = self._clock()
        for token in [t for t, p in self._pending.items() if now - p.created_ms > self.ttl_ms]:
            del self._pending[token]  # never answered: forget it
        pending = Pending(secrets.token_hex(6), user_id, chat_id, now, summary, action, working)
        self._pending[pending.token] = pending
        return pending

    def get(self, token: str) -> Pending | None:
        return self._pending.get(token)

    def expired(self, pending: Pending) -> bool:
        return self._clock() - pending.created_ms > self.ttl_ms

    def take(self, token: str) -> Pending | None:
        """Remove and return the prompt (at most one press ever acts on it)."""
        return self._pending.pop(token, None)


class HasConfirmations(Protocol):
    """What ``ask`` and ``on_confirm`` use of a handler's context (``bot.context.BotContext`` has it; a Protocol
    here keeps bot.context -> bot.confirm the only direction of import)."""

    @property
    def confirmations(self) -> Confirmations: ...


def keyboard(pending: Pending) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data=f"{PREFIX}{pending.token}:y"),
                                  InlineKeyboardButton("No", callback_data=f"{PREFIX}{pending.token}:n")]])


async def ask(update: Update, context: HasConfirmations, summary: str, action: Action, *,
              working: str | None = None) -> None:
    """Show ``summary`` with Yes / No buttons; ``action`` runs on Yes.

    For a slow action give ``working``: on Yes the prompt is replaced by it at once (buttons gone),
    and edited again to the action's result when it is done."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    pending = context.confirmations.create(user.id, message.chat_id, summary, action, working)
    seconds = context.confirmations.ttl_ms // 1000
    await message.reply_text(f"{summary}\n\nConfirm within {seconds} s?", parse_mode=ParseMode.HTML,
                             reply_markup=keyboard(pending))


async def on_confirm(update: Update, context: HasConfirmations) -> None:
    """Act on a Yes / No press, if it is the asker's and still in time."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    token, _, answer = query.data.removeprefix(PREFIX).partition(":")
    pending = context.confirmations.get(token)
    if pending is None:
        await query.answer("This confirmation is no longer valid: it was answered already or has expired.",
                           show_alert=True)
        return
    if query.from_user.id != pending.user_id:
        log.info("confirm_foreign", user_id=query.from_user.id, owner=pending.user_id)
        await query.answer("Only the person who asked can answer this.", show_alert=True)
        return
    context.confirmations.take(token)  # from here on no other press can act on it
    if context.confirmations.expired(pending):
        await query.answer("Too late: this confirmation expired and nothing was done. Send the command again.",
                           show_alert=True)
        await _close_prompt(query, f"{pending.summary}\n\n<i>Expired: nothing was done.</i>")
        return
    if answer != "y":
        await query.answer("Cancelled.")
        await _close_prompt(query, f"{pending.summary}\n\n<i>Cancelled: nothing was done.</i>")
        return
    await query.answer("Confirmed.")
    if pending.working is not None:
        await _close_prompt(query, pending.working)
    result = await pending.action()
    await _close_prompt(query, result)


async def _close_prompt(query: CallbackQuery, text: str) -> None:
    """Replace the prompt (and its buttons) with the outcome."""
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
