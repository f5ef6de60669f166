"""/risk: show the limits, or change one (admin, confirmed)."""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import CommandHandler

from bot import confirm, render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, reply, reply_problem, shown
from engine.core.types import Refusal

VALUE_RE = re.compile(r"\d{1,6}(\.\d{1,10})?")
FRACTIONS = "Fractions: 0.05 is 5%; 0 switches a protective limit off."


def _refused(problem: str | None) -> str | None:
    """The engine's reason a change is refused, with how the values read; None if it is not refused."""
    return None if problem is None else f"Refused: {render.esc(problem)}.\n{FRACTIONS}"


def _parse(context: BotContext) -> tuple[str, float] | Problem:
    args = args_of(context)
    if len(args) != 2:
        return bad("risk", "Give a key and a value, or nothing to see the limits.")
    keys = context.facade.risk_keys()
    key = args[0].lower()
    if key not in keys:
        return bad("risk", f"Unknown risk key {shown(args[0])}; known: {render.esc(', '.join(keys))}.")
    if not VALUE_RE.fullmatch(args[1]):
        return bad("risk", f"The value must be a plain number like 0.05 (a fraction: 0.05 is 5%; 0 switches a "
                           f"protective limit off), got {shown(args[1])}.")
    return key, float(args[1])


async def risk(update: Update, context: BotContext) -> None:
    """Show risk limits; with key and value, change one after confirmation."""
    facade = context.facade
    if not context.args:
        return await reply(update, render.risk(facade.risk()))
    parsed = _parse(context)
    if isinstance(parsed, Problem):
        return await reply_problem(update, parsed)
    key, value = parsed
    limits = facade.risk()
    if refused := _refused(facade.check_risk(key, value)):
        return await reply(update, refused)
    old = limits.get(key)

    async def act() -> str:
        result = await facade.set_risk(key, value)
        if isinstance(result, Refusal):
            return render.refusal(result)
        return f"Risk limit changed: {render.esc(key)} = <code>{render.esc(f'{result[key]:g}')}</code>"

    await confirm.ask(update, context, f"Change risk limit {render.esc(key)} from "
                                       f"<code>{render.esc(f'{old:g}' if old is not None else '?')}</code> to "
                                       f"<code>{render.esc(f'{value:g}')}</code>?", act)


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("risk", risk))
