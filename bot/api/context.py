"""What every route of the HTTP API may use, built once by ``bot.api.app.create_app`` and reached through the
``Ctx`` dependency: the engine's facade (every read and every command), the tokens, the failed-auth limiter, the
idempotency records and the event hub of the WebSocket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from bot.api.limiter import FailureLimiter
from bot.api.tokens import TokenBook
from config.settings import ApiSettings
from engine.facade import EngineFacade

if TYPE_CHECKING:
    from bot.api.hub import EventHub
    from bot.api.idempotency import IdempotencyRecords


@dataclass(frozen=True)
class ApiContext:
    facade: EngineFacade
    settings: ApiSettings
    tokens: TokenBook
    limiter: FailureLimiter
    idempotency: IdempotencyRecords
    hub: EventHub


def api_context(connection: HTTPConnection) -> ApiContext:
    context: ApiContext = connection.app.state.context
    return context


Ctx = Annotated[ApiContext, Depends(api_context)]
