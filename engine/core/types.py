"""Plain value types shared by the decision path, the feeds, the store and the bot.

Everything here is a frozen dataclass or an enum (but ``StepResult``, filled in by a step): no I/O, no ORM, no
Telegram.
Times are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from engine.core.events import EngineEvent, ProtectiveExitHit

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

DAY_MS = 86_400_000


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds in one candle of ``timeframe`` (``"5m"`` -> 300000)."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAME_MS)}") from None


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle; ``ts`` is the candle's open time."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def problem(self) -> str | None:
        """Why this candle is malformed, or None when it is sound (prev-candle checks live in the feed)."""
        values = (self.open, self.high, self.low, self.close, self.volume)
        if not all(math.isfinite(v) for v in values):
            return "non-finite value"
        if min(self.open, self.high, self.low, self.close) <= 0:
            return "non-positive price"
        if self.high < max(self.open, self.close):
            return "high below open/close"
        if self.low > min(self.open, self.close):
            return "low above open/close"
        if self.volume < 0:
            return "negative volume"
        return None


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Action(enum.IntEnum):
    """What the model asks for on one candle (long only)."""

    EXIT = -1
    HOLD = 0
    ENTER = 1


class RiskState(enum.StrEnum):
    """ACTIVE: all orders. REDUCING: only orders that reduce exposure (daily loss hit; resets next UTC day).
    HALTED: only orders that reduce exposure, until an operator resumes (max drawdown hit)."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class OrderStatus(enum.StrEnum):
    """An order's state in the store: accepted and waiting for its fill, filled, withdrawn, or refused."""

    PENDING = "pending"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REFUSED = "refused"


class ExitReason(enum.StrEnum):
    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    MANUAL = "manual"
    END_OF_DATA = "end_of_data"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A risk or broker refusal: a value with a reason, never an exception."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A market order the decision path or an operator wants; it fills at the next candle's open.


    Exactly one of ``quantity`` (base units), ``notional`` (quote amount) or ``fraction`` (of equity
    at fill time) sizes it; sells are capped at what is held. ``order_id`` is deterministic
    (symbol, decision candle, reason), which makes it the idempotency key across restarts.
    """

    order_id: str
    symbol: str
    side: Side
    reason: str  # "signal", "manual", ...
    decided_ts: int  # candle open time (or clock time for manual orders) of the decision
    quantity: float | None = None
    notional: float | None = None
    fraction: float | None = None
    tag: str | None = None  # the strategy's enter_tag / exit_tag for the signal that made it (None: none given)


@dataclass(frozen=True, slots=True)
class SizedOrder:
    """A pending order sized to send to the exchange (``TradingCore.size``): ``quantity`` in base units, on the
    market's amount step, and ``price``, what a paper fill at that moment would pay (slippage in, on the tick)."""

    order: OrderRequest
    quantity: float
    price: float


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """A protective exit a price triggered (``TradingCore.check_exits``), to send as a market sell of ``quantity``
    (the order's own): all the amount step allows of the position; ``level`` is the stop, trailing stop or target
    it crossed; ``price`` the kernel's expected fill (the triggering price less slippage, on the tick); ``event``
    announces it."""

    order: OrderRequest
    quantity: float
    level: float
    price: float
    event: ProtectiveExitHit


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: int  # time of the fill (the candle's open time for market orders)
    reason: str


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip (entry fill(s) to exit fill)."""

    symbol: str
    side: str  # "long"
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    quantity: float
    fee: float  # entry and exit fee together
    pnl: float  # net of both fees
    exit_reason: str
    pnl_pct: float  # trade_pnl_pct: the one PnL percentage of a trade (a fraction), shown everywhere
    entry_tag: str | None = None  # the strategy's enter_tag of the signal that opened it (None: untagged)
    exit_tag: str | None = None  # the strategy's exit_tag of the signal that closed it (None: untagged or a stop)


def trade_pnl_pct(pnl: float, entry_price: float, quantity: float, entry_fee: float) -> float:
    """The PnL percentage of a round trip, defined once: its PnL net of both fees over its entry cost
    (entry notional plus entry fee), as a fraction (-0.008 is -0.80 %). 0.0 for a trade that cost nothing."""
    cost = entry_price * quantity + entry_fee
    return pnl / cost if cost > 0 else 0.0


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    quantity: float
    avg_price: float
    entry_ts: int
    mark_price: float
    unrealized_pnl: float
    stop_price: float | None
    target_price: float | None
    trail_price: float | None


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """What the decision path concluded on one candle, and why (for /signal and the signals table)."""

    symbol: str
    ts: int  # candle open time
    action: int  # Action value
    confidence: float
    outcome: str  # "order", "hold", "filtered: ...", "refused: ...", "nothing to do: ..."


@dataclass(slots=True)
class StepResult:
    """What one call of the trading core did (a candle, a fill): filled in as it goes, hence not frozen."""

    symbol: str
    candle_ts: int
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)
    orders: list[OrderRequest] = field(default_factory=list)
    signal: SignalRecord | None = None
    equity: float = 0.0


@dataclass(frozen=True, slots=True)
class StepRecord:
    """Everything one step of the engine changed, persisted by the store in ONE transaction.

    ``candle_ts`` is set for a decision on a candle (unique per symbol: the idempotency key) and None
    for an operator action (pause, resume, risk change, manual order) that changed state.
    ``positions`` is the complete set of open positions after the step; ``core_state`` is the
    JSON-able snapshot the engine restores itself from after a restart.
    """

    symbol: str | None
    candle_ts: int | None
    now_ms: int
    orders: tuple[OrderRequest, ...]
    fills: tuple[Fill, ...]
    trades: tuple[Trade, ...]
    events: tuple[EngineEvent, ...]
    signal: SignalRecord | None
    equity: float
    cash: float
    positions: tuple[PositionView, ...]
    core_state: dict[str, object]
