"""Every error of the HTTP API is ``{"error": code, "detail": one line}`` with its status; never a traceback.

    400 bad_request       a header is missing or malformed (Idempotency-Key)
    401 unauthorized      no token, or one that is not (or no longer) valid
    403 forbidden         a viewer's token on an action
    404 not_found         no such route, symbol, order
    409 <engine code>     the engine refused in this state: paused, no_position, pending, ... (its reason)
    422 <engine code>     the engine refused the value (bad_amount, bad_risk_value, below_minimum ...), or the
        invalid_request   request did not parse (the first problem, in one line)
    429 rate_limited      too many failed authentications from this address (Retry-After)
    503 unavailable       the database did not answer
    500 internal          anything else: logged with its traceback, answered with nothing more

A refusal of the engine (``engine.core.types.Refusal``) is a value; ``refused`` turns it into the answer.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.core.types import Refusal
from engine.errors import StoreError

log = structlog.get_logger("bot.api")

NOT_FOUND_CODES = frozenset({"unknown_order"})
VALUE_CODES = frozenset({"bad_amount", "bad_side", "bad_risk_value", "below_minimum", "precision", "limit",
                         "unknown_symbol", "bad_param", "bad_kind", "bad_mode"})
STATUS_WORDS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                422: "invalid_request", 429: "rate_limited", 503: "unavailable"}


MAX_DETAIL = 300  # characters: a refusal may echo what the caller sent


def one_line(text: str) -> str:
    """``text`` as one printable line (control characters escaped), at most ``MAX_DETAIL`` characters."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL - 1] + "…"


class ApiError(Exception):
    """An answer other than success, raised from a route or a dependency."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        detail = one_line(detail)
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def refusal_status(refusal: Refusal, *, not_found: frozenset[str] = NOT_FOUND_CODES) -> int:
    """404 for what does not exist, 422 for a value the engine will not take, 409 for a refusal by the state."""
    if refusal.code in not_found:
        return 404
    return 422 if refusal.code in VALUE_CODES else 409


def refused(refusal: Refusal, *, not_found: frozenset[str] = NOT_FOUND_CODES) -> ApiError:
    return ApiError(refusal_status(refusal, not_found=not_found), refusal.code, refusal.reason)


def body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def _one_line(exc: RequestValidationError) -> str:
    """FastAPI's list of problems as the first one, in a line: ``body.amount: Input should be a valid number``."""
    errors: list[Any] = list(exc.errors())
    if not errors:
        return "the request is invalid"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return one_line(f"{where}: {first.get('msg', 'invalid')}{more}")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(body(exc.code, exc.detail), status_code=exc.status, headers=exc.headers)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(body("invalid_request", _one_line(exc)), status_code=422)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_WORDS.get(exc.status_code, "error")
    detail = one_line(exc.detail) if isinstance(exc.detail, str) else code
    return JSONResponse(body(code, detail), status_code=exc.status_code, headers=exc.headers)


async def _store(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api_store_error", path=request.url.path, error=str(exc))
    return JSONResponse(body("unavailable", "the database did not answer; try again"), status_code=503,
                        headers={"Retry-After": "5"})


def install(app: FastAPI) -> None:
    """The handlers above, and the catch-all below as the outermost of the app's own middleware."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(StoreError, _store)
    app.add_middleware(CatchAll)


class CatchAll:
    """Anything a route raised that no handler above knows: logged with its traceback (structlog, redacted), the
    client gets a bare 500 ``{"error": "internal"}`` and the server goes on. (Starlette's own last resort would
    re-raise it to the server, which logs it again.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("api_request_failed", method=scope.get("method"), path=scope.get("path"))
            if started:  # the answer is on its way: nothing more to send; the connection is closed by the server
                return
            response = JSONResponse(body("internal", "internal error; it has been logged"), status_code=500)
            await response(scope, receive, send)
