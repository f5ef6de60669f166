"""A live order's states and allowed transitions, what the engine asks for (``OrderIntent``), what is known about
an order (``LiveOrder``, a snapshot of its row) and what changed (``OrderUpdate``, with the fill it added).

States::

    SUBMITTING ──► OPEN ──► PARTIALLY_FILLED ──► FILLED
        │  │         │            │   ▲
        │  │         └────────────┴───┴────► CANCELED   (by us on a timeout, by a person, or expired)
        │  └──► REJECTED                                 (the exchange said no; nothing was made)
        └─────► UNKNOWN ──► any of the above            (found by its client order id)
                   └──────► NOT_PLACED                   (not found, and the grace period has passed)

SUBMITTING is committed before the request goes out; a SUBMITTING row that no request of this process is sending
(after a crash) is UNKNOWN in all but name. FILLED, CANCELED, REJECTED and NOT_PLACED are final.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from engine.core.types import Side


class OrderState(enum.StrEnum):
    SUBMITTING = "SUBMITTING"  # committed, being sent (or the process died while sending)
    OPEN = "OPEN"  # acknowledged by the exchange, nothing filled yet
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"  # may have filled in part before (``filled`` says how much)
    REJECTED = "REJECTED"  # refused by the exchange (or before sending, by its rules); nothing made
    UNKNOWN = "UNKNOWN"  # sent, no answer we can trust: asked about by client order id until known
    NOT_PLACED = "NOT_PLACED"  # the exchange says it has no such order, after the grace period

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def unresolved(self) -> bool:
        """Sent (maybe), but not known to the exchange's answer yet."""
        return self in (OrderState.SUBMITTING, OrderState.UNKNOWN)


FINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.NOT_PLACED})
LIVE_STATES = tuple(s for s in OrderState if s not in FINAL_STATES)  # polled until final
_KNOWN = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELED})

TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.SUBMITTING: _KNOWN | {OrderState.REJECTED, OrderState.UNKNOWN, OrderState.NOT_PLACED},
    OrderState.UNKNOWN: _KNOWN | {OrderState.REJECTED, OrderState.NOT_PLACED},
    OrderState.OPEN: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELED}),
    OrderState.PARTIALLY_FILLED: frozenset({OrderState.FILLED, OrderState.CANCELED}),
    OrderState.FILLED: frozenset(),
    OrderState.CANCELED: frozenset(),
    OrderState.REJECTED: frozenset(),
    OrderState.NOT_PLACED: frozenset(),
}


def may_become(before: OrderState, after: OrderState) -> bool:
    """Whether an order in ``before`` may move to ``after`` (staying put is always allowed)."""
    return before == after or after in TRANSITIONS[before]


def sources_of(after: OrderState) -> frozenset[OrderState]:
    """The states from which ``after`` may be reached (itself included)."""
    return frozenset(s for s in OrderState if may_become(s, after))


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the engine wants: one order for one decision. The client order id is derived from ``symbol``,
    ``side``, ``decided_ts``, ``reason`` and ``seq`` (not from the amount: the same decision recomputed after a
    restart is the same order). ``seq`` numbers deliberate new attempts of one decision (after NOT_PLACED or
    REJECTED); ``timeout_s`` (limit orders) overrides the manager's limit timeout."""

    symbol: str  # as the engine writes it; the venue resolves it to the exchange's market
    side: Side
    type: OrderType
    amount: float  # base units
    decided_ts: int  # the decision candle's open time (or the command's time), ms
    reason: str  # "signal", "manual", "stop", ...
    price: float | None = None  # limit orders
    seq: int = 0
    intent_id: str | None = None  # the engine's own order id (engine.core.types.OrderRequest.order_id)
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """A live order as recorded (a snapshot of its ``live_orders`` row). Times are ms; ``sent_at`` by the
    manager's clock, ``created_at``/``updated_at`` by the wall clock; ``fees`` maps asset -> amount."""

    client_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float
    price: float | None
    decided_ts: int
    reason: str
    seq: int
    intent_id: str | None
    state: OrderState
    exchange_id: str | None
    filled: float
    average: float | None
    cost: float  # quote amount of the filled part
    fees: dict[str, float]
    sent_at: int
    expires_at: int | None  # a limit order still open then is cancelled
    attempts: int  # requests made to the exchange about it (send, queries, cancels)
    last_error: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class FillDelta:
    """What an update added to an order's fills: base ``amount``, quote ``cost`` and ``fees`` per asset."""

    amount: float
    cost: float
    fees: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order changed (state or fills): ``previous`` is None for a new order. The live loop turns ``fill``
    into positions."""

    order: LiveOrder
    previous: OrderState | None
    fill: FillDelta | None = None

    @property
    def state(self) -> OrderState:
        return self.order.state


@dataclass(frozen=True, slots=True)
class Submitted:
    """The outcome of ``OrderManager.submit``: the order as it is now, whether a request was sent (False when
    the intent had already been submitted, or was refused before sending), and the updates it made."""

    order: LiveOrder
    sent: bool
    updates: tuple[OrderUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderSettings:
    """How the manager treats orders. ``grace_s``: how long after sending an order the exchange says it does not
    know may still appear (it must exceed the request timeout and the exchange's receive window: Binance refuses
    a request older than ``recvWindow``, 5 s by default); only then is it NOT_PLACED. ``limit_timeout_s``: a limit
    order still open this long after it was sent is cancelled (None: never). ``namespace`` is hashed into the
    client order ids (two agents on one account give it different values)."""

    grace_s: float = 30.0
    limit_timeout_s: float | None = 300.0
    namespace: str = ""

    def __post_init__(self) -> None:
        if not self.grace_s >= 0:
            raise ValueError(f"grace_s must be >= 0, not {self.grace_s!r}")
        if self.limit_timeout_s is not None and not self.limit_timeout_s > 0:
            raise ValueError(f"limit_timeout_s must be > 0 or None, not {self.limit_timeout_s!r}")


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What one step of the manager learnt about an order; None leaves a field as it is. Fills only grow (a
    smaller ``filled`` than recorded is ignored, with its ``cost``, ``average`` and ``fees``)."""

    state: OrderState | None = None
    exchange_id: str | None = None
    filled: float | None = None
    average: float | None = None
    cost: float | None = None
    fees: dict[str, float] | None = None
    attempts: int = 0  # requests made to the exchange in this step (added to the count)
    last_error: str | None = None  # None keeps the last one; "" clears it
