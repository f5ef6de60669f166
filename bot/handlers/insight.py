"""Why the agent does what it does: /signal /model /health."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from bot import render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, parse_symbol, reply, reply_problem, tz
from engine.core.types import Refusal


async def signal(update: Update, context: BotContext) -> None:
    """The last signal per symbol, and whether it would trade now."""
    args = args_of(context)
    facade = context.facade
    if len(args) > 1:
        return await reply_problem(update, bad("signal", "Give at most one symbol."))
    wanted = parse_symbol("signal", args[0], facade.symbols) if args else None
    if isinstance(wanted, Problem):
        return await reply_problem(update, wanted)
    parts = []
    for symbol in [wanted] if wanted else facade.symbols:
        view = facade.signal(symbol)
        parts.append(render.refusal(view) if isinstance(view, Refusal) else render.signal(view, tz(context)))
    await reply(update, "\n\n".join(parts))


async def model(update: Update, context: BotContext) -> None:
    """The models in use and their health."""
    if context.args:
        return await reply_problem(update, bad("model", "/model takes no arguments."))
    await reply(update, render.models(context.facade.models()))


async def health(update: Update, context: BotContext) -> None:
    """Loop lag, database, feeds and models."""
    if context.args:
        return await reply_problem(update, bad("health", "/health takes no arguments."))
    await reply(update, render.health(await context.facade.health()))


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("signal", signal))
    app.add_handler(CommandHandler("model", model))
    app.add_handler(CommandHandler("health", health))
