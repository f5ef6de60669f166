"""The HTTP API's FastAPI application: ``create_app(facade, settings, ...)`` (``bot.api.server.ApiServer`` serves it
in the worker's loop).

A front end like the chat: every read is a facade read, every action an engine command through the facade, and
this package only parses, checks the caller, and formats. Routes live under ``/api/v1`` (one router per module:
``reads``, ``charts``, ``actions``, ``ws``), its OpenAPI at ``/api/v1/openapi.json`` and docs at ``/api/v1/docs``.
Errors are ``{"error", "detail"}`` (``bot.api.errors``). CORS is off unless ``API_CORS_ORIGINS`` names origins.

The dashboard is ``/`` (``static/index.html``) with its script, styles and the vendored charting library under
``/static``: plain files, no build step, nothing from the internet; it reads and acts through ``/api/v1`` with the
token the person types in, like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from bot.api import actions, charts, errors, reads, ws
from bot.api.context import ApiContext
from bot.api.hub import EventHub
from bot.api.idempotency import REPLAYED, IdempotencyRecords
from bot.api.limiter import FailureLimiter
from bot.api.tokens import TokenBook
from config.settings import ApiSettings
from engine.events import EventBus
from engine.facade import EngineFacade

PREFIX = "/api/v1"
STATIC = Path(__file__).with_name("static")
# The dashboard loads only its own files and talks only to this server (its WebSocket included); no framing.
DASHBOARD_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

DESCRIPTION = """The trading agent's HTTP API: the chat's reads and actions over the same engine.

Authenticate with `Authorization: Bearer <token>`: a personal token from `/apitoken` in the chat, or one of
`API_TOKENS`. Viewers read; admins also act. Every action needs an `Idempotency-Key` header: retried with the same
key and body, it never acts twice and answers as the first time. Errors are `{"error": code, "detail": text}`.
Events stream on the WebSocket `/api/v1/ws`."""


def create_app(facade: EngineFacade, settings: ApiSettings, *, tokens: TokenBook, idempotency: IdempotencyRecords,
               bus: EventBus, limiter: FailureLimiter | None = None, hub: EventHub | None = None) -> FastAPI:
    """The API over ``facade``; ``tokens`` must be loaded (``TokenBook.load``) before it answers."""
    app = FastAPI(title="trading-agent", version=facade.version, description=DESCRIPTION,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=f"{PREFIX}/docs", redoc_url=None)
    app.state.context = ApiContext(facade, settings, tokens, limiter or FailureLimiter(), idempotency,
                                   hub or EventHub(bus))
    for router in (reads.public, reads.router, charts.router, actions.router, ws.router):
        app.include_router(router, prefix=PREFIX)
    errors.install(app)
    _dashboard(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                           expose_headers=["Retry-After", REPLAYED])
    return app


def _dashboard(app: FastAPI) -> None:
    """``/`` serves the dashboard's page, ``/static`` its script, styles and the vendored chart library."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=DASHBOARD_HEADERS)
