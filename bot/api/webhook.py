"""One port: Telegram's webhook as a route of the HTTP API's app, so that one server (uvicorn, in the worker's loop)
serves the API, the dashboard and the bot on ``PORT`` (a Heroku ``web`` dyno).

python-telegram-bot's "custom webhook" pattern (its customwebhookbot example): the Application runs without its own
webhook server; this route checks the secret token (``X-Telegram-Bot-Api-Secret-Token``, the ``WEBHOOK_SECRET``
given to setWebhook, compared in constant time), decodes the update (``Update.de_json``) and puts it on the
Application's ``update_queue``, answering 200 at once; the handlers run as the Application's tasks.

    403 forbidden      no secret token, or a wrong one (counted by the API's failure limiter: 429 past it)
    400 bad_request    not a JSON object, or not an update
    413 too_large      a body larger than any update
    503 unavailable    the bot is not running yet (Telegram unreachable at start): Telegram retries later
"""

from __future__ import annotations

import hmac
import json
import math
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from telegram import Update

from bot.api.auth import client_address
from bot.api.context import ApiContext
from bot.api.errors import ApiError

log = structlog.get_logger("bot.api.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is a few kB; Telegram's own limit on a message is far below this
RESERVED = ("/api/", "/static/")  # the API's and the dashboard's paths: the webhook cannot take them


def webhook_path(url_path: str) -> str:
    """The route for a webhook URL's path (``bot.runtime.WebhookPlan.url_path``, without slashes)."""
    return "/" + url_path.strip("/")


def add_webhook_route(app: FastAPI, application: Any, url_path: str, secret_token: str) -> str:
    """Route ``POST /<url_path>`` of ``app`` to ``application``'s update queue; the route's path. ``application``
    is a python-telegram-bot Application whose updater is not started (no second server)."""
    path = webhook_path(url_path)
    expected = secret_token.encode()

    async def telegram_webhook(request: Request) -> Response:
        context: ApiContext = request.app.state.context
        address = client_address(request.client.host if request.client else None)
        wait = context.limiter.retry_after(address)
        if wait is not None:
            raise ApiError(429, "rate_limited", "too many failed requests from this address; try again later",
                           {"Retry-After": str(max(1, math.ceil(wait)))})
        sent = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(sent.encode(), expected):
            context.limiter.failed(address)
            log.info("webhook_refused", client=address, secret_sent=bool(sent))  # never the value
            raise ApiError(403, "forbidden", f"missing or wrong {SECRET_HEADER}")
        if not application.running:
            raise ApiError(503, "unavailable", "the bot is starting; try again later", {"Retry-After": "5"})
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_UPDATE_BYTES:
            raise ApiError(413, "too_large", "the body is larger than any update")
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            raise ApiError(413, "too_large", "the body is larger than any update")
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            update = Update.de_json(data, application.bot)
        except Exception as exc:  # any malformed body: one line, nothing queued
            raise ApiError(400, "bad_request", f"not a Telegram update ({type(exc).__name__})") from None
        await application.update_queue.put(update)
        return Response(status_code=200)

    app.add_api_route(path, telegram_webhook, methods=["POST"], include_in_schema=False,
                      name="telegram_webhook")
    return path
