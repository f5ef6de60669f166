"""Builds the python-telegram-bot ``Application``: handlers, auth guard, error handler, command menu.

    app = build_application(engine_app.facade, settings.telegram)
    async with app:            # initialize / shutdown
        await app.start()
        await app.updater.start_polling()

Handlers reach the engine only through the facade, via the typed ``BotContext``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application

from bot import auth
from bot.confirm import wall_ms
from bot.context import BotApplication, BotContext, context_types
from bot.handlers import account, alerts, apitoken, basic, charts, insight, orders, reconcile, risk, strategy, trading
from bot.handlers.commands import COMMANDS, Command, Role
from bot.request import AiohttpRequest
from config.settings import TelegramSettings
from engine.facade import EngineFacade

if TYPE_CHECKING:
    from bot.api.tokens import TokenBook

log = structlog.get_logger("bot.app")

HANDLER_MODULES = (basic, account, orders, trading, risk, strategy, reconcile, insight, charts, alerts)

GENERIC_ERROR = "Sorry, something went wrong; it has been logged. Please try again."

__all__ = ["COMMANDS", "Command", "Role", "build_application", "menu"]


def menu(role: Role) -> list[BotCommand]:
    """The Telegram command menu for ``role`` (/start is left out: Telegram's Start button covers it)."""
    return [BotCommand(c.name, c.description if role >= (c.role_with_args or c.role) else c.read_description)
            for c in COMMANDS if c.role >= Role.VIEWER and role >= c.role]


async def post_init(app: BotApplication) -> None:
    """Publish the menu: read-only commands for everyone, everything in each admin's private chat."""
    await app.bot.set_my_commands(menu(Role.VIEWER))
    for admin in app.bot_data.telegram.admin_ids:
        try:
            await app.bot.set_my_commands(menu(Role.ADMIN), scope=BotCommandScopeChat(admin))
        except TelegramError as exc:  # the admin has not started a chat with the bot yet
            log.warning("admin_menu_not_set", user_id=admin, error=str(exc))


async def on_error(update: object, context: BotContext) -> None:
    """Log the exception with context and tell the user, briefly, that it failed."""
    context.bot_data.errors_seen += 1
    chat_id = user_id = None
    if isinstance(update, Update):
        chat_id = update.effective_chat.id if update.effective_chat else None
        user_id = update.effective_user.id if update.effective_user else None
    log.error("handler_error", chat_id=chat_id, user_id=user_id, exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(GENERIC_ERROR, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(GENERIC_ERROR, parse_mode=ParseMode.HTML)
    except TelegramError as exc:  # the reply itself failed: the log above is what is left
        log.warning("error_reply_failed", chat_id=chat_id, error=str(exc))


def _api_urls(settings: TelegramSettings, base_url: str | None,
              base_file_url: str | None) -> tuple[str | None, str | None]:
    """PTB-style URLs (``.../bot``); TELEGRAM_API_BASE_URL names the server root (e.g. the emulator)."""
    if base_url is None and settings.api_base_url:
        root = settings.api_base_url.rstrip("/")
        base_url = root if root.endswith("/bot") else f"{root}/bot"
        if base_file_url is None and not settings.api_file_url:
            base_file_url = f"{root.removesuffix('/bot')}/file/bot"
    if base_file_url is None and settings.api_file_url:
        base_file_url = settings.api_file_url.rstrip("/")
    return base_url, base_file_url


CONNECTION_POOL_SIZE = 16
"""HTTP connections for Bot API calls (getUpdates has its own). PTB's default is 256, but httpcore checks
every idle connection of its pool (a few syscalls each) twice per request, so a pool that grew to
``concurrent_updates`` connections costs more CPU per reply than the request itself. 16 connections carry
hundreds of replies a second to a nearby server, and the rate limiter holds production to 30 a second;
a handler that finds all 16 busy waits up to PTB's pool timeout (1 s) for one."""


def build_application(facade: EngineFacade, settings: TelegramSettings, *, base_url: str | None = None,
                      base_file_url: str | None = None, rate_limiter: bool = True, concurrent_updates: int = 32,
                      clock: Callable[[], int] | None = None,
                      connection_pool_size: int = CONNECTION_POOL_SIZE, http: str | None = None,
                      tokens: TokenBook | None = None) -> BotApplication:
    """The bot, wired to ``facade``; ``clock`` (ms) times confirmations (default: the wall clock, since people
    answer on it, even when the engine's clock follows a fast simulated exchange). ``tokens``: the HTTP API's
    (``/apitoken`` issues and revokes them; without, it says the API is not part of this process).

    ``http`` picks the Bot API transport (default: ``settings.http``, i.e. ``TELEGRAM_HTTP``):
    ``"aiohttp"`` (``bot.request.AiohttpRequest``, the default) or ``"httpx"`` (PTB's ``HTTPXRequest``)."""
    if concurrent_updates < 1:
        raise ValueError("concurrent_updates must be at least 1")
    base_url, base_file_url = _api_urls(settings, base_url, base_file_url)
    builder: Any = (Application.builder().token(settings.bot_token.get_secret_value())
                    .context_types(context_types(facade, settings, clock or wall_ms))
                    .concurrent_updates(concurrent_updates).post_init(post_init))
    http = http or settings.http
    if http == "aiohttp":
        builder = (builder.request(AiohttpRequest(connection_pool_size))
                   .get_updates_request(AiohttpRequest(1, read_timeout=5.0)))
    elif http == "httpx":
        builder = builder.connection_pool_size(connection_pool_size)
    else:
        raise ValueError(f"http must be 'httpx' or 'aiohttp', not {http!r}")
    if base_url is not None:
        builder = builder.base_url(base_url)
    if base_file_url is not None:
        builder = builder.base_file_url(base_file_url)
    if rate_limiter:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    app: BotApplication = builder.build()
    auth.register(app)
    for module in HANDLER_MODULES:
        module.register(app)
    apitoken.register(app, tokens)
    app.add_error_handler(on_error)
    return app
