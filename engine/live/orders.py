"""The order manager: every live order is committed before it is sent, sent exactly once, then only asked about.

``submit(intent)``
    derives the client order id from the intent; an intent already recorded is returned as it is (never sent
    again). Amount and price are put to the market's precision by ccxt and checked against its minimums (a
    refusal there is REJECTED without a request). The row is committed as SUBMITTING, then ONE create request
    goes out with the client order id: an answer makes it OPEN / PARTIALLY_FILLED / FILLED with its fills and
    fees; a refusal the exchange states makes it REJECTED with the reason; anything else (timeout, dropped
    connection, 5xx, an answer that cannot be read) makes it UNKNOWN. Nothing is ever resent.
``poll()`` / ``resolve(client_id)``
    asks the exchange about every order not final (by exchange id once known, else by client order id). Found:
    its state, fills (order status) and fees (its trades, in any asset). Not found: UNKNOWN until ``grace_s`` has
    passed since it was sent, then NOT_PLACED. A limit order open past its ``expires_at`` is cancelled and its
    final state read. A failed query changes nothing but the attempt count and the last error.
``startup()``
    ``poll()`` after a restart: a SUBMITTING row no request of this process is sending is resolved like UNKNOWN.

Every change is a compare-and-set on the row's state under ``engine.live.types.TRANSITIONS`` (fills only grow),
so a poll racing a submit cannot move an order backwards; each returns an ``OrderUpdate`` with the fill it added.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from engine.core.clock import Clock
from engine.exchange.venue import Market, Venue
from engine.live import answers
from engine.live.ids import client_order_id
from engine.live.types import (
    LIVE_STATES,
    FillDelta,
    LiveOrder,
    OrderChange,
    OrderIntent,
    OrderSettings,
    OrderState,
    OrderType,
    OrderUpdate,
    Submitted,
    sources_of,
)
from engine.store.live_orders import LiveOrders

log = structlog.get_logger(__name__)

FILL_TOLERANCE = 1e-9  # relative: the trades of an order account for its fill


class RuleRefusal(ValueError):
    """An intent the market's rules refuse before anything is sent."""


