"""/alerts: this chat's alert settings per type, or change one (admins anywhere; viewers in their own private chat)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CommandHandler

from bot import render
from bot.auth import role_of
from bot.context import BotApplication, BotContext
from bot.handlers.commands import Role
from bot.handlers.common import Problem, args_of, bad, parse_choice, reply, reply_problem
from engine.facade import ALERT_MODES


async def alerts(update: Update, context: BotContext) -> None:
    """Show this chat's alert modes; with type and mode, set one."""
    chat, facade, args = update.effective_chat, context.facade, args_of(context)
    if chat is None:
        return
    user = update.effective_user
    if args and chat.type != "private" and role_of(context.telegram, user.id if user else None) < Role.ADMIN:
        return await reply(update, "Only an admin may change the alerts of a group. Viewers set their own in "
                                   "their private chat with the bot: /alerts TYPE on|silent|off there.")
    if args:
        if len(args) != 2:
            return await reply_problem(update, bad("alerts", "Give an alert type and on, silent or off."))
        kind = parse_choice("alerts", args[0], facade.alert_kinds(), "The alert type")
        mode = parse_choice("alerts", args[1], ALERT_MODES, "The mode")
        for value in (kind, mode):
            if isinstance(value, Problem):
                return await reply_problem(update, value)
        assert isinstance(kind, str) and isinstance(mode, str)
        refused = await facade.set_alert_mode(chat.id, kind, mode)
        if refused is not None:
            return await reply(update, render.refusal(refused))
    modes = await facade.alert_modes(chat.id)
    lines = ["Alerts in this chat (on, silent = no sound, off; change one with /alerts TYPE MODE):"]
    lines += [f"• {render.esc(k)}: <b>{render.esc(modes.get(k, 'on'))}</b>" for k in facade.alert_kinds()]
    await reply(update, "\n".join(lines))


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("alerts", alerts))
