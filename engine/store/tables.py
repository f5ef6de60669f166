"""ORM tables. Rows never leave ``engine.store``: the repository maps them to plain dataclasses.

All times are integer milliseconds since the Unix epoch, UTC (``BigInteger``), like the rest of
the engine; ``created_at`` / ``updated_at`` are filled from the wall clock by Python-side defaults.
Money and quantities are ``Double`` (the engine works in floats). Migration 0001 creates exactly
these tables: keep the two in step.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
IdType = BigInteger().with_variant(Integer(), "sqlite")


def now_ms() -> int:
    return int(time.time() * 1000)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigInteger(),
        float: Double(),
        str: String(64),
        bool: Boolean(),
    }


class Timestamped:
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms, onupdate=now_ms)


class OrderRow(Timestamped, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'filled', 'cancelled', 'refused')", name="status"),
        Index("ix_orders_symbol_decided_ts", "symbol", "decided_ts"),
        Index("ix_orders_status", "status"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(128), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str]
    decided_ts: Mapped[int]
    quantity: Mapped[float | None]
    notional: Mapped[float | None]
    fraction: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")


class FillRow(Timestamped, Base):
    __tablename__ = "fills"
    __table_args__ = (Index("ix_fills_symbol_ts", "symbol", "ts"), Index("ix_fills_ts", "ts"))

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(128), ForeignKey("orders.order_id"), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float]
    price: Mapped[float]
    fee: Mapped[float]
    ts: Mapped[int]
    reason: Mapped[str]


class TradeRow(Timestamped, Base):
    __tablename__ = "trades"
    __table_args__ = (
        Index("ix_trades_symbol_exit_time", "symbol", "exit_time"),
        Index("ix_trades_exit_time", "exit_time"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    entry_time: Mapped[int]
    exit_time: Mapped[int]
    entry_price: Mapped[float]
    exit_price: Mapped[float]
    quantity: Mapped[float]
    fee: Mapped[float]
    pnl: Mapped[float]
    exit_reason: Mapped[str]
    # engine.core.types.trade_pnl_pct; added by migration 0002, hence after the timestamps and with its default
    pnl_pct: Mapped[float] = mapped_column(server_default=text("0"), sort_order=100)
    # the strategy's tags (engine.core.types.Trade); added by migration 0004
    entry_tag: Mapped[str | None] = mapped_column(String(64), sort_order=101)
    exit_tag: Mapped[str | None] = mapped_column(String(64), sort_order=102)


class PositionRow(Timestamped, Base):
    __tablename__ = "positions"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[float]
    avg_price: Mapped[float]
    entry_ts: Mapped[int]
    mark_price: Mapped[float]
    unrealized_pnl: Mapped[float]
    stop_price: Mapped[float | None]
    target_price: Mapped[float | None]
    trail_price: Mapped[float | None]


class CashLedgerRow(Base):
    __tablename__ = "cash_ledger"
    __table_args__ = (
        CheckConstraint("kind IN ('fill', 'fee', 'deposit')", name="kind"),
        Index("ix_cash_ledger_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    ts: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float]  # signed change of cash, fee included
    fee: Mapped[float] = mapped_column(default=0.0)  # the fee part of ``amount`` (>= 0), for audits
    order_id: Mapped[str | None] = mapped_column(String(128))
    balance_after: Mapped[float]
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class EquitySnapshotRow(Base):
    __tablename__ = "equity_snapshots"
    __table_args__ = (Index("ix_equity_snapshots_ts", "ts"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    ts: Mapped[int]
    equity: Mapped[float]
    cash: Mapped[float]
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class SignalRow(Base):
    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_symbol_ts", "symbol", "ts"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    ts: Mapped[int]
    action: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float]
    outcome: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class DecisionRow(Base):
    """One row per processed candle and symbol: the guard that makes a step idempotent."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("symbol", "candle_ts"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    candle_ts: Mapped[int]
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class EngineStateRow(Timestamped, Base):
    """Exactly one row (id = 1)."""

    __tablename__ = "engine_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    paused: Mapped[bool] = mapped_column(default=False)
    risk_state: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    halted_reason: Mapped[str | None] = mapped_column(Text)
    core_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_heartbeat: Mapped[int | None]
    clean_shutdown: Mapped[bool] = mapped_column(default=True)


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_kind", "kind"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    event_type: Mapped[str]
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    ts: Mapped[int]
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class ChatRow(Base):
    __tablename__ = "chats"
    __table_args__ = (Index("ix_chats_active", "active"),)

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    thread_id: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    role: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms, onupdate=now_ms)


class AlertSettingRow(Timestamped, Base):
    __tablename__ = "alert_settings"
    __table_args__ = (
        UniqueConstraint("chat_id", "kind"),
        CheckConstraint("mode IN ('on', 'silent', 'off')", name="mode"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.chat_id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))


class DeliveryRow(Timestamped, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_id", "chat_id"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_deliveries_status_chat_id", "status", "chat_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("outbox.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.chat_id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[int | None]
    message_id: Mapped[int | None]


LIVE_ORDER_STATES = ("SUBMITTING", "OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "UNKNOWN",
                     "NOT_PLACED")  # engine.live.types.OrderState; migration 0003 checks the same list


class LiveOrderRow(Timestamped, Base):
    """An order sent (or about to be sent) to the exchange, committed before the request goes out (migration
    0003). ``client_id`` is derived from the intent (engine.live.ids), so one intent is one row; ``fees`` maps
    asset -> amount; ``sent_at`` and ``expires_at`` are by the order manager's clock."""

    __tablename__ = "live_orders"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in LIVE_ORDER_STATES) + ")", name="state"),
        CheckConstraint("type IN ('market', 'limit')", name="type"),
        Index("ix_live_orders_state", "state"),
        Index("ix_live_orders_symbol_decided_ts", "symbol", "decided_ts"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(36), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(8))
    amount: Mapped[float]
    price: Mapped[float | None]
    decided_ts: Mapped[int]
    reason: Mapped[str]
    seq: Mapped[int] = mapped_column(Integer, default=0)
    intent_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    exchange_id: Mapped[str | None] = mapped_column(String(64))
    filled: Mapped[float] = mapped_column(default=0.0)
    average: Mapped[float | None]
    cost: Mapped[float] = mapped_column(default=0.0)
    fees: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent_at: Mapped[int]
    expires_at: Mapped[int | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


API_ROLES = ("admin", "viewer")  # bot.api's roles; migration 0005 checks the same list


class ApiTokenRow(Base):
    """A token of the HTTP API issued in the chat (``/apitoken``, migration 0005): only its sha256 is kept; the
    token itself was shown once. ``owner`` is who it belongs to ("telegram:<user id>"); a revoked token keeps its
    row, with ``revoked_at`` set."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in API_ROLES) + ")", name="role"),
        Index("ix_api_tokens_owner", "owner"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str]
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    revoked_at: Mapped[int | None]


class ApiIdempotencyRow(Timestamped, Base):
    """The first answer to an HTTP API action under one ``Idempotency-Key`` of one caller (migration 0005): claimed
    (``status_code`` NULL) before the action runs, so the same key never acts twice, then its answer."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    owner: Mapped[str]
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str]
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