class OrderManager:
    """Live orders of one exchange (``venue``, markets loaded), recorded in ``store``, timed by ``clock``."""

    def __init__(self, store: LiveOrders, venue: Venue, clock: Clock, settings: OrderSettings | None = None) -> None:
        self.store = store
        self.venue = venue
        self.clock = clock
        self.settings = settings or OrderSettings()
        self._in_flight: set[str] = set()  # client ids whose create request this process is sending

    @property
    def exchange(self) -> Any:
        return self.venue.exchange

    def client_id(self, intent: OrderIntent) -> str:
        return client_order_id(intent, self.settings.namespace)

    # ------------------------------------------------------------------------------ submit

    async def submit(self, intent: OrderIntent) -> Submitted:
        """Record ``intent``'s order and send it once (see the module's docstring)."""
        client_id = self.client_id(intent)
        existing = await self.store.live_order(client_id)
        if existing is not None:
            log.info("live_order.already_submitted", client_id=client_id, state=str(existing.state))
            return Submitted(existing, sent=False)
        market = self.venue.market(intent.symbol)
        now = self.clock.now_ms()
        try:
            amount, price = self._precise(market, intent)
        except RuleRefusal as refusal:
            order, inserted = await self.store.add_live_order(
                intent, client_id, state=OrderState.REJECTED, amount=intent.amount, price=intent.price, sent_at=now,
                expires_at=None, last_error=f"refused before sending: {refusal}")
            log.warning("live_order.refused", client_id=client_id, symbol=intent.symbol, reason=str(refusal))
            return Submitted(order, sent=False, updates=(OrderUpdate(order, None),) if inserted else ())
        order, inserted = await self.store.add_live_order(
            intent, client_id, state=OrderState.SUBMITTING, amount=amount, price=price, sent_at=now,
            expires_at=self._expiry(intent, now))
        if not inserted:  # a concurrent submit of the same intent won
            return Submitted(order, sent=False)
        updates = [OrderUpdate(order, None)]
        self._in_flight.add(client_id)
        try:
            updates += await self._send(market, order)
        finally:
            self._in_flight.discard(client_id)
        latest = updates[-1].order
        log.info("live_order.submitted", client_id=client_id, symbol=order.symbol, side=str(order.side),
                 type=str(order.type), amount=amount, price=price, state=str(latest.state))
        return Submitted(latest, sent=True, updates=tuple(updates))

    def _precise(self, market: Market, intent: OrderIntent) -> tuple[float, float | None]:
        """Amount and price as ccxt will send them; RuleRefusal for what the market cannot take."""
        if not (math.isfinite(intent.amount) and intent.amount > 0):
            raise RuleRefusal(f"amount {intent.amount!r} is not a positive number")
        if intent.type is OrderType.LIMIT and not (intent.price is not None and math.isfinite(intent.price)
                                                   and intent.price > 0):
            raise RuleRefusal("a limit order needs a positive price")
        try:
            amount = float(self.exchange.amount_to_precision(market.symbol, intent.amount))
            price = (float(self.exchange.price_to_precision(market.symbol, intent.price))
                     if intent.type is OrderType.LIMIT and intent.price is not None else None)
        except Exception as exc:  # ccxt's InvalidOrder (under the precision), or a value it cannot format
            raise RuleRefusal(answers.reason(exc)) from None
        rules = market.rules
        if amount <= 0:
            raise RuleRefusal(f"amount {intent.amount:g} is below the amount step {rules.amount_step:g}")
        if rules.min_amount and amount < rules.min_amount:
            raise RuleRefusal(f"amount {amount:g} is below the minimum {rules.min_amount:g} {market.base}")
        if price is not None and rules.min_notional and amount * price < rules.min_notional:
            raise RuleRefusal(f"order value {amount * price:g} {market.quote} is below the minimum "
                              f"{rules.min_notional:g} {market.quote}")
        return amount, price

    def _expiry(self, intent: OrderIntent, now: int) -> int | None:
        timeout = intent.timeout_s if intent.timeout_s is not None else self.settings.limit_timeout_s
        return now + int(timeout * 1000) if intent.type is OrderType.LIMIT and timeout is not None else None

    async def _send(self, market: Market, order: LiveOrder) -> list[OrderUpdate]:
        """The one create request; its answer (or failure) recorded. A cancelled task leaves the row SUBMITTING."""
        try:
            answer = await self.exchange.create_order(market.symbol, str(order.type), str(order.side), order.amount,
                                                      order.price, params={"clientOrderId": order.client_id})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state = OrderState.REJECTED if answers.refused(exc) else OrderState.UNKNOWN
            why = answers.reason(exc)
            log.warning("live_order.send_failed", client_id=order.client_id, state=str(state), error=why)
            return self._one(await self._change(order, OrderChange(state=state, attempts=1, last_error=why)))
        return await self._learn(market, order, answer, attempts=1)

    # ------------------------------------------------------------------------------ poll / resolve

    async def startup(self) -> list[OrderUpdate]:
        """After a (re)start: every order not final asked about, SUBMITTING ones included."""
        orders = await self.store.live_orders(LIVE_STATES)
        log.info("live_orders.startup", open=len(orders),
                 unresolved=sum(1 for o in orders if o.state.unresolved))
        return await self._resolve_all(orders)

    async def poll(self) -> list[OrderUpdate]:
        """Every order not final asked about once (those being sent by this process left alone)."""
        return await self._resolve_all(await self.store.live_orders(LIVE_STATES))

    async def resolve(self, client_id: str) -> list[OrderUpdate]:
        """One order asked about now (nothing for an unknown id, a final order, or one being sent)."""
        order = await self.store.live_order(client_id)
        return [] if order is None or order.state.final else await self._resolve(order)

    async def _resolve_all(self, orders: Sequence[LiveOrder]) -> list[OrderUpdate]:
        updates: list[OrderUpdate] = []
        for order in orders:
            updates += await self._resolve(order)
        return updates

    async def _resolve(self, order: LiveOrder) -> list[OrderUpdate]:
        if order.client_id in self._in_flight:
            return []
        market = self.venue.market(order.symbol)
        try:
            answer = await self._fetch(market, order)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if answers.not_found(exc):
                return self._one(await self._not_found(order))
            state = OrderState.UNKNOWN if order.state is OrderState.SUBMITTING else None
            return self._one(await self._change(order, OrderChange(state=state, attempts=1,
                                                                    last_error=answers.reason(exc))))
        updates = await self._learn(market, order, answer, attempts=1)
        latest = updates[-1].order if updates else await self.store.live_order(order.client_id) or order
        if (latest.state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED) and latest.expires_at is not None
                and self.clock.now_ms() >= latest.expires_at):
            updates += await self._cancel(market, latest, why="limit order timed out")
        return updates

    async def _fetch(self, market: Market, order: LiveOrder) -> Any:
        if order.exchange_id:
            return await self.exchange.fetch_order(order.exchange_id, market.symbol)
        return await self.exchange.fetch_order(None, market.symbol, params={"clientOrderId": order.client_id})

    async def _not_found(self, order: LiveOrder) -> OrderUpdate | None:
        """The exchange has no such order: NOT_PLACED once the grace period has passed, else UNKNOWN for now."""
        if not order.state.unresolved:  # it had answered for this order before: keep it, say so
            log.error("live_order.vanished", client_id=order.client_id, state=str(order.state))
            return await self._change(order, OrderChange(attempts=1, last_error="the exchange no longer finds it"))
        waited_s = (self.clock.now_ms() - order.sent_at) / 1000
        if waited_s >= self.settings.grace_s:
            return await self._change(order, OrderChange(
                state=OrderState.NOT_PLACED, attempts=1,
                last_error=f"the exchange has no order with this client id {waited_s:.0f} s after sending"))
        return await self._change(order, OrderChange(state=OrderState.UNKNOWN, attempts=1,
                                                     last_error="not found yet (within the grace period)"))

    # ------------------------------------------------------------------------------ cancel

    async def cancel(self, client_id: str, why: str = "cancelled") -> list[OrderUpdate]:
        """Cancel an open order and read its final state (nothing for an unknown id or a final order)."""
        order = await self.store.live_order(client_id)
        if order is None or order.state.final:
            return []
        market = self.venue.market(order.symbol)
        if order.state.unresolved:  # know it first: a cancel by client id of an order not made yet means nothing
            updates = await self._resolve(order)
            order = updates[-1].order if updates else order
            if order.state not in (OrderState.OPEN, OrderState.PARTIALLY_FILLED):
                return updates
            return updates + await self._cancel(market, order, why=why)
        return await self._cancel(market, order, why=why)

    async def _cancel(self, market: Market, order: LiveOrder, *, why: str) -> list[OrderUpdate]:
        params = {} if order.exchange_id else {"clientOrderId": order.client_id}
        try:
            await self.exchange.cancel_order(order.exchange_id, market.symbol, params=params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not answers.not_found(exc):  # not open any more (filled meanwhile): its state is read below
                return self._one(await self._change(order, OrderChange(
                    attempts=1, last_error=f"cancel failed ({why}): {answers.reason(exc)}")))
        log.info("live_order.cancel", client_id=order.client_id, why=why)
        try:
            answer = await self._fetch(market, order)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._one(await self._change(order, OrderChange(attempts=2, last_error=answers.reason(exc))))
        return await self._learn(market, order, answer, attempts=2)

    # ------------------------------------------------------------------------------ answers

    async def _learn(self, market: Market, order: LiveOrder, answer: Mapping[str, Any],
                     attempts: int) -> list[OrderUpdate]:
        """Record what an order structure from the exchange says: state, fills, fees (from its trades)."""
        state = answers.state_of(answer)
        filled, average, cost = answers.fills_of(answer)
        exchange_id = str(answer["id"]) if answer.get("id") not in (None, "") else order.exchange_id
        fees: dict[str, float] | None = None
        if filled > 0 and (filled > order.filled or not order.fees):
            trades = answer.get("trades") or []
            if not _accounts_for(trades, filled):
                try:
                    attempts += 1
                    trades = await self._trades(market, exchange_id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # fills without fees are not recorded: the next poll reads both
                    acked = OrderState.OPEN if order.state.unresolved else None
                    return self._one(await self._change(order, OrderChange(
                        state=acked, exchange_id=exchange_id, attempts=attempts,
                        last_error=f"fills not read yet: {answers.reason(exc)}")))
            fees = answers.fees_of(trades)
        change = OrderChange(state=state, exchange_id=exchange_id, filled=filled, average=average, cost=cost,
                             fees=fees, attempts=attempts, last_error="")
        return self._one(await self._change(order, change))

    async def _trades(self, market: Market, exchange_id: str | None) -> list[Mapping[str, Any]]:
        """The trades of one order (ccxt's fetchOrderTrades, else my trades of the market filtered)."""
        if not exchange_id:
            return []
        if self.exchange.has.get("fetchOrderTrades"):
            return list(await self.exchange.fetch_order_trades(exchange_id, market.symbol))
        trades = await self.exchange.fetch_my_trades(market.symbol)
        return [t for t in trades if str(t.get("order")) == exchange_id]

    async def _change(self, order: LiveOrder, change: OrderChange) -> OrderUpdate | None:
        """Apply ``change`` if the row's state may become the new one; the update when state or fills moved."""
        target = change.state or order.state
        done = await self.store.change_live_order(order.client_id, sources_of(target), change)
        if done is None:
            current = await self.store.live_order(order.client_id)
            log.warning("live_order.transition_refused", client_id=order.client_id, to=str(target),
                        current=str(current.state) if current else None)
            return None
        before, after = done
        fill = _delta(before, after)
        if after.state != before.state:
            log.info("live_order.state", client_id=after.client_id, before=str(before.state), after=str(after.state),
                     filled=after.filled, error=after.last_error)
        return OrderUpdate(after, before.state, fill) if after.state != before.state or fill else None

    @staticmethod
    def _one(update: OrderUpdate | None) -> list[OrderUpdate]:
        return [] if update is None else [update]


def _accounts_for(trades: Sequence[Mapping[str, Any]], filled: float) -> bool:
    return bool(trades) and abs(answers.traded_amount(trades) - filled) <= FILL_TOLERANCE * max(filled, 1.0)


def _delta(before: LiveOrder, after: LiveOrder) -> FillDelta | None:
    fees = {asset: after.fees.get(asset, 0.0) - before.fees.get(asset, 0.0)
            for asset in set(after.fees) | set(before.fees)}
    fees = {asset: value for asset, value in fees.items() if value != 0.0}
    amount = after.filled - before.filled
    if amount == 0.0 and not fees:
        return None
    return FillDelta(amount=amount, cost=after.cost - before.cost, fees=fees)
