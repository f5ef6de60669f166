"""Typed snapshots the facade returns to the bot: plain frozen dataclasses, no ORM rows, no Telegram types."""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.types import PositionView, RiskState, SignalRecord, Trade


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    symbol: str
    last_candle_ts: int | None
    last_price: float | None
    stale: bool
    position_qty: float
    synthetic: bool
    price_source: str = ""  # where last_price comes from: "ticker" or "candle" (the last candle's close)
    price_age_ms: int | None = None  # how old last_price is, on the engine clock


@dataclass(frozen=True, slots=True)
class StatusView:
    mode: str  # "paper"
    paused: bool
    risk_state: RiskState  # a StrEnum: compares and prints as its name ("ACTIVE")
    risk_reason: str
    equity: float
    cash: float
    open_positions: int
    started_ms: int
    now_ms: int
    strategy: str
    timeframe: str
    symbols: tuple[SymbolStatus, ...]
    exchange: str = ""  # live: the exchange's name
    books: str = ""  # live: the latest reconciliation in one line ("" before the first)
    mismatches: tuple[str, ...] = ()  # live: what disagrees, one line each (entries of those symbols paused)


@dataclass(frozen=True, slots=True)
class ReconcileView:
    """Live: the latest reconciliation of the books with the exchange (``/reconcile``)."""

    exchange: str
    at_ms: int | None  # None: none yet
    summary: str
    mismatches: tuple[str, ...]
    checks: tuple[tuple[str, float, float, bool], ...]  # asset, books, exchange, agrees
    deferred: tuple[str, ...]
    notes: tuple[str, ...]
    paused: tuple[str, ...]  # symbols whose new entries are paused


@dataclass(frozen=True, slots=True)
class DustView:
    """What a sell left of an asset below the exchange's minimums: held, in equity, not a position."""

    symbol: str
    asset: str  # the base asset ("BTC"); the symbol when the market's assets are not known
    quantity: float
    mark_price: float
    value: float  # quantity * mark, in the quote currency
    quote: str = ""  # the quote asset ("USDT"), "" when not known


@dataclass(frozen=True, slots=True)
class BalanceView:
    mode: str
    cash: float
    equity: float
    exposure: float
    starting_cash: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    total_return: float
    now_ms: int
    dust: tuple[DustView, ...] = ()  # by symbol; empty when there is none
    exchange: str = ""  # live: the exchange's name
    exchange_at: int | None = None  # live: when its balances were read (the latest reconciliation)
    exchange_balances: tuple[tuple[str, float, float], ...] = ()  # live: asset, the books' figure, the exchange's


@dataclass(frozen=True, slots=True)
class TradesPage:
    items: tuple[Trade, ...]
    total: int
    offset: int


@dataclass(frozen=True, slots=True)
class PnlView:
    period: str  # day | week | month | all
    start_ms: int
    end_ms: int
    start_equity: float
    end_equity: float
    pnl: float
    pnl_pct: float
    trades: int
    wins: int
    fees: float


@dataclass(frozen=True, slots=True)
class DayView:
    day: str  # YYYY-MM-DD (UTC)
    end_equity: float
    pnl: float
    pnl_pct: float
    trades: int


class _Results:
    """The figures /performance shows of a group of closed trades (by symbol, by tag), from its fields."""

    __slots__ = ()
    trades: int
    wins: int
    pnl_pct_sum: float

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def avg_pnl_pct(self) -> float | None:
        return self.pnl_pct_sum / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class SymbolPerformance(_Results):
    symbol: str
    trades: int
    wins: int
    pnl: float
    fees: float
    pnl_pct_sum: float  # the sum of each trade's pnl_pct (engine.core.types.trade_pnl_pct), oldest first
    best_pnl_pct: float | None  # the highest pnl_pct; None without trades
    worst_pnl_pct: float | None


UNTAGGED = "(no tag)"


