"""The paper broker: the ``engine.ports.Broker`` adapter over the decision core.

Orders are queued in the kernel's state arrays and filled by the kernel at the symbol's next candle
open, exactly as the backtest fills them, under the exchange's rules for the symbol (``MarketRules``:
amount step, price tick, minimums, dust); so the paper broker is a thin face over ``TradingCore``.
"""

from __future__ import annotations

from engine.core.trading import TradingCore
from engine.core.types import OrderRequest, Refusal


class PaperBroker:
    def __init__(self, core: TradingCore) -> None:
        self._core = core

    def submit(self, order: OrderRequest) -> Refusal | None:
        return self._core.submit_manual(order)

    def cancel(self, order_id: str) -> OrderRequest | Refusal:
        return self._core.cancel_manual(order_id)

    def fetch_order(self, order_id: str) -> OrderRequest | None:
        """The order while it is open here; None once it filled, was cancelled, or was never placed (the store
        keeps its final status and its fill)."""
        return next((o for o in self.open_orders() if o.order_id == order_id), None)

    def open_orders(self) -> tuple[OrderRequest, ...]:
        return tuple(sorted((o for orders in self._core.pending.values() for o in orders),
                            key=lambda o: (o.decided_ts, o.order_id)))

    def balances(self) -> dict[str, float]:
        """Cash and what is held of each symbol: its position, or its dust (what a sell left below the exchange's
        minimums; a position includes the dust it was opened on)."""
        pf = self._core.portfolio
        held = {symbol: p.quantity for symbol, p in pf.positions.items()}
        held.update({symbol: d.quantity for symbol, d in pf.dust.items()})
        return {"cash": pf.cash, **dict(sorted(held.items()))}
