"""The HTTP API's bearer tokens: deny by default, a role per token, kept hashed, compared in constant time.

Two sources: ``API_TOKENS`` (``role:token,...``, for scripts and other tools) and ``/apitoken`` in the chat, which
gives an admin or a viewer a personal token, shown once. A chat-issued token is stored as its sha256 only
(``engine.store.api``); a new one replaces the owner's earlier one and ``/apitoken revoke`` ends it. It acts with
its owner's role of today (TELEGRAM_ADMIN_IDS / TELEGRAM_VIEWER_IDS), never more than when it was issued: a person
removed from the lists loses the API with the chat.

Why sha256 and not bcrypt: bcrypt and its like slow down guessing a *low-entropy* secret (a password) from a
stolen hash. These tokens are 256 random bits, which no guessing reaches, so a fast hash loses nothing, and a
slow one would cost every request tens of milliseconds. Every known hash is compared with ``hmac.compare_digest``
(no early exit), so the time of a check says nothing about which one matched. A token is never logged: the chat's
are registered with the log redaction when issued (``engine.logs.register_secret``), ``API_TOKENS``' at start
(``config.worker.secrets_of``), and the API logs no header, no query string and no body.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

import structlog

from bot.handlers.commands import Role
from config.settings import ApiSettings
from engine.logs import register_secret
from engine.store.api import ApiTokenRecord

log = structlog.get_logger("bot.api.tokens")

TOKEN_PREFIX = "tak_"  # trading-agent key: recognisable in a config file or a secret scanner
ROLES = {"admin": Role.ADMIN, "viewer": Role.VIEWER}


class TokenRecords(Protocol):
    """Where chat-issued tokens are kept (``engine.store.Store``)."""

    async def add_api_token(self, token_hash: str, role: str, owner: str) -> None: ...

    async def revoke_api_tokens(self, owner: str) -> int: ...

    async def active_api_tokens(self) -> list[ApiTokenRecord]: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: ``owner`` ("telegram:<user id>" or "env:<hash prefix>"), and the role it acts with."""

    owner: str
    role: Role


@dataclass(frozen=True, slots=True)
class _Known:
    digest: bytes
    role: Role
    owner: str


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_token() -> str:
    """256 random bits, URL-safe, with a recognisable prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenBook:
    """The tokens in force, in memory (loaded once at start; changed by ``issue`` and ``revoke``, which write the
    database first): checking a token costs no query."""

    def __init__(self, records: TokenRecords, settings: ApiSettings) -> None:
        self._records = records
        self._settings = settings
        self._env = [_Known(digest(t.get_secret_value()), ROLES[role], f"env:{digest(t.get_secret_value()).hex()[:12]}")
                     for role, t in settings.token_roles()]
        self._chat: list[_Known] = []
        self.loaded = False

    async def load(self) -> None:
        """Read the active chat-issued tokens from the database."""
        rows = await self._records.active_api_tokens()
        self._chat = [_Known(bytes.fromhex(r.token_hash), ROLES[r.role], r.owner) for r in rows]
        self.loaded = True
        log.info("api_tokens_loaded", from_chat=len(self._chat), from_env=len(self._env))

    def role_now(self, user_id: int) -> Role:
        """A chat user's role under today's settings."""
        if user_id in self._settings.admin_ids:
            return Role.ADMIN
        if user_id in self._settings.viewer_ids:
            return Role.VIEWER
        return Role.STRANGER

    async def issue(self, user_id: int, role: Role) -> str:
        """A new personal token for ``user_id`` acting as ``role`` (at most); replaces their earlier one. The token
        is returned once and never stored."""
        if role < Role.VIEWER:
            raise ValueError("only admins and viewers get an API token")
        token = new_token()
        register_secret(token)  # the reply that shows it must not reach a log line, even at DEBUG
        owner = f"telegram:{user_id}"
        name = "admin" if role is Role.ADMIN else "viewer"
        await self._records.add_api_token(digest(token).hex(), name, owner)
        self._chat = [k for k in self._chat if k.owner != owner] + [_Known(digest(token), role, owner)]
        log.info("api_token_issued", owner=owner, role=name)
        return token

    async def revoke(self, user_id: int) -> int:
        """End ``user_id``'s tokens; how many there were."""
        owner = f"telegram:{user_id}"
        count = await self._records.revoke_api_tokens(owner)
        self._chat = [k for k in self._chat if k.owner != owner]
        log.info("api_token_revoked", owner=owner, count=count)
        return count

    def authenticate(self, token: str) -> Principal | None:
        """Who ``token`` belongs to and the role it acts with now, or None (unknown, revoked, or its owner is no
        longer an admin or viewer)."""
        wanted = digest(token)
        found: _Known | None = None
        for known in (*self._env, *self._chat):  # every one compared: the time does not say which matched
            if hmac.compare_digest(known.digest, wanted):
                found = known
        if found is None:
            return None
        role = found.role
        if found.owner.startswith("telegram:"):
            role = min(role, self.role_now(int(found.owner.removeprefix("telegram:"))))
        return Principal(found.owner, role) if role >= Role.VIEWER else None