@dataclass(frozen=True, slots=True)
class TagPerformance(_Results):
    """Closed trades grouped by the strategy's tag: ``kind`` "entry" (their enter_tag; UNTAGGED without one) or
    "exit" (their exit_tag; for an exit without one, its reason: signal, stop_loss, take_profit, ...)."""

    kind: str
    tag: str
    trades: int
    wins: int
    pnl: float
    fees: float
    pnl_pct_sum: float
    best_pnl_pct: float | None
    worst_pnl_pct: float | None


@dataclass(frozen=True, slots=True)
class OrderAck:
    order_id: str
    symbol: str
    side: str
    amount: float | None  # quote amount; None = whole position (or sized by quantity)
    paper: bool
    note: str
    quantity: float | None = None  # base quantity, when the order was sized by one


@dataclass(frozen=True, slots=True)
class PendingOrderView:
    """A market order waiting for its symbol's next candle open."""

    order_id: str
    symbol: str
    side: str  # buy | sell
    reason: str  # manual (an operator's: cancellable) | signal (the strategy's)
    decided_ts: int
    quantity: float | None  # exactly one of quantity, notional, fraction sizes it (see OrderRequest)
    notional: float | None
    fraction: float | None
    sent_as: str = ""  # live: the client order id it was sent to the exchange with ("" not sent yet)
    filled: float = 0.0  # live: what the exchange filled of it so far (booked)

    @property
    def cancellable(self) -> bool:
        return self.reason == "manual"


@dataclass(frozen=True, slots=True)
class ProtectiveOrderView:
    """A protective exit attached to an open position: it sells the whole position when the price reaches it."""

    order_id: str  # SYMBOL-stop_loss | SYMBOL-take_profit | SYMBOL-trailing_stop
    symbol: str
    kind: str  # stop_loss | take_profit | trailing_stop
    level: float
    quantity: float
    mark_price: float


@dataclass(frozen=True, slots=True)
class OrdersView:
    pending: tuple[PendingOrderView, ...]
    protective: tuple[ProtectiveOrderView, ...]
    now_ms: int


@dataclass(frozen=True, slots=True)
class SignalView:
    symbol: str
    model: str
    last: SignalRecord | None
    would_trade: bool
    reasons: tuple[str, ...]  # why it would or would not trade now
    position_qty: float
    now_ms: int
    side: str  # what it would do when would_trade: "buy" (enter) or "sell" (exit); "" otherwise


@dataclass(frozen=True, slots=True)
class ModelHealthView:
    name: str
    healthy: bool
    reason: str
    p99_ms: float | None
    psi: float | None


@dataclass(frozen=True, slots=True)
class ModelView:
    symbol: str
    name: str
    metadata: dict[str, object]
    health: tuple[ModelHealthView, ...]


@dataclass(frozen=True, slots=True)
class HealthView:
    ok: bool
    loop_lag_ms: float
    last_candle_age_s: dict[str, float | None]
    stale: tuple[str, ...]
    db_latency_ms: float | None
    outbox_backlog: int | None
    rss_mb: float
    uptime_s: float
    decision_p99_ms: float | None
    models: tuple[ModelHealthView, ...]


@dataclass(frozen=True, slots=True)
class PriceChartData:
    symbol: str
    synthetic: bool
    ts: tuple[int, ...]
    close: tuple[float, ...]
    trades: tuple[Trade, ...]
    open_entry: tuple[int, float] | None


@dataclass(frozen=True, slots=True)
class EquityChartData:
    ts: tuple[int, ...]
    equity: tuple[float, ...]
    drawdown: tuple[float, ...]


__all__ = [
    "BalanceView", "DayView", "DustView", "EquityChartData", "HealthView", "ModelHealthView", "ModelView", "OrderAck",
    "PnlView", "PositionView", "PriceChartData", "SignalView", "StatusView", "SymbolPerformance",
    "SymbolStatus", "TradesPage",
]
