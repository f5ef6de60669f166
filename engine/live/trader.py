"""The live trader: the core's orders sent to the exchange, and what the exchange fills booked into the core.

``TradingCore(fills="exchange")`` decides as in paper and queues each order in its symbol's pending slot; this
part takes it from there (``engine.core.trading``'s docstring has the order of calls):

1. **Send** (``send_pending``), under the engine lock: ``core.size`` at the market's price now (the kernel's paper
   sizing), the fat-finger guards of ``[live]`` on a buy, then the order is written into the books' ``sent`` table
   (its client order id, nothing booked yet) and that state committed. Then, outside the lock, ``OrderManager.submit``
   commits the order row as SUBMITTING and sends it once.
2. **Book** (``book``), under the lock: what the exchange says an order filled (its ``live_orders`` row) minus what
   the books booked of it (``sent``) is booked with ``core.apply_fill``, and the ``sent`` entry moved on, in ONE
   commit of the engine's state. So after a crash the books hold exactly the fills they committed, and the next
   ``book`` of the order adds the rest: nothing is booked twice or lost, whatever moment the process died at.
3. **Done**: an order final on the exchange frees its slot (``core.order_done``); one that filled nothing is
   announced as cancelled with the exchange's reason.

A restart resumes from the saved ``sent`` table: an order the books had committed to send but whose row never was
written was never sent (the row is committed before the request): it is dropped, not sent late. Every other order
is asked about (``OrderManager.startup``) and booked.

Fees: in the quote they are the fill's fee; in the base asset the quantity is booked net of them (so the books hold
what the exchange holds) with their value at the fill's price as the fee; in a third asset (BNB) they are not
charged to the books' cash (the exchange did not take quote for them) and are kept on the order's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from engine.core.clock import Clock
from engine.core.events import EngineEvent, OrderCancelled
from engine.core.trading import StepResult, TradingCore
from engine.core.types import OrderRequest, Refusal, Side
from engine.exchange.venue import Venue
from engine.live.books import Reconciling
from engine.live.orders import OrderManager
from engine.live.parts import Guards, SentOrder, TraderState
from engine.live.reconcile import Reconciler, Reconciliation
from engine.live.types import LiveOrder, OrderIntent, OrderType

log = structlog.get_logger(__name__)

BY_GUARD = "live guard"  # who withdrew an order the fat-finger guards refused (``OrderCancelled.by``)
BY_EXCHANGE = "exchange"  # the exchange refused, cancelled or never placed it
BY_RECONCILE = "reconciliation"  # entries paused by a mismatch of the books and the exchange
BY_STALE = "live: not sent late"  # an entry decided on a candle long closed (a catch-up after a restart)
EPS = 1e-12
STALE_CANDLES = 3  # by default a signal's entry is sent only within this many candles of its candle's close
RECONCILE_RETRY_S = 30.0  # a reconciliation that could not be made is tried again this soon

Commit = Callable[[StepResult | None, tuple[EngineEvent, ...], tuple[OrderRequest, ...]], Awaitable[None]]


class LiveTrader(Reconciling):
    """Sends ``core``'s pending orders through ``manager`` and books their fills; see the module's docstring.

    ``lock`` is the engine's lock (a step, a command and a booking never interleave); ``commit`` persists a step
    result (fills, trades, events) and the engine's state, which includes ``state``, under the held lock;
    ``price(symbol)`` is the market's price now (None before any)."""

    def __init__(self, *, core: TradingCore, manager: OrderManager, venue: Venue, lock: asyncio.Lock,
                 commit: Commit, clock: Clock, price: Callable[[str], float | None], guards: Guards,
                 symbols: tuple[str, ...] = (), timeframe_ms: int = 0, entry_deadline: int = STALE_CANDLES,
                 reconciler: Reconciler | None = None) -> None:
        self.core = core
        self.entry_deadline = entry_deadline  # candles after its candle's close a signal's entry may still be sent
        self.timeframe_ms = timeframe_ms  # the candles' length (0: no staleness check of entries)
        self.symbols = symbols  # the traded symbols (the core has a row for each once its first candle came)
        self.manager = manager
        self.reconciler = reconciler or Reconciler(venue, manager.store, clock)
        self.last: Reconciliation | None = None  # the latest reconciliation (for /status and /reconcile)
        self._announced: tuple[str, ...] = ()  # the mismatch lines announced last (a changed set is announced)
        self.venue = venue
        self.lock = lock
        self.commit = commit
        self.clock = clock
        self.price = price
        self.guards = guards
        self.state = TraderState()
        self._sending: set[str] = set()  # orders between their commit in ``sent`` and the submit's answer
        self._submits: set[asyncio.Task[bool]] = set()  # submits running in tasks of their own (``spawn``)
        self.wake = asyncio.Event()  # set when an order may be waiting to be sent (a decision, a command)

    # ------------------------------------------------------------------------------ state

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        self.state = TraderState.from_dict(saved)

    def snapshot(self) -> dict[str, Any]:
        return self.state.to_dict()

    def unsent(self) -> list[OrderRequest]:
        """The core's pending orders not sent yet (oldest decision first)."""
        orders = [o for o in self.core._orders.values() if o.order_id not in self.state.sent]
        return sorted(orders, key=lambda o: (o.decided_ts, o.order_id))

    # ------------------------------------------------------------------------------ send

    async def send_pending(self) -> int:
        """Send every pending order not sent yet; how many went out."""
        sent = 0
        for order in self.unsent():
            if await self.send(order.order_id):
                sent += 1
        return sent

    async def send(self, order_id: str) -> bool:
        """Size, check and send the pending order ``order_id`` (see the module's docstring); False when it was
        refused or is not pending any more. (A candle's decision is prepared in its step's commit and ``spawn``ed.)"""
        async with self.lock:
            order = next((o for o in self.core._orders.values() if o.order_id == order_id), None)
            if order is None or order_id in self.state.sent:
                return False
            before = self.core.snapshot()
            saved = self.state.to_dict()
            intent, events = self.prepare_locked(order)
            try:
                await self.commit(None, events, ())
            except Exception:
                self.core.restore(before)
                self.state = TraderState.from_dict(saved)
                self._sending.discard(order_id)
                raise
        if intent is None:
            return False
        return await self.submit(order_id, intent)

    def prepare_locked(self, order: OrderRequest) -> tuple[OrderIntent | None, tuple[EngineEvent, ...]]:
        """Under the held lock: size and check the pending ``order`` and record it in ``sent`` (the caller commits
        the engine's state, and sends the intent with ``submit`` once it is committed): the intent and no event, or
        None and the ``OrderCancelled`` of its refusal (its slot freed). The intent's order is marked as being sent
        (the order poll leaves it alone until ``submit`` has its answer)."""
        ready = self._prepare(order)
        if isinstance(ready, Refusal):
            self.core.order_done(order.symbol, order.order_id)
            by = BY_RECONCILE if ready.code == "reconcile_paused" else BY_STALE if ready.code == "stale" else BY_GUARD
            log.warning("live_order.refused", order_id=order.order_id, symbol=order.symbol, reason=ready.reason)
            return None, (self._cancelled(order, by, ready.reason),)
        self._sending.add(order.order_id)
        return ready, ()

    def forget_locked(self, order_id: str) -> None:
        """The commit after ``prepare_locked`` failed (the caller restored the core and ``state``): not being sent."""
        self._sending.discard(order_id)

    async def submit(self, order_id: str, intent: OrderIntent, decided_at: float | None = None) -> bool:
        """Send a prepared order (its ``sent`` entry committed) once through the order manager and book the answer;
        whether a request went out. ``decided_at``: when a candle's decision step began (``time.perf_counter``), for
        the latency logged (``live_order.latency``: to the create request, and its round trip)."""
        started = time.perf_counter()
        try:
            submitted = await self.manager.submit(intent)
        finally:
            self._sending.discard(order_id)
        answered = time.perf_counter()
        if decided_at is not None:  # a candle's decision: from its step's start (perf_counter) to the order sent
            log.info("live_order.latency", order_id=order_id,
                     decision_to_send_ms=round((started - decided_at) * 1e3, 3),
                     round_trip_ms=round((answered - started) * 1e3, 3))
        await self.book(submitted.order)
        return submitted.sent

    def spawn(self, order_id: str, intent: OrderIntent, decided_at: float | None = None) -> None:
        """``submit`` in a task of its own: a create that hangs (up to ccxt's timeout) does not hold up the symbol's
        next candles. ``close`` waits for them."""
        task = asyncio.create_task(self.submit(order_id, intent, decided_at), name=f"submit:{order_id}")
        self._submits.add(task)
        task.add_done_callback(self._submitted)

    def _submitted(self, task: asyncio.Task[bool]) -> None:
        self._submits.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("live_order.submit_failed", error=str(exc) or type(exc).__name__,
                        action="the order poll asks about it")

    async def close(self) -> None:
        """Wait for the submits under way (a stop lets an order's answer be recorded; a kill leaves it SUBMITTING,
        resolved at the next start)."""
        if self._submits:
            await asyncio.gather(*list(self._submits), return_exceptions=True)

    def _prepare(self, order: OrderRequest) -> OrderIntent | Refusal:
        """The intent to send ``order`` with, recorded in ``sent`` (and the day's notional), or why not."""
        buy = order.side is Side.BUY
        if buy and order.symbol in self.state.paused:
            why = self.state.paused[order.symbol]
            return Refusal("reconcile_paused", f"new {order.symbol} entries are paused: {why} (see /reconcile)")
        if buy and self.timeframe_ms > 0:
            age = self.clock.now_ms() - (order.decided_ts + self.timeframe_ms)  # since the decision's candle closed
            if order.reason == "signal" and age > self.entry_deadline * self.timeframe_ms:
                return Refusal("stale", f"{order.symbol} entry decided on a candle that closed {age / 60_000:.0f} min "
                                        "ago (caught up after a pause or restart): entries are not sent late "
                                        "([live] entry_deadline)")
        price = self.price(order.symbol)
        if price is None or not (math.isfinite(price) and price > 0):
            return Refusal("no_price", f"no market price for {order.symbol} to size the order with")
        sized = self.core.size(order, price)
        if isinstance(sized, Refusal):
            return sized
        notional = sized.quantity * sized.price
        if buy:
            day = dt.datetime.fromtimestamp(self.clock.now_ms() / 1000, dt.UTC).date().isoformat()
            spent = self.state.day_notional if self.state.day == day else 0.0
            g = self.guards
            if notional > g.max_order_notional:
                return Refusal("fat_finger", f"{order.symbol} buy of {notional:.2f} exceeds the maximum order value "
                                             f"{g.max_order_notional:g} ([live] max_order_notional)")
            if spent + notional > g.max_daily_notional:
                return Refusal("fat_finger", f"{order.symbol} buy of {notional:.2f} would bring today's buys to "
                                             f"{spent + notional:.2f}, above {g.max_daily_notional:g} "
                                             "([live] max_daily_notional)")
            self.state.day, self.state.day_notional = day, spent + notional
        intent = OrderIntent(symbol=order.symbol, side=order.side, type=OrderType.MARKET, amount=sized.quantity,
                             decided_ts=order.decided_ts, reason=order.reason, intent_id=order.order_id)
        self.state.sent[order.order_id] = SentOrder(self.manager.client_id(intent), order.symbol, order.side.value,
                                                    order.reason)
        return intent

    def _cancelled(self, order: OrderRequest, by: str, reason: str) -> OrderCancelled:
        return OrderCancelled(ts=self.clock.now_ms(), order_id=order.order_id, symbol=order.symbol,
                              side=order.side.value, by=by, paper=False, reason=reason)

    # ------------------------------------------------------------------------------ book

    async def book(self, order: LiveOrder) -> StepResult | None:
        """Book what ``order`` (as its row says now) filled beyond what the books have, and free the slot of an
        order the exchange is done with; all in one commit. None when there was nothing to do."""
        order_id = order.intent_id
        if order_id is None:
            return None
        async with self.lock:
            entry = self.state.sent.get(order_id)
            if entry is None or entry.client_id != order.client_id:
                return None
            before = self.core.snapshot()
            saved = self.state.to_dict()
            result, events = self._book_locked(order_id, entry, order)
            if result is None and not events:
                return None
            try:
                await self.commit(result, tuple(events), ())
            except Exception:
                self.core.restore(before)
                self.state = TraderState.from_dict(saved)
                raise
            return result

    def _book_locked(self, order_id: str, entry: SentOrder, order: LiveOrder
                     ) -> tuple[StepResult | None, list[EngineEvent]]:
        events: list[EngineEvent] = []
        result: StepResult | None = None
        amount = order.filled - entry.booked
        if amount > EPS * max(1.0, order.filled):
            cost = order.cost - entry.cost
            fees = {a: order.fees.get(a, 0.0) - entry.fees.get(a, 0.0) for a in set(order.fees) | set(entry.fees)}
            price = cost / amount if cost > 0 else (order.average or 0.0)
            quantity, fee = self._net(order.symbol, amount, price, fees)
            booked = self.core.apply_fill(order.symbol, order_id, Side(entry.side), quantity, price, fee,
                                          self.clock.now_ms(), _reason(entry.reason))
            if isinstance(booked, Refusal):
                log.error("live_fill.not_booked", order_id=order_id, client_id=order.client_id, reason=booked.reason,
                          detail="the reconciliation will show the difference")
            else:
                result = booked
            entry.booked, entry.cost, entry.fees = order.filled, order.cost, dict(order.fees)
            entry.parts += 1
        if order.state.final:
            freed = self.core.order_done(order.symbol, order_id)
            del self.state.sent[order_id]
            if order.filled <= 0.0 and freed is not None:
                why = order.last_error or f"{order.state.value.lower().replace('_', ' ')} on the exchange"
                events.append(self._cancelled(freed, BY_EXCHANGE, why))
        return result, events

    def _net(self, symbol: str, amount: float, price: float, fees: Mapping[str, float]) -> tuple[float, float]:
        """The base quantity to book and the fee in quote, from a fill of ``amount`` at ``price`` with ``fees``."""
        market = self.venue.market(symbol)
        fee = 0.0
        for asset, value in fees.items():
            if value <= 0:
                continue
            if asset == market.quote:
                fee += value
            elif asset == market.base:
                amount -= value
                fee += value * price
        return amount, fee

    async def book_all(self) -> int:
        """Book every order in ``sent`` from its row (after a restart, or a poll); how many changed the books.
        An order whose row was never written was never sent: it is dropped and its slot freed."""
        changed = 0
        for order_id, entry in list(self.state.sent.items()):
            if order_id in self._sending:
                continue
            row = await self.manager.store.live_order(entry.client_id)
            if row is None:
                await self._never_sent(order_id, entry)
                changed += 1
            elif await self.book(row) is not None:
                changed += 1
        return changed

    async def _never_sent(self, order_id: str, entry: SentOrder) -> None:
        async with self.lock:
            if self.state.sent.get(order_id) is not entry or order_id in self._sending:
                return
            freed = self.core.order_done(entry.symbol, order_id)
            del self.state.sent[order_id]
            log.warning("live_order.dropped", order_id=order_id, client_id=entry.client_id,
                        detail="the process stopped before sending it; it is not sent late")
            event = (self._cancelled(freed, BY_EXCHANGE, "not sent: the agent stopped before sending it")
                     if freed is not None else None)
            await self.commit(None, () if event is None else (event,), ())

    # ------------------------------------------------------------------------------ exits between candles

    async def check_exits(self, symbol: str, price: float, ts: int) -> bool:
        """``symbol``'s stop, trailing stop and target against a ticker price; an exit triggered is committed
        (its order and announcement) and sent. True when one was."""
        async with self.lock:
            if any(o.symbol == symbol for o in self.core._orders.values()):
                return False
            before = self.core.snapshot()
            found = self.core.check_exits(symbol, price, ts)
            if found is None:
                return False
            try:
                await self.commit(None, (found.event,), (found.order,))
            except Exception:
                self.core.restore(before)
                raise
        log.info("live_exit.triggered", symbol=symbol, trigger=found.order.reason, level=found.level, price=price)
        await self.send(found.order.order_id)
        return True

    # ------------------------------------------------------------------------------ polling

    async def poll(self) -> int:
        """Ask the exchange about every order not final, book what changed, send what waits; changes made."""
        updates = await self.manager.poll()
        changed = 0
        for update in updates:
            if await self.book(update.order) is not None:
                changed += 1
        changed += await self.book_all()
        changed += await self.send_pending()
        return changed

    async def startup(self) -> None:
        """After a (re)start: every order not final asked about, then the books brought up to the rows."""
        await self.manager.startup()
        await self.book_all()

    # ------------------------------------------------------------------------------ the engine's tasks

    async def run_orders(self, stopping: asyncio.Event, interval: float) -> None:
        """The orders not final asked about, their fills booked, and the orders waiting sent, every ``interval``
        seconds or at once when a command queued one (``wake``), until ``stopping``."""
        failing = ""
        while not stopping.is_set():
            self.wake.clear()  # before the poll: a nudge that comes during it is not lost
            try:
                await self.poll()
                if failing:
                    log.info("order_poll_recovered")
                failing = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = str(exc) or type(exc).__name__
                if error != failing:
                    log.warning("order_poll_failed", error=error)
                failing = error
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval)

    async def run_reconcile(self, stopping: asyncio.Event, interval: float) -> None:
        """The books against the exchange at start and every ``interval`` seconds (sooner again when the exchange
        could not be read), until ``stopping``."""
        while not stopping.is_set():
            pause = min(interval, RECONCILE_RETRY_S)
            try:
                result = await self.reconcile()
                log.info("reconciled", summary=result.summary())
                if result.reconciled:
                    pause = interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reconcile_error", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(pause)


def _reason(reason: str) -> str:
    return reason if reason in ("signal", "manual", "stop_loss", "take_profit", "trailing_stop") else "manual"


