"""Typed engine events: frozen dataclasses the decision core returns as values (no I/O, no bus).

The shell (``engine.loop``) publishes them on ``engine.events.EventBus`` and the store writes them to
its outbox in the same transaction as the change they describe. ``to_payload`` /
``event_from_payload`` are the outbox codec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """Base of all events. ``kind`` is the alert type name a chat can switch on, silent or off."""

    kind: ClassVar[str] = "event"
    ts: int  # ms UTC, from the engine's clock (candle time in a backtest)


@dataclass(frozen=True, slots=True)
class OrderFilled(EngineEvent):
    kind: ClassVar[str] = "order_filled"
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    reason: str
    paper: bool = True
    source: str = ""  # what decided a "signal" fill: the strategy or model name ("" in older outbox rows)


@dataclass(frozen=True, slots=True)
class OrderCancelled(EngineEvent):
    """A pending order was withdrawn before it filled: by an operator (``/cancel``), or by the exchange's rules
    (``by`` "exchange rules": its fill would have been below a minimum; ``reason`` says which, with the
    numbers). The store marks it cancelled."""

    kind: ClassVar[str] = "order_cancelled"
    order_id: str
    symbol: str
    side: str
    by: str
    paper: bool = True
    reason: str = ""  # why, when not an operator's choice ("" in older outbox rows)


@dataclass(frozen=True, slots=True)
class PositionOpened(EngineEvent):
    kind: ClassVar[str] = "position_opened"
    symbol: str
    quantity: float
    price: float
    stop_price: float | None
    target_price: float | None
    paper: bool = True


@dataclass(frozen=True, slots=True)
class PositionClosed(EngineEvent):
    kind: ClassVar[str] = "position_closed"
    symbol: str
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float
    reason: str
    paper: bool = True
    pnl_pct: float | None = None  # the trade's engine.core.types.trade_pnl_pct (None in older outbox rows)
    source: str = ""  # what decided a "signal" exit ("" in older outbox rows)


@dataclass(frozen=True, slots=True)
class ProtectiveExitHit(EngineEvent):
    """A stop-loss, take-profit or trailing stop was touched within a candle."""

    kind: ClassVar[str] = "stop_hit"
    symbol: str
    trigger: str  # "stop_loss" | "take_profit" | "trailing_stop"
    level: float
    fill_price: float


@dataclass(frozen=True, slots=True)
class RiskStateChanged(EngineEvent):
    kind: ClassVar[str] = "risk_state"
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class TradingPaused(EngineEvent):
    kind: ClassVar[str] = "paused"
    paused: bool
    by: str


@dataclass(frozen=True, slots=True)
class FeedStale(EngineEvent):
    kind: ClassVar[str] = "feed"
    symbol: str
    last_candle_ts: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class FeedRecovered(EngineEvent):
    kind: ClassVar[str] = "feed"
    symbol: str
    last_candle_ts: int


@dataclass(frozen=True, slots=True)
class ModelDegraded(EngineEvent):
    kind: ClassVar[str] = "model"
    model: str
    reason: str


@dataclass(frozen=True, slots=True)
class ModelRecovered(EngineEvent):
    kind: ClassVar[str] = "model"
    model: str


@dataclass(frozen=True, slots=True)
class DailySummary(EngineEvent):
    kind: ClassVar[str] = "daily_summary"
    day: str  # YYYY-MM-DD
    equity: float
    pnl: float
    pnl_pct: float
    trades: int
    fees: float


@dataclass(frozen=True, slots=True)
class EngineStarted(EngineEvent):
    kind: ClassVar[str] = "lifecycle"
    mode: str
    unclean_restart: bool = False


@dataclass(frozen=True, slots=True)
class EngineStopped(EngineEvent):
    kind: ClassVar[str] = "lifecycle"
    mode: str


@dataclass(frozen=True, slots=True)
class StrategySwitched(EngineEvent):
    """The strategy in charge changed at run time (``Commands.swap_strategy``); ``positions``: the open positions
    it keeps (symbols, comma-separated; "" when flat)."""

    kind: ClassVar[str] = "strategy"
    old: str
    new: str
    by: str
    positions: str = ""


@dataclass(frozen=True, slots=True)
class BooksMismatch(EngineEvent):
    """Live: the agent's books and the exchange disagree (``lines``: one per asset or order, naming both amounts);
    new entries of ``symbols`` are paused until the books agree again or an admin accepts the exchange's figures."""

    kind: ClassVar[str] = "reconcile"
    exchange: str
    lines: tuple[str, ...]
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BooksAgree(EngineEvent):
    """Live: the books agree with the exchange again (``how``: reconciled, or the exchange's figures accepted by
    ``by``); the paused entries resume."""

    kind: ClassVar[str] = "reconcile"
    exchange: str
    how: str
    by: str = ""


@dataclass(frozen=True, slots=True)
class LiveStarted(EngineEvent):
    """The first start of live trading on this agent's books: real orders from now on. ``balances``: the account's
    balances of the traded assets (one "ASSET amount" each); ``limits``: the guards and risk limits, in words."""

    kind: ClassVar[str] = "lifecycle"
    exchange: str
    balances: tuple[str, ...]
    limits: str


EVENT_TYPES: dict[str, type[EngineEvent]] = {
    cls.__name__: cls
    for cls in (
        OrderFilled,
        OrderCancelled,
        PositionOpened,
        PositionClosed,
        ProtectiveExitHit,
        RiskStateChanged,
        TradingPaused,
        FeedStale,
        FeedRecovered,
        ModelDegraded,
        ModelRecovered,
        DailySummary,
        EngineStarted,
        EngineStopped,
        StrategySwitched,
        BooksMismatch,
        BooksAgree,
        LiveStarted,
    )
}

ALERT_KINDS: tuple[str, ...] = tuple(sorted({cls.kind for cls in EVENT_TYPES.values()}))


def to_payload(event: EngineEvent) -> dict[str, Any]:
    """Event -> JSON-able dict with its type name under ``"type"``."""
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def event_from_payload(payload: dict[str, Any]) -> EngineEvent:
    data = dict(payload)
    cls = EVENT_TYPES[data.pop("type")]
    for name in ("lines", "symbols", "balances"):  # tuples come back from JSON as lists
        if isinstance(data.get(name), list):
            data[name] = tuple(data[name])
    return cls(**data)
