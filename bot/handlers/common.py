"""Shared handler helpers: replying (split, HTML, same thread) and argument parsing.

Parsers return the value or a ``Problem`` (the text to answer with); bad input is a value, not an
exception, so nothing a user types can make a handler raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot import render
from bot.context import BotContext
from bot.handlers.commands import usage

AMOUNT_RE = re.compile(r"\d{1,13}(\.\d{1,8})?")
COUNT_RE = re.compile(r"\d{1,6}")
SHOWN = 32  # characters of a user's argument echoed back


@dataclass(frozen=True, slots=True)
class Problem:
    """What to answer instead of acting (HTML, escaped)."""

    text: str


def shown(arg: str) -> str:
    """A user's argument, shortened and escaped for an error message."""
    return render.esc(arg if len(arg) <= SHOWN else arg[:SHOWN] + "…")


def bad(command: str, why: str) -> Problem:
    return Problem(f"{why}\n{render.esc(usage(command))}")


def args_of(context: BotContext) -> list[str]:
    return list(context.args or [])


def tz(context: BotContext) -> tzinfo:
    return render.zone(context.telegram.timezone)


async def reply(update: Update, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Send HTML ``text``, split into several messages when long; buttons go on the last one."""
    message = update.effective_message
    if message is None:
        return
    chunks = render.split_html(text) or ["(nothing to show)"]
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        await message.reply_text(chunk, parse_mode=ParseMode.HTML, reply_markup=reply_markup if last else None,
                                 do_quote=None if i == 0 else False)


async def reply_problem(update: Update, problem: Problem) -> None:
    await reply(update, problem.text)


def parse_symbol(command: str, arg: str, symbols: tuple[str, ...]) -> str | Problem:
    symbol = arg.strip().upper()
    if symbol not in symbols:
        return bad(command, f"Unknown symbol {shown(arg)}; this agent trades {render.esc(', '.join(symbols))}.")
    return symbol


def parse_amount(command: str, arg: str) -> float | Problem:
    """A positive amount in the quote currency, like 250 or 99.5."""
    if not AMOUNT_RE.fullmatch(arg):
        return bad(command, f"AMOUNT must be a positive number in the quote currency, like 250 or 99.5 "
                            f"(got {shown(arg)}).")
    value = float(arg)
    if value <= 0:
        return bad(command, "AMOUNT must be more than zero.")
    return value


def parse_count(command: str, arg: str, low: int, high: int) -> int | Problem:
    if not COUNT_RE.fullmatch(arg) or not low <= int(arg) <= high:
        return bad(command, f"n must be a whole number from {low} to {high} (got {shown(arg)}).")
    return int(arg)


def parse_choice(command: str, arg: str, choices: tuple[str, ...], what: str) -> str | Problem:
    value = arg.strip().lower()
    if value not in choices:
        return bad(command, f"{what} must be one of {render.esc(', '.join(choices))} (got {shown(arg)}).")
    return value
