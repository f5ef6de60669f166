"""Authorisation: deny by default, as a ``TypeHandler`` guard in group -1.

Admins (``TELEGRAM_ADMIN_IDS``) may do everything; viewers (``TELEGRAM_VIEWER_IDS``) may read;
anyone else gets one short refusal that reveals nothing, except ``/start``, which answers everyone
with their own ids. A refused update is logged (user id, chat id, command name; never the text)
and stops with ``ApplicationHandlerStop``, so no other handler sees it. Callback queries are
checked the same way. Each chat an admin or viewer talks from becomes an alert recipient.
"""

from __future__ import annotations

import structlog
from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import BotApplication, BotContext
from bot.handlers.commands import BY_NAME, Role
from config.settings import TelegramSettings

log = structlog.get_logger("bot.auth")

NOT_AUTHORISED = "Not authorised."
CONFIRM_PREFIX = "cf:"


def role_of(settings: TelegramSettings, user_id: int | None) -> Role:
    if user_id is None:
        return Role.STRANGER
    if user_id in settings.admin_ids:
        return Role.ADMIN
    if user_id in settings.viewer_ids:
        return Role.VIEWER
    return Role.STRANGER


def parse_command(text: str | None, bot_username: str | None) -> tuple[str | None, bool, bool]:
    """(command name or None, has arguments, addressed to another bot)."""
    if not text or not text.startswith("/"):
        return None, False, False
    head, *rest = text.split(maxsplit=1)
    name, _, target = head[1:].partition("@")
    other_bot = bool(target) and bot_username is not None and target.lower() != bot_username.lower()
    return name.lower(), bool(rest and rest[0].strip()), other_bot


def callback_role(data: str | None) -> Role:
    return Role.ADMIN if (data or "").startswith(CONFIRM_PREFIX) else Role.VIEWER


def thread_of(message: Message | None) -> int | None:
    """The forum topic a message belongs to (None outside topics)."""
    return message.message_thread_id if message is not None and message.is_topic_message else None


async def guard(update: Update, context: BotContext) -> None:
    """Stop every update the sender may not make; remember the chats of admins and viewers."""
    user, chat = update.effective_user, update.effective_chat
    role = role_of(context.telegram, user.id if user else None)
    query = update.callback_query
    if query is not None:
        needed = callback_role(query.data)
        if role < needed:
            _log_refusal(update, "<button>", role)
            await query.answer(NOT_AUTHORISED if role is Role.STRANGER else "Only an admin may do that.",
                               show_alert=True)
            raise ApplicationHandlerStop
    else:
        await _check_message(update, context, role)
    if role >= Role.VIEWER and chat is not None:
        await _remember_chat(context, chat.id, thread_of(update.effective_message))


async def _check_message(update: Update, context: BotContext, role: Role) -> None:
    message = update.message
    if message is None:  # edits, membership changes, channel posts: nothing for a stranger
        if role is Role.STRANGER:
            raise ApplicationHandlerStop
        return
    name, has_args, other_bot = parse_command(message.text, context.bot.username)
    if other_bot:
        raise ApplicationHandlerStop
    if name == "start":
        return
    command = BY_NAME.get(name or "")
    needed = command.role_for(has_args) if command else Role.VIEWER
    if role >= needed:
        return
    _log_refusal(update, f"/{name}" if name else "<text>", role)
    private = message.chat.type == "private"
    if role is Role.STRANGER and (name is not None or private):
        await message.reply_text(NOT_AUTHORISED)
    elif command is not None:
        changes = " with arguments" if command.role_with_args is not None else ""
        await message.reply_text(f"Only an admin may use /{command.name}{changes}.")
    raise ApplicationHandlerStop


def _log_refusal(update: Update, command: str, role: Role) -> None:
    log.warning("refused", user_id=update.effective_user.id if update.effective_user else None,
                chat_id=update.effective_chat.id if update.effective_chat else None,
                command=command[:40], role=role.name.lower())


async def _remember_chat(context: BotContext, chat_id: int, thread_id: int | None) -> None:
    seen = context.bot_data.registered_chats
    if (chat_id, thread_id) not in seen:
        await context.facade.register_chat(chat_id, thread_id)
        seen.add((chat_id, thread_id))


def register(app: BotApplication) -> None:
    app.add_handler(TypeHandler(Update, guard), group=-1)
