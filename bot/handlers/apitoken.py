"""/apitoken: an admin's or a viewer's personal token for the HTTP API, shown once, in a private chat only;
``/apitoken revoke`` ends it. The token acts with its owner's role (``bot.api.tokens``)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from bot import render
from bot.api.tokens import TokenBook
from bot.auth import role_of
from bot.context import BotApplication, BotContext
from bot.handlers.common import args_of, bad, reply, reply_problem

NOT_HERE = "The HTTP API is not part of this process (it runs in the worker: python -m bot)."
PRIVATE_ONLY = ("Send /apitoken in your private chat with the bot: a token shown here would be seen by everyone in "
                "this chat.")


def issued_text(token: str, role: str) -> str:
    return (f"Your HTTP API token ({role}), shown this once:\n<code>{render.esc(token)}</code>\n"
            f"Send it as <code>Authorization: Bearer TOKEN</code> (the API's docs are at /api/v1/docs). It replaces "
            f"any token you had; /apitoken revoke ends it. Keep it secret, and delete this message once it is "
            f"stored.")


async def apitoken(update: Update, context: BotContext, tokens: TokenBook | None) -> None:
    """A new personal token (replacing the caller's earlier one), or ``revoke``."""
    args, user, message = args_of(context), update.effective_user, update.effective_message
    if user is None or message is None:
        return
    if len(args) > 1 or (args and args[0].lower() != "revoke"):
        return await reply_problem(update, bad("apitoken", "/apitoken takes nothing, or revoke."))
    if tokens is None:
        return await reply(update, NOT_HERE)
    if args:
        count = await tokens.revoke(user.id)
        return await reply(update, "Your HTTP API token is revoked." if count else "You had no HTTP API token.")
    if message.chat.type != "private":
        return await reply(update, PRIVATE_ONLY)
    role = role_of(context.telegram, user.id)
    token = await tokens.issue(user.id, role)
    await reply(update, issued_text(token, role.name.lower()))


def register(app: BotApplication, tokens: TokenBook | None) -> None:
    async def callback(update: Update, context: BotContext) -> None:
        await apitoken(update, context, tokens)

    app.add_handler(CommandHandler("apitoken", callback))
