"""/strategy: show the active strategy; /strategy set NAME [key=value ...] switches it (admin, confirmed)."""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import CommandHandler

from bot import confirm, render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, reply, reply_problem, shown, tz
from bot.render import strategy as text
from engine.core.types import Refusal

NAME_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,200}")
PARAM_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,40})=([^\s=]{1,40})")
MAX_PARAMS = 20


def _parse(args: list[str]) -> tuple[str, dict[str, str]] | Problem:
    if args[0].lower() != "set" or len(args) < 2:
        return bad("strategy", "Give nothing to see the strategy, or set NAME to switch it.")
    name, rest = args[1], args[2:]
    if not NAME_RE.fullmatch(name):
        return bad("strategy", f"{shown(name)} is not a strategy name; /strategy lists them.")
    if len(rest) > MAX_PARAMS:
        return bad("strategy", f"At most {MAX_PARAMS} parameters.")
    params: dict[str, str] = {}
    for arg in rest:
        match = PARAM_RE.fullmatch(arg)
        if match is None:
            return bad("strategy", f"Parameters are written key=value, like fast=12 (got {shown(arg)}).")
        if match[1] in params:
            return bad("strategy", f"Parameter {shown(match[1])} is given twice.")
        params[match[1]] = match[2]
    return name, params


async def strategy(update: Update, context: BotContext) -> None:
    """Show the active strategy; with set NAME, switch every symbol to it after confirmation."""
    facade, args = context.facade, args_of(context)
    if not args:
        return await reply(update, text.strategy(facade.active_strategy(), facade.strategy_names(), tz(context)))
    parsed = _parse(args)
    if isinstance(parsed, Problem):
        return await reply_problem(update, parsed)
    name, params = parsed
    checked = await facade.check_strategy(name, params)  # loads it and runs the look-ahead check: changes nothing
    if isinstance(checked, Refusal):
        return await reply(update, render.refusal(checked))
    by = f"telegram:{update.effective_user.id}" if update.effective_user else "telegram"

    async def act() -> str:
        result = await facade.set_strategy(name, params, by)
        if isinstance(result, Refusal):
            return f"{render.refusal(result)}\nNothing was changed."
        return text.switched(result, facade.positions())

    await confirm.ask(update, context, text.switch_prompt(facade.active_strategy(), checked, facade.positions()),
                      act)


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("strategy", strategy))
