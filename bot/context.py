"""Typed handler dependencies: ``context.facade``, ``context.telegram``, ``context.confirmations``.

``BotData`` is the application's ``bot_data``; ``build_application`` makes a subclass bound to its
facade and the bot's settings (PTB constructs ``bot_data`` itself, with no arguments), so handlers never
reach for globals and nothing is assigned into the application after it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.confirm import Confirmations
from config.settings import TelegramSettings
from engine.facade import EngineFacade


class BotData:
    """Everything a handler may use, built once per application."""

    def __init__(self, facade: EngineFacade, telegram: TelegramSettings, clock: Callable[[], int]) -> None:
        self.facade = facade
        self.telegram = telegram
        self.confirmations = Confirmations(clock)
        self.registered_chats: set[tuple[int, int | None]] = set()  # alert recipients seen this process
        self.errors_seen = 0  # exceptions that reached the error handler


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The ``context`` every handler receives."""

    @property
    def facade(self) -> EngineFacade:
        return self.bot_data.facade

    @property
    def telegram(self) -> TelegramSettings:
        """The bot's settings: who is admin or viewer, the time zone of the times it shows."""
        return self.bot_data.telegram

    @property
    def confirmations(self) -> Confirmations:
        return self.bot_data.confirmations


def bound_bot_data(facade: EngineFacade, telegram: TelegramSettings, clock: Callable[[], int]) -> type[BotData]:
    """A ``BotData`` subclass PTB can construct without arguments, bound to these dependencies."""

    class BoundBotData(BotData):
        def __init__(self) -> None:
            super().__init__(facade, telegram, clock)

    return BoundBotData


def context_types(facade: EngineFacade, telegram: TelegramSettings,
                  clock: Callable[[], int]) -> ContextTypes[BotContext, dict[Any, Any], dict[Any, Any], BotData]:
    return ContextTypes(context=BotContext, bot_data=bound_bot_data(facade, telegram, clock))


BotApplication = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
