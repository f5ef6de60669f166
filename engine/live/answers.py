"""What ccxt's answers and errors mean for a live order.

An error from a create request is one of two kinds, and the difference is whether an order may exist:

* **refused** (``refused``): the exchange answered that it will not make the order (ccxt's ``InvalidOrder``,
  ``InsufficientFunds``, ``BadRequest``, ``AuthenticationError``, ``OperationRejected``, ``NotSupported``,
  ``ArgumentsRequired``; Binance's -1013 filter failures, -2010, -1022, -2015 ...): REJECTED, nothing to ask;
* **anything else** (a timeout, a dropped connection, a 5xx, a rate limit, an answer ccxt cannot parse, an
  error it does not classify): the order may or may not exist: UNKNOWN, resolved by asking for it by its client
  order id. "Duplicate order sent" is in this group: an order with that client id exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from engine.exchange.client import describe
from engine.exchange.loader import async_support
from engine.live.types import OrderState

_STATUS = {"closed": OrderState.FILLED, "canceled": OrderState.CANCELED, "cancelled": OrderState.CANCELED,
           "expired": OrderState.CANCELED, "rejected": OrderState.REJECTED}


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` from a create request is the exchange's refusal (no order was made)."""
    ccxt = async_support()
    if isinstance(exc, ccxt.DuplicateOrderId) or "duplicate order" in str(exc).lower():
        return False
    return isinstance(exc, ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.BadRequest | ccxt.AuthenticationError
                      | ccxt.OperationRejected | ccxt.NotSupported | ccxt.ArgumentsRequired)


def reason(exc: BaseException) -> str:
    """One line for a failed request: ``describe`` (no hosts, queries or keys), with an exchange's JSON error body
    (``binance {"code": -2010, "msg": "New order rejected."}``) read as ``binance -2010 New order rejected.``."""
    text = describe(exc)
    head, brace, body = text.partition("{")
    try:
        error = json.loads(brace + body) if brace else None
    except ValueError:
        return text
    if not isinstance(error, dict) or not isinstance(error.get("msg"), str):
        return text
    code = f"{error['code']} " if error.get("code") is not None else ""
    return f"{head}{code}{error['msg']}"[:300]


def not_found(exc: BaseException) -> bool:
    """Whether ``exc`` is the exchange saying it has no such order (ccxt's ``OrderNotFound``)."""
    return isinstance(exc, async_support().OrderNotFound)


def number(value: Any) -> float | None:
    """A finite float of ``value``, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def state_of(order: Mapping[str, Any]) -> OrderState:
    """The state of a ccxt order structure: open (or an acknowledgement without a status) is OPEN, or
    PARTIALLY_FILLED once something filled; closed is FILLED; canceled and expired are CANCELED."""
    status = str(order.get("status") or "open").lower()
    if status in _STATUS:
        return _STATUS[status]
    return OrderState.PARTIALLY_FILLED if (number(order.get("filled")) or 0.0) > 0 else OrderState.OPEN


def fills_of(order: Mapping[str, Any]) -> tuple[float, float | None, float]:
    """``(filled, average price, cost)`` of a ccxt order structure (what is missing derived from the rest)."""
    filled = number(order.get("filled")) or 0.0
    cost = number(order.get("cost"))
    average = number(order.get("average"))
    if average is None and cost is not None and filled > 0:
        average = cost / filled
    if cost is None:
        cost = filled * average if average is not None else 0.0
    return filled, average if filled > 0 else None, cost


def trade_fees(trade: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The fee entries of one ccxt trade (``fees`` when it lists them, else its one ``fee``)."""
    fees = trade.get("fees")
    if isinstance(fees, list) and fees:
        return [f for f in fees if isinstance(f, Mapping)]
    fee = trade.get("fee")
    return [fee] if isinstance(fee, Mapping) else []


def fees_of(trades: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The fees of ``trades`` summed per asset (any asset: the one received, BNB, ...)."""
    total: dict[str, float] = {}
    for trade in trades:
        for fee in trade_fees(trade):
            cost, currency = number(fee.get("cost")), fee.get("currency")
            if cost and currency:
                total[str(currency)] = total.get(str(currency), 0.0) + cost
    return total


def traded_amount(trades: Iterable[Mapping[str, Any]]) -> float:
    return sum(number(t.get("amount")) or 0.0 for t in trades)
