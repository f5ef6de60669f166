"""What the live trader keeps and is built from: its saved state (the orders sent and what of them is booked, the
day's notional, the paused symbols), the fat-finger guards, the parts the engine hands it, and the live ``Broker``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from engine.core.broker import PaperBroker
from engine.core.trading import TradingCore
from engine.core.types import OrderRequest, Refusal
from engine.exchange.venue import Venue
from engine.live.orders import OrderManager


@dataclass(frozen=True, slots=True)
class Guards:
    """The fat-finger guards (``[live]``): quote notional per order and per UTC day, on buys. Exits are never
    refused by them: a stop must be able to sell what the agent holds."""

    max_order_notional: float
    max_daily_notional: float


@dataclass(slots=True)
class SentOrder:
    """An order the books committed to send, and what of its fills they have booked."""

    client_id: str
    symbol: str
    side: str
    reason: str
    booked: float = 0.0  # base amount filled on the exchange that the books have booked
    cost: float = 0.0  # quote cost of that amount
    fees: dict[str, float] = field(default_factory=dict)
    parts: int = 0  # fills booked (a partly filled order books each part as it comes)


@dataclass(slots=True)
class TraderState:
    """What the trader keeps in the engine's saved state (``state["live"]``), committed with the books."""

    sent: dict[str, SentOrder] = field(default_factory=dict)  # by the engine's order id
    day: str = ""  # the UTC day of ``day_notional``
    day_notional: float = 0.0  # quote value of the buys sent that day
    paused: dict[str, str] = field(default_factory=dict)  # symbol -> why new entries are paused (reconciliation)
    announced: bool = False  # the first live start was announced (with the account's balances and the limits)

    def to_dict(self) -> dict[str, Any]:
        return {"sent": {k: asdict(v) for k, v in self.sent.items()}, "day": self.day,
                "day_notional": self.day_notional, "paused": dict(self.paused), "announced": self.announced}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TraderState:
        if not data:
            return cls()
        sent = {str(k): SentOrder(**{**v, "fees": {str(a): float(x) for a, x in (v.get("fees") or {}).items()}})
                for k, v in (data.get("sent") or {}).items()}
        return cls(sent=sent, day=str(data.get("day") or ""), day_notional=float(data.get("day_notional") or 0.0),
                   paused={str(k): str(v) for k, v in (data.get("paused") or {}).items()},
                   announced=bool(data.get("announced")))


@dataclass(frozen=True, slots=True)
class LiveParts:
    """What ``LiveEngine`` needs to trade live: the order manager, the exchange, the guards, and how often the
    orders not final are asked about (seconds)."""

    manager: OrderManager
    venue: Venue
    guards: Guards
    poll_interval: float = 1.0
    reconcile_interval: float = 300.0
    entry_deadline: int = 3  # candles (``[live] entry_deadline``)


class Sends(Protocol):
    """What of ``engine.live.trader.LiveTrader`` the broker uses: the orders it sent."""

    state: TraderState


class LiveBroker(PaperBroker):
    """The ``engine.ports.Broker`` of live trading: the paper broker's face over the core (an operator's order is
    queued in the core's pending slot; the engine wakes the trader to send it once it is committed), except that
    an order already sent cannot be withdrawn here (a market order fills on arrival; its fills are booked as the
    exchange reports them)."""

    def __init__(self, core: TradingCore, trader: Sends) -> None:
        super().__init__(core)
        self._trader = trader

    def cancel(self, order_id: str) -> OrderRequest | Refusal:
        sent = self._trader.state.sent.get(order_id)
        if sent is not None:
            return Refusal("sent", f"{order_id} was sent to the exchange as {sent.client_id}; a market order cannot "
                                   "be withdrawn once sent (its fills are booked as they come)")
        return super().cancel(order_id)
