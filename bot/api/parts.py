"""The worker's API parts: its tokens always, its server only when the API is on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.api.failure import ApiUnavailable as ApiUnavailable  # what the server raises; the worker catches it

if TYPE_CHECKING:
    from bot.api.server import ApiServer
    from bot.api.tokens import TokenBook
    from config.settings import ApiSettings
    from engine.app import EngineApp


def api_parts(engine_app: EngineApp, settings: ApiSettings) -> tuple[TokenBook, ApiServer | None]:
    """The worker's tokens (``/apitoken`` issues them whether or not the API runs) and its API server, built only
    when the API is on (FastAPI and uvicorn are imported only then: ~7 MB)."""
    from bot.api.tokens import TokenBook

    tokens = TokenBook(engine_app.store, settings)
    if not settings.enabled:
        return tokens, None
    from bot.api.server import ApiServer

    return tokens, ApiServer(engine_app.facade, settings, tokens=tokens, idempotency=engine_app.store,
                             bus=engine_app.bus)
