"""Ports: the interfaces the engine is written against, as ``typing.Protocol``s.

Each has today's implementation beside it (structural typing: nothing subclasses these), and mypy
checks each adapter where the composition root (``engine.app``) hands it to the engine:

============  ==========================================================  =================================
port          what the engine needs                                        adapters today
============  ==========================================================  =================================
MarketData    closed candles after a time, the latest price, the market's    ExchangeFeed, ReplayFeed,
              exchange rules, close                                        SyntheticFeed (engine/feeds)
Broker        submit, cancel, fetch order, open orders, balances          PaperBroker (engine/core/broker)
Store         the engine's unit of work: one step in one transaction,      engine.store.repo.Store
              the state to restore, flags, health, an order's status
Records       what the read side shows: trades, equity, chats, alerts       engine.store.repo.Store
Clock         the one source of time                                       LiveClock, OffsetClock,
                                                                            ScaledClock, SimClock
Strategy      what decides a symbol's signals: a name and a lookback       SmaCrossModel, ModelCoordinator,
              (the live loop and the backtest use a model's face today;    NoModel (engine/core/model);
              user strategies are built, not yet wired)                    engine.strategy.Strategy
============  ==========================================================  =================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from engine.core.clock import Clock
from engine.core.events import EngineEvent
from engine.core.rules import MarketRules
from engine.core.types import OrderRequest, PositionView, Refusal, SignalRecord, StepRecord, Trade
from engine.feeds.base import FeedBatch, Tick
from engine.results import ClosedTrades

__all__ = ["Broker", "Clock", "HasHealth", "HealthReport", "MarketData", "Records", "ReportsEvents", "Store",
           "Strategy"]


class MarketData(Protocol):
    """Closed candles and the latest price of one symbol (see ``engine.feeds.base``)."""

    symbol: str
    timeframe: str
    synthetic: bool  # the seeded synthetic market, so its prices can be labelled as such

    async def poll(self, after_ts: int | None) -> FeedBatch:
        """CLOSED candles with ts > after_ts, oldest first, validated; the last ``history`` when None."""
        ...

    async def ticker(self) -> Tick:
        """The latest price; ``FeedError`` when there is none or it cannot be fetched."""
        ...

    def rules(self) -> MarketRules | None:
        """The exchange's rules for this market once known (None: no exchange, or its markets not read yet)."""
        ...

    async def close(self) -> None:
        ...


class Broker(Protocol):
    """Where orders go. Paper: queued in the core, filled by the kernel at the next candle's open."""

    def submit(self, order: OrderRequest) -> Refusal | None:
        """Accept ``order`` (None) or refuse it (a value, never an exception)."""
        ...

    def cancel(self, order_id: str) -> OrderRequest | Refusal:
        """Withdraw an order that has not filled: the order withdrawn, or why not."""
        ...

    def fetch_order(self, order_id: str) -> OrderRequest | None:
        """The order ``order_id`` while it is open at the broker; None once it is final or unknown there."""
        ...

    def open_orders(self) -> tuple[OrderRequest, ...]:
        """Orders accepted and not yet filled or cancelled."""
        ...

    def balances(self) -> dict[str, float]:
        """Free quote cash under ``"cash"`` and the quantity held of each symbol."""
        ...


class Store(Protocol):
    """The engine's unit of work: a step (or an operator action) and everything it changed, in ONE transaction."""

    async def record_step(self, rec: StepRecord) -> bool:
        ...

    async def load_core_state(self) -> dict[str, Any] | None:
        ...

    async def set_flags(self, *, heartbeat_ms: int | None = None) -> None:
        ...

    async def ping(self) -> float:
        """Round trip to the database, seconds."""
        ...

    async def outbox_backlog(self) -> int:
        ...

    async def order_status(self, order_id: str) -> str | None:
        ...


class Records(Protocol):
    """What the read side (the facade) shows and the chat settings it keeps."""

    async def trades(self, limit: int, offset: int = 0, symbol: str | None = None) -> list[Trade]: ...

    async def trade_count(self, symbol: str | None = None) -> int: ...

    async def trades_between(self, start_ms: int, end_ms: int) -> list[Trade]: ...

    async def closed_trades(self) -> ClosedTrades: ...

    async def equity_series(self, since_ms: int | None = None) -> list[tuple[int, float]]: ...

    async def first_equity_ts(self) -> int | None: ...

    async def equity_before(self, ts_ms: int, *, inclusive: bool = False) -> float | None: ...

    async def positions(self) -> list[PositionView]: ...

    async def signals(self, symbol: str | None, limit: int) -> list[SignalRecord]: ...

    async def upsert_chat(self, chat_id: int, thread_id: int | None = None) -> None: ...

    async def set_chat_active(self, chat_id: int, active: bool) -> bool: ...

    async def set_alert_mode(self, chat_id: int, kind: str, mode: str) -> None: ...

    async def alert_modes(self, chat_id: int) -> dict[str, str]: ...

    async def pending_deliveries(self, limit: int = 100, *, kind: str | None = None) -> Sequence[Any]: ...

    async def mark_delivered(self, outbox_id: int, chat_id: int, message_id: int | None) -> bool: ...

    async def mark_failed(self, outbox_id: int, chat_id: int, error: str, final: bool) -> bool: ...


class Strategy(Protocol):
    """What decides a symbol's signals. The loop and the backtest run a ``engine.core.model.GenericTradingModel``
    today; ``engine.strategy.Strategy`` (populate_* over a DataFrame, loaded by name, file or module) satisfies
    this too and is wired in by the strategies issue."""

    name: str
    lookback: int  # candles the newest signal depends on

    def metadata(self) -> dict[str, Any]:
        ...


@runtime_checkable
class ReportsEvents(Protocol):
    """A strategy that reports its own events (a model degraded or recovered), collected before each decision."""

    def pop_events(self) -> list[EngineEvent]:
        ...


class HealthReport(Protocol):
    """One member's health (``engine.models.coordinator.ModelHealth``)."""

    @property
    def name(self) -> str: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def p99_ms(self) -> float: ...

    @property
    def psi(self) -> float | None: ...


@runtime_checkable
class HasHealth(Protocol):
    """A strategy that reports the health of its members."""

    def health(self) -> Sequence[HealthReport]:
        ...
