"""``TradingCore``'s external fills (live trading): the exchange fills the orders the kernel decides, and every ticker
price is checked against the position's exits; the kernel's sizing, accounting and exit rules do the work
(``engine.core.kernel_live``). ``TradingCore(..., fills="exchange")`` turns them on; the order of calls is in
``engine.core.trading``'s docstring.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from engine.core import kernel as K
from engine.core.codes import REASON_CODES, REASONS
from engine.core.events import EngineEvent, ProtectiveExitHit
from engine.core.kernel_live import NO_EXIT, SENT, book_fill, exit_order
from engine.core.outcomes import Sizing, rule_words
from engine.core.rules import MarketRules
from engine.core.types import ExitOrder, OrderRequest, Refusal, Side, SizedOrder, StepResult


class _Core(Protocol):
    """What of ``TradingCore`` its external fills use: the kernel's arrays, the pending orders, the result buffers."""

    g: np.ndarray
    s: np.ndarray
    p: np.ndarray
    index: dict[str, int]
    _orders: dict[str, OrderRequest]
    _head: np.ndarray
    _fills: np.ndarray

    def rules_for(self, symbol: str) -> MarketRules: ...

    def _state_changes(self, ts: int) -> list[tuple[int, EngineEvent]]: ...

    def _emit_fill(self, symbol: str, ts: int, row: np.ndarray, pending: OrderRequest | None, res: StepResult,
                   order_id: str | None = None) -> None: ...

    def _free(self, symbol: str) -> None: ...

    def _pending_row(self, order: OrderRequest) -> int | Refusal: ...


