"""The engine's state row: the core's snapshot (written with every step) and the process-level flags beside it
(clean shutdown, heartbeat, paused, risk state, halt reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.sessions import Repository
from engine.store.tables import EngineStateRow

STATE_ID = 1


@dataclass(frozen=True, slots=True)
class Flags:
    """Process-level state the engine keeps outside its core-state blob."""

    clean_shutdown: bool
    last_heartbeat_ms: int | None
    paused: bool
    risk_state: str
    halted_reason: str | None


class EngineState(Repository):
    """The snapshot and the flags."""

    async def load_core_state(self) -> dict[str, Any] | None:
        async with self._sessions.begin() as session:
            state = await session.get(EngineStateRow, STATE_ID)
            return None if state is None or state.core_state is None else dict(state.core_state)

    async def set_flags(
        self,
        *,
        clean_shutdown: bool | None = None,
        heartbeat_ms: int | None = None,
        paused: bool | None = None,
        risk_state: str | None = None,
    ) -> None:
        """Update the given flags only."""
        async with self._sessions.begin() as session:
            state = await engine_state(session)
            if clean_shutdown is not None:
                state.clean_shutdown = clean_shutdown
            if heartbeat_ms is not None:
                state.last_heartbeat = heartbeat_ms
            if paused is not None:
                state.paused = paused
            if risk_state is not None:
                state.risk_state = risk_state

    async def get_flags(self) -> Flags:
        async with self._sessions.begin() as session:
            state = await engine_state(session)
            return Flags(
                clean_shutdown=state.clean_shutdown,
                last_heartbeat_ms=state.last_heartbeat,
                paused=state.paused,
                risk_state=state.risk_state,
                halted_reason=state.halted_reason,
            )


async def engine_state(session: AsyncSession) -> EngineStateRow:
    state = await session.get(EngineStateRow, STATE_ID)
    if state is None:
        state = EngineStateRow(id=STATE_ID, paused=False, risk_state="ACTIVE", clean_shutdown=True)
        session.add(state)
    return state


async def write_core_state(session: AsyncSession, core_state: dict[str, object]) -> None:
    """Store the blob; mirror its "paused" / "risk_state" / "halted_reason" keys when present.

    One UPDATE of the single row; the ORM path (read, then write) only when the row does not exist yet."""
    values: dict[str, object] = {"core_state": dict(core_state)}
    if isinstance(core_state.get("paused"), bool):
        values["paused"] = core_state["paused"]
    if isinstance(core_state.get("risk_state"), str):
        values["risk_state"] = core_state["risk_state"]
    if "halted_reason" in core_state:
        reason = core_state["halted_reason"]
        values["halted_reason"] = reason if isinstance(reason, str) else None
    result = await session.execute(update(EngineStateRow).where(EngineStateRow.id == STATE_ID).values(values)
                                   .execution_options(synchronize_session=False))
    if cast(CursorResult[Any], result).rowcount == 1:
        return
    state = await engine_state(session)
    for column, value in values.items():
        setattr(state, column, value)
