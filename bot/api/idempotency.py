"""Every action needs an ``Idempotency-Key`` header: the first request under a key acts, every later one with the
same key (and the same body) gets the first one's answer again, whether it comes at once, concurrently, or after a
restart; the key is the caller's (two callers may use the same key). The same key with another body is 422.

The key is claimed in the database before the action runs (``engine.store.api``), so nothing acts twice. An action
that raised (the engine rolls its change back) releases its claim, and the key may be sent again. A claim left by a
worker that stopped mid-action has no answer: it is 409, and the caller looks at the state (``GET orders``)
before acting again under a new key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from bot.api.errors import ApiError, body
from bot.api.tokens import Principal
from engine.store.api import IdempotentAnswer

MAX_KEY_CHARS = 128
KEEP_MS = 7 * 86_400_000  # keys are remembered a week (``ApiServer`` forgets older ones at start)
REPLAYED = "Idempotent-Replayed"

Answer = tuple[int, dict[str, Any]]


class IdempotencyRecords(Protocol):
    """Where claims and answers are kept (``engine.store.Store``)."""

    async def claim_idempotency_key(self, owner: str, key: str, request_hash: str) -> IdempotentAnswer | None: ...

    async def answer_idempotency_key(self, owner: str, key: str, status_code: int,
                                     response: dict[str, Any]) -> None: ...

    async def release_idempotency_key(self, owner: str, key: str) -> None: ...

    async def purge_idempotency_keys(self, before_ms: int) -> int: ...


def idempotency_key(key: Annotated[str | None, Header(alias="Idempotency-Key", description=(
        "Any unique string (e.g. a UUID) per intended action, at most 128 printable characters: a retry with "
        "the same key and body never acts twice and returns the first answer"))] = None) -> str:
    if key is None or not key.strip():
        raise ApiError(400, "bad_request", "an action needs an Idempotency-Key header (e.g. a new UUID per action)")
    if len(key) > MAX_KEY_CHARS or not key.isprintable() or not key.isascii():
        raise ApiError(400, "bad_request", f"Idempotency-Key must be at most {MAX_KEY_CHARS} printable ASCII "
                                           "characters")
    return key


def request_hash(request: Request, payload: Any) -> str:
    """What makes two requests the same: method, path and the parsed body."""
    text = json.dumps([request.method, request.url.path, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def once(records: IdempotencyRecords, principal: Principal, key: str, fingerprint: str,
               action: Callable[[], Awaitable[Answer]]) -> JSONResponse:
    """Run ``action`` unless ``key`` was used by this caller before; its answer (or the first one) as JSON."""
    earlier = await records.claim_idempotency_key(principal.owner, key, fingerprint)
    if earlier is not None:
        if earlier.request_hash != fingerprint:
            raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request; "
                                                          "use a new key for a new action")
        if earlier.status_code is None or earlier.response is None:
            raise ApiError(409, "idempotency_key_in_use", "a request with this Idempotency-Key has not finished (or "
                                                          "the agent stopped while it ran); check GET orders before "
                                                          "acting again with a new key")
        return JSONResponse(earlier.response, status_code=earlier.status_code, headers={REPLAYED: "true"})
    try:
        status, answer = await action()
    except ApiError as exc:
        status, answer = exc.status, body(exc.code, exc.detail)
    except Exception:  # the engine rolled its change back: the key may be sent again (a cancellation keeps it)
        await records.release_idempotency_key(principal.owner, key)
        raise
    await records.answer_idempotency_key(principal.owner, key, status, answer)
    return JSONResponse(answer, status_code=status)