class ExchangeFills:
    """The calls of a ``TradingCore`` whose orders the exchange fills: a mixin of it, its methods work on its state."""

    def size(self: _Core, order: OrderRequest, price: float) -> SizedOrder | Refusal:
        """The quantity to send ``order`` (its symbol's pending order) with, at the market's ``price`` now: the
        kernel's sizing of a paper fill at that open (``kernel.fill_size``: risk limits, cash, slippage, the amount
        step and price tick), so live sends what paper would fill. From then on the order is that quantity: its
        fills count down from it and free the slot when they reach it (asked again: the rest). A refusal (a minimum
        broken, nothing to buy or sell): send nothing and call ``order_done``."""
        i = self._pending_row(order)
        if isinstance(i, Refusal):
            return i
        row = self.s[i]
        s = self.s.copy()
        s[i, K.MARK] = price  # as a paper fill marks the symbol at the open first
        if row[K.P_KIND] >= SENT:
            fill = K.fill_size(self.g, s, self.p, i, row[K.P_SIDE], K.BY_QUANTITY, row[K.P_AMOUNT], price)[2]
            return SizedOrder(order, float(row[K.P_AMOUNT]), float(fill))
        if row[K.P_SIDE] == K.SELL and row[K.QTY] <= 0.0:
            return Refusal("no_position", f"no {order.symbol} position to sell")
        kind, amount = float(row[K.P_KIND]), float(row[K.P_AMOUNT])
        raw, qty, fill = K.fill_size(self.g, s, self.p, i, row[K.P_SIDE], kind, amount, price)
        rule = int(K.rule_break(s, i, raw, qty, fill))
        if rule != K.RULE_OK:
            size = Sizing(self.rules_for(order.symbol), kind, amount, float(qty if qty > 0.0 else raw), float(fill),
                          rule)
            return Refusal("below_minimum", rule_words(order.symbol, size))
        if qty <= 0.0:
            return Refusal("nothing_to_fill", f"nothing to buy: no cash within the risk limits for {order.symbol}")
        row[K.P_KIND], row[K.P_AMOUNT] = SENT, qty
        return SizedOrder(order, float(qty), float(fill))

    def _pending_row(self: _Core, order: OrderRequest) -> int | Refusal:
        pending = self._orders.get(order.symbol)
        if pending is None or pending.order_id != order.order_id:
            return Refusal("not_pending", f"no pending order {order.order_id}")
        return self.index[order.symbol]

    def apply_fill(self: _Core, symbol: str, order_id: str, side: Side, quantity: float, price: float, fee: float,
                   ts: int, reason: str) -> StepResult | Refusal:
        """Book a fill the exchange reported, partial or whole, through the kernel's accounting of paper fills
        (``kernel_live.book_fill``): fills, trades and events as ``on_candle`` gives them. A fill of the pending order
        counts against what ``size`` sent it with (partial fills add up to one position at their average price,
        its stop and target from that average); the last frees the slot (an order never sized stays pending until
        ``order_done``). A fill of another order (a late one of an order already done) is booked all the same: the
        exchange moved the money.

        ``fee`` is in the quote currency. A fee charged in another asset is the caller's to convert or track: one in
        the base asset is booked as ``quantity`` net of it with ``fee`` its value at ``price`` (cash and holdings
        then match the exchange's); one in a third asset (BNB) at that asset's price. Bad numbers, an unknown
        symbol or reason, or a sell with nothing held: a ``Refusal``, and nothing changes."""
        i = self.index.get(symbol)
        bad = _bad_fill(quantity, price, fee, reason)
        if i is None or bad is not None:
            return Refusal("bad_fill", bad or f"{symbol} is not traded by this agent")
        if side is Side.SELL and self.s[i, K.QTY] <= 0.0:
            return Refusal("no_position", f"a sell of {quantity} {symbol} with no {symbol} position held")
        pending = self._orders.get(symbol)
        ours = pending is not None and pending.order_id == order_id and pending.side is side
        head, fills = self._head, self._fills
        book_fill(self.g, self.s, self.p, i, K.BUY if side is Side.BUY else K.SELL, float(quantity), float(price),
                    float(fee), float(ts), REASON_CODES[reason], ours, head, fills)
        res = StepResult(symbol, ts, equity=float(head[K.H_EQUITY]))
        res.events.extend(event for _, event in self._state_changes(ts))
        if head[K.H_PENDING_DONE]:
            del self._orders[symbol]
        self._emit_fill(symbol, ts, fills[0], pending if ours else None, res, order_id)
        return res

    def order_done(self: _Core, symbol: str, order_id: str) -> OrderRequest | None:
        """The exchange is done with ``order_id`` (cancelled, rejected, not placed, refused by ``size``, or filled):
        ``symbol``'s pending slot is freed, the fills booked stand. None when it is not the pending order (already
        freed: done twice is harmless)."""
        order = self._orders.get(symbol)
        if order is None or order.order_id != order_id:
            return None
        self._free(symbol)
        return order

    def check_exits(self: _Core, symbol: str, price: float, ts: int) -> ExitOrder | None:
        """``symbol``'s stop, trailing stop and target against one market price (``kernel_live.exit_order``: the levels
        and rules of the candle check, with the high-water mark following the prices): the exit to send, queued in
        the pending slot and sized as the kernel's would be, or None (nothing triggered, no position, an order
        already pending, or a position too small to sell)."""
        if not (math.isfinite(price) and price > 0.0):
            raise ValueError(f"a price must be a positive number, not {price!r}")
        i = self.index.get(symbol)
        if i is None:
            return None
        reason, level, qty, fill = exit_order(self.g, self.s, self.p, i, float(price), float(ts))
        if reason == NO_EXIT:
            return None
        why = REASONS[int(reason)]
        order = OrderRequest(f"{symbol}-{ts}-{why}", symbol, Side.SELL, why, ts, quantity=float(qty))
        self._orders[symbol] = order
        return ExitOrder(order, float(qty), float(level), float(fill),
                         ProtectiveExitHit(ts=ts, symbol=symbol, trigger=why, level=float(level),
                                           fill_price=float(fill)))


def _bad_fill(quantity: float, price: float, fee: float, reason: str) -> str | None:
    """What is wrong with a reported fill's numbers or reason, or None."""
    if not (math.isfinite(quantity) and quantity > 0.0 and math.isfinite(price) and price > 0.0):
        return f"a fill needs a positive quantity and price, not {quantity!r} at {price!r}"
    if not (math.isfinite(fee) and fee >= 0.0):
        return f"a fill's fee must be a number >= 0, not {fee!r}"
    if reason not in REASON_CODES:
        return f"unknown fill reason {reason!r} (one of {', '.join(REASON_CODES)})"
    return None
