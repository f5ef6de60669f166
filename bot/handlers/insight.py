"""Why the agent does what it does: /signal /model /health, and /retrain (admin, confirmed)."""

from __future__ import annotations

import structlog
from telegram import Update
from telegram.ext import CommandHandler

from bot import confirm, render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, parse_symbol, reply, reply_problem, tz
from engine.core.types import Refusal

log = structlog.get_logger("bot.insight")


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


async def retrain(update: Update, context: BotContext) -> None:
    """Retrain a symbol's model after confirmation; the reply shows progress, then the out-of-sample numbers."""
    args, facade = args_of(context), context.facade
    if len(args) != 1:
        return await reply_problem(update, bad("retrain", "Give one symbol."))
    symbol = parse_symbol("retrain", args[0], facade.symbols)
    if isinstance(symbol, Problem):
        return await reply_problem(update, symbol)
    checked = facade.check_retrain(symbol)
    if isinstance(checked, Refusal):
        return await reply(update, render.refusal(checked))

    async def act() -> str:
        try:
            result = await facade.retrain(symbol)
        except Exception as exc:  # the prompt says "Retraining…": it must end with what happened
            log.exception("retrain_failed", symbol=symbol)
            return f"Retraining {render.esc(symbol)} failed: {render.esc(type(exc).__name__)}: {render.esc(exc)}"
        if isinstance(result, Refusal):
            return f"Retraining {render.esc(symbol)} was refused: {render.esc(result.reason)}"
        return render.retrain_result(result)

    current = next((m.name for m in facade.models() if m.symbol == symbol), "?")
    summary = (f"Retrain the model of <b>{render.esc(symbol)}</b> (now {render.esc(current)}) on the candles the "
               f"agent holds? It is checked walk-forward, then replaces the current model; trading goes on.")
    await confirm.ask(update, context, summary, act,
                      working=f"Retraining {render.esc(symbol)}… this takes a while; trading goes on meanwhile.")


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("signal", signal))
    app.add_handler(CommandHandler("model", model))
    app.add_handler(CommandHandler("health", health))
    app.add_handler(CommandHandler("retrain", retrain))
