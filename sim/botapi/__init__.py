"""A local Telegram Bot API emulator for running the real python-telegram-bot in tests.

    emu = BotApiEmulator(token="123456:TEST-TOKEN", bot_username="paper_agent_bot")
    async with emu.run() as base_url:
        app = (Application.builder().token(emu.token)
               .base_url(f"{base_url}/bot").base_file_url(f"{base_url}/file/bot").build())
"""

from sim.botapi.server import BotApiEmulator, Call, Fault, FaultInjector, FaultKind
from sim.botapi.state import ApiError, CallbackAnswer, EmulatorState, Revision, SentMessage

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "Call",
    "CallbackAnswer",
    "EmulatorState",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "Revision",
    "SentMessage",
]
