"""/reconcile: the agent's books against the exchange now (live); /reconcile accept adopts the exchange's figures
for what disagrees (admin, confirmed). No order is ever sent to make a difference go away."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from bot import confirm, render
from bot.context import BotApplication, BotContext
from bot.handlers.common import args_of, bad, reply, reply_problem, tz
from bot.render import reconcile as text
from engine.core.types import Refusal


async def reconcile(update: Update, context: BotContext) -> None:
    """Reconcile now and show the comparison; with accept, adopt the exchange's figures after confirmation."""
    facade, args = context.facade, args_of(context)
    if args and (len(args) != 1 or args[0].lower() != "accept"):
        return await reply_problem(update, bad("reconcile", "Give nothing to compare the books with the exchange, "
                                                            "or accept to adopt the exchange's figures."))
    result = await facade.reconcile()
    if isinstance(result, Refusal):
        return await reply(update, render.refusal(result))
    if not args:
        return await reply(update, text.reconciliation(result, tz(context)))
    if not result.mismatches:
        return await reply(update, text.reconciliation(result, tz(context)) + "\nNothing to accept.")
    by = f"telegram:{update.effective_user.id}" if update.effective_user else "telegram"

    async def act() -> str:
        done = await facade.accept_reconciliation(by)
        if isinstance(done, Refusal):
            return f"{render.refusal(done)}\nNothing was changed."
        return "The exchange's figures are now the agent's books. No order was sent.\n" + text.reconciliation(
            done, tz(context))

    await confirm.ask(update, context, text.accept_prompt(result), act)


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("reconcile", reconcile))
