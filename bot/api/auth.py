"""Deny by default: every route but ``health`` needs ``Authorization: Bearer <token>``; viewers read, admins also
act. Wrong tokens count against the client's address (``bot.api.limiter``): past the limit every request from
it is 429 with Retry-After until the window passes. The WebSocket checks the same way (``credentials``)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.api.context import ApiContext, Ctx
from bot.api.errors import ApiError
from bot.api.tokens import Principal
from bot.handlers.commands import Role

log = structlog.get_logger("bot.api.auth")

bearer = HTTPBearer(auto_error=False, description="A token from /apitoken in the chat, or from API_TOKENS")
MAX_TOKEN_CHARS = 200  # longer is no token of ours: refused without hashing it


def client_address(host: str | None) -> str:
    return host or "unknown"


def check(context: ApiContext, address: str, token: str | None, needed: Role) -> Principal:
    """The principal ``token`` stands for, if it may do what needs ``needed``; else the ApiError to answer."""
    wait = context.limiter.retry_after(address)
    if wait is not None:
        raise ApiError(429, "rate_limited", "too many failed authentications from this address; try again later",
                       {"Retry-After": str(max(1, math.ceil(wait)))})
    if not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> (/apitoken in the chat gives one)",
                       {"WWW-Authenticate": "Bearer"})
    principal = context.tokens.authenticate(token) if len(token) <= MAX_TOKEN_CHARS else None
    if principal is None:
        context.limiter.failed(address)
        log.info("api_auth_failed", client=address)  # never the token
        raise ApiError(401, "unauthorized", "the token is not valid (revoked, or its owner may no longer use the "
                                            "agent)", {"WWW-Authenticate": "Bearer"})
    if principal.role < needed:
        raise ApiError(403, "forbidden", "only an admin's token may do this; a viewer's reads")
    return principal


def _principal(needed: Role) -> Callable[..., Awaitable[Principal]]:
    """The dependency that admits ``needed`` (FastAPI reads the inner function's signature)."""

    async def dependency(request: Request, context: Ctx,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        token = credentials.credentials if credentials is not None else None
        return check(context, client_address(request.client.host if request.client else None), token, needed)

    return dependency


Viewer = Annotated[Principal, Depends(_principal(Role.VIEWER))]
Admin = Annotated[Principal, Depends(_principal(Role.ADMIN))]
