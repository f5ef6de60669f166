"""/start, /help, /version, and the answer to unknown commands."""

from __future__ import annotations

import platform

import telegram
from telegram import Update
from telegram.ext import CommandHandler, MessageHandler, filters

from bot import render
from bot.auth import role_of
from bot.context import BotApplication, BotContext
from bot.handlers.commands import BY_NAME, COMMANDS, Role
from bot.handlers.common import reply


def first_steps(role: Role, symbol: str) -> list[str]:
    """What a new admin or viewer might try first (plain text)."""
    steps = ["/status - is it running, what are the prices",
             f"/signal {symbol} - what the strategy thinks now, and why it would or would not trade",
             "/positions and /trades - what it holds and what it did"]
    if role is Role.ADMIN:
        steps += [f"/buy {symbol} 100 - a paper order for 100 in the quote currency (you confirm first)",
                  "/risk - the limits every order is checked against"]
    steps.append("/alerts - which alerts this chat gets; /alerts order_filled silent, for example, mutes that sound")
    return steps


async def start(update: Update, context: BotContext) -> None:
    """Anyone's own user id and chat id (for the operator's config); nothing about the agent for strangers,
    and for admins and viewers what to try first."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    lines = [f"Your user id: <code>{user.id}</code>", f"This chat id: <code>{chat.id}</code>"]
    role = role_of(context.telegram, user.id)
    if role >= Role.VIEWER:
        lines.append(f"You are {'an admin' if role is Role.ADMIN else 'a viewer'}"
                     f"{' (everything is paper trading: no real money)' if context.facade.mode == 'paper' else ''}."
                     f"\n\nTry first:")
        lines += [f"• {render.esc(step)}" for step in first_steps(role, context.facade.symbols[0])]
        lines.append("Send /help for every command.")
    await reply(update, "\n".join(lines))


def help_text(role: Role) -> str:
    """The commands ``role`` may use, as plain text (no markup: it is sent without a parse mode)."""
    lines = [line for c in COMMANDS if (line := c.help_line(role)) is not None]
    return "Commands:\n" + "\n".join(lines) + "\nAMOUNT is in the quote currency (e.g. USDT for BTCUSDT)."


async def help_command(update: Update, context: BotContext) -> None:
    """The commands the caller's role may use."""
    message = update.effective_message
    if message is None:
        return
    role = role_of(context.telegram, update.effective_user.id if update.effective_user else None)
    await message.reply_text(help_text(role))  # plain text: nothing a client could show as raw markup


async def version(update: Update, context: BotContext) -> None:
    """Software versions."""
    await reply(update, f"trading-agent {render.esc(context.facade.version)} ({render.mode_tag(context.facade.mode)})"
                        f"\npython-telegram-bot {render.esc(telegram.__version__)}, "
                        f"Python {render.esc(platform.python_version())}")


async def unknown(update: Update, context: BotContext) -> None:
    """Unknown commands and plain private text get a pointer to /help."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    name = message.text.split(maxsplit=1)[0][1:].partition("@")[0].lower() if message.text.startswith("/") else None
    if name in BY_NAME:
        return  # a known command, handled in group 0
    if name is None and message.chat.type != "private":
        return
    await reply(update, "Unknown command. Send /help for the list." if name else "Send /help for the commands.")


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("version", version))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.UpdateType.EDITED, unknown), group=1)
