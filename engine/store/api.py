"""The HTTP API's records (``api_tokens``, ``api_idempotency``; migration 0005): the tokens issued in the chat, kept
as their sha256 only, and the first answer to each action sent under an ``Idempotency-Key``.

An action is *claimed* before it runs: the row is inserted with no answer (``ON CONFLICT DO NOTHING`` on the
caller and key), so two requests with the same key, at once or a restart apart, never both act; the answer is
written when the action is done, and a claim whose action failed before changing anything is released.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from engine.store.sessions import Repository, insert_for, stamped
from engine.store.tables import ApiIdempotencyRow, ApiTokenRow, now_ms


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """An active token: its sha256 (hex), role ("admin" or "viewer") and owner ("telegram:<user id>")."""

    token_hash: str
    role: str
    owner: str
    created_at: int


@dataclass(frozen=True, slots=True)
class IdempotentAnswer:
    """What an earlier request under the same key left: its body's hash, and its answer (None: still running, or
    the worker stopped while it ran)."""

    request_hash: str
    status_code: int | None
    response: dict[str, Any] | None


class ApiRecords(Repository):
    """Tokens and idempotency keys of the HTTP API."""

    async def add_api_token(self, token_hash: str, role: str, owner: str) -> None:
        """Store a new token of ``owner``; the owner's earlier tokens are revoked in the same transaction (one
        personal token each)."""
        now = now_ms()
        async with self._sessions.begin() as session:
            await session.execute(update(ApiTokenRow).where(ApiTokenRow.owner == owner,
                                                            ApiTokenRow.revoked_at.is_(None)).values(revoked_at=now))
            session.add(ApiTokenRow(token_hash=token_hash, role=role, owner=owner, created_at=now))

    async def revoke_api_tokens(self, owner: str) -> int:
        """Revoke every active token of ``owner``; how many were."""
        async with self._sessions.begin() as session:
            result = await session.execute(update(ApiTokenRow).where(
                ApiTokenRow.owner == owner, ApiTokenRow.revoked_at.is_(None)).values(revoked_at=now_ms()))
            return int(getattr(result, "rowcount", 0) or 0)

    async def active_api_tokens(self) -> list[ApiTokenRecord]:
        rows = await self._scalars(select(ApiTokenRow).where(ApiTokenRow.revoked_at.is_(None)).order_by(ApiTokenRow.id))
        return [ApiTokenRecord(r.token_hash, r.role, r.owner, r.created_at) for r in rows]

    async def claim_idempotency_key(self, owner: str, key: str, request_hash: str) -> IdempotentAnswer | None:
        """Claim ``key`` for ``owner``'s request: None when it is ours now (the action may run), else what the
        earlier request under it left."""
        async with self._sessions.begin() as session:
            values = stamped({"owner": owner, "key": key, "request_hash": request_hash, "status_code": None,
                              "response": None})
            statement = insert_for(session)(ApiIdempotencyRow).values(values)
            result = await session.execute(statement.on_conflict_do_nothing(index_elements=["owner", "key"]))
            if getattr(result, "rowcount", 0):
                return None
            row = await session.scalar(select(ApiIdempotencyRow).where(ApiIdempotencyRow.owner == owner,
                                                                       ApiIdempotencyRow.key == key))
            assert row is not None
            return IdempotentAnswer(row.request_hash, row.status_code, row.response)

    async def answer_idempotency_key(self, owner: str, key: str, status_code: int, response: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(ApiIdempotencyRow).where(
                ApiIdempotencyRow.owner == owner, ApiIdempotencyRow.key == key).values(
                status_code=status_code, response=response, updated_at=now_ms()))

    async def release_idempotency_key(self, owner: str, key: str) -> None:
        """Forget a claim whose action failed before it changed anything (the same key may be sent again)."""
        async with self._sessions.begin() as session:
            await session.execute(delete(ApiIdempotencyRow).where(
                ApiIdempotencyRow.owner == owner, ApiIdempotencyRow.key == key,
                ApiIdempotencyRow.status_code.is_(None)))

    async def purge_idempotency_keys(self, before_ms: int) -> int:
        """Forget the keys used before ``before_ms``; how many."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(ApiIdempotencyRow).where(ApiIdempotencyRow.created_at < before_ms))
            return int(getattr(result, "rowcount", 0) or 0)
