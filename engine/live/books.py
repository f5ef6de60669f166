"""The live trader's reconciliation (a mixin of ``engine.live.trader.LiveTrader``): its books as the reconciler
compares them, a reconciliation with its pause and announcements, and ``/reconcile accept``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from engine.core import kernel as K
from engine.core.clock import Clock
from engine.core.events import BooksAgree, BooksMismatch, EngineEvent, LiveStarted
from engine.core.rules import plain
from engine.core.trading import StepResult, TradingCore
from engine.core.types import OrderRequest, Refusal
from engine.exchange.venue import Venue
from engine.live.parts import Guards, TraderState
from engine.live.reconcile import Accepted, Books, Reconciler, Reconciliation, accept

log = structlog.get_logger("engine.live.trader")


class _Trader(Protocol):
    """What of ``LiveTrader`` its reconciliation uses."""

    core: TradingCore
    venue: Venue
    lock: asyncio.Lock
    clock: Clock
    guards: Guards
    state: TraderState
    symbols: tuple[str, ...]
    reconciler: Reconciler
    last: Reconciliation | None
    _announced: tuple[str, ...]

    @property
    def commit(self) -> Callable[[StepResult | None, tuple[EngineEvent, ...], tuple[OrderRequest, ...]],
                                 Awaitable[None]]: ...

    async def poll(self) -> int: ...

    def books(self) -> Books: ...

    async def reconcile(self) -> Reconciliation: ...

    def _live_started(self, result: Reconciliation) -> LiveStarted: ...

    def _adopt(self, accepted: Accepted) -> None: ...


class Reconciling:
    """The reconciliation calls of a ``LiveTrader``: a mixin of it, its methods work on its state."""

    last: Reconciliation | None  # the latest reconciliation (set by ``LiveTrader``)

    def books(self: _Trader) -> Books:
        """The books as the reconciler compares them: the cash, and per base asset what the positions and dust of
        its symbols hold (read under the lock)."""
        holdings: dict[str, float] = {}
        symbols: dict[str, tuple[str, str]] = {}
        quotes = set()
        for symbol in (*self.symbols, *(s for s in self.core.index if s not in self.symbols)):
            market = self.venue.market(symbol)
            symbols[symbol] = (market.base, market.quote)
            quotes.add(market.quote)
            i = self.core.index.get(symbol)
            held = 0.0 if i is None else float(self.core.s[i, K.QTY]) + float(self.core.s[i, K.DUST])
            holdings[market.base] = holdings.get(market.base, 0.0) + held
        if len(quotes) != 1:
            raise ValueError(f"the traded symbols are quoted in {', '.join(sorted(quotes)) or 'nothing'}: the books "
                             "hold one cash asset, so they are reconciled only when every symbol has the same quote")
        return Books(quote=quotes.pop(), cash=float(self.core.g[K.CASH]), holdings=holdings, symbols=symbols)

    async def reconcile(self: _Trader) -> Reconciliation:
        """The books against the exchange now (the orders polled and booked first). A mismatch pauses new entries of
        its symbols and is announced (once, until the mismatch changes); the books agreeing again resumes them."""
        await self.poll()
        async with self.lock:
            books = self.books()
        result = await self.reconciler.reconcile(books)
        async with self.lock:
            self.last = result
            if not result.reconciled:
                log.warning("reconcile_failed", error=result.error)
                return result
            before = dict(self.state.paused)
            paused = {symbol: m.text for m in result.mismatches for symbol in m.symbols}
            events: list[EngineEvent] = []
            if result.mismatches and result.lines() != self._announced:
                events.append(BooksMismatch(ts=self.clock.now_ms(), exchange=self.venue.name, lines=result.lines(),
                                            symbols=result.affected_symbols()))
                log.error("books_mismatch", exchange=self.venue.name, lines=list(result.lines()))
            elif not result.mismatches and (before or self._announced):
                events.append(BooksAgree(ts=self.clock.now_ms(), exchange=self.venue.name, how="reconciled"))
                log.info("books_agree", exchange=self.venue.name)
            self._announced = result.lines()
            if not self.state.announced:  # the first live start: to every admin, with the account and the limits
                events.insert(0, self._live_started(result))
                self.state.announced = True
            if paused != before or events:
                self.state.paused = paused
                await self.commit(None, tuple(events), ())
        return result

    def _live_started(self: _Trader, result: Reconciliation) -> LiveStarted:
        g, limits = self.guards, self.core.limits
        balances = tuple(f"{c.asset} {plain(c.theirs, 10)}" for c in result.checks)
        words = (f"max order {g.max_order_notional:g} {result.books.quote}, max {g.max_daily_notional:g} "
                 f"{result.books.quote} of buys a day; position {limits.position_fraction:.0%} of equity (at most "
                 f"{limits.max_position_fraction:.0%}), stop-loss {limits.stop_loss_pct:.0%}, daily loss limit "
                 f"{limits.max_daily_loss_pct:.0%}, drawdown limit {limits.max_drawdown_pct:.0%}")
        log.warning("live_started", exchange=self.venue.name, balances=list(balances), limits=words)
        return LiveStarted(ts=self.clock.now_ms(), exchange=self.venue.name, balances=balances, limits=words)

    async def accept(self: _Trader, by: str) -> Accepted | Refusal:
        """``/reconcile accept``: a fresh reconciliation, then its balance mismatches adopted into the books (the
        exchange's holding of each base asset, its quote total for a short cash), committed with an announcement;
        no order is sent. Order mismatches are left (the order manager or a person settles them)."""
        result = await self.reconcile()
        if not result.reconciled:
            return Refusal("unreconciled", result.summary())
        if result.ok:
            return Refusal("nothing_to_accept", result.summary())
        async with self.lock:
            try:
                accepted = accept(result, self.books())
            except ValueError as exc:
                return Refusal("changed", str(exc))
            before = self.core.snapshot()
            saved = self.state.to_dict()
            self._adopt(accepted)
            left = {symbol for m in accepted.left for symbol in m.symbols}
            self.state.paused = {s: why for s, why in self.state.paused.items() if s in left}
            self._announced = tuple(m.text for m in accepted.left)
            event = BooksAgree(ts=self.clock.now_ms(), exchange=self.venue.name, by=by,
                               how="the exchange's figures accepted: " + "; ".join(m.text for m in accepted.adopted))
            try:
                await self.commit(None, (event,), ())
            except Exception:
                self.core.restore(before)
                self.state = TraderState.from_dict(saved)
                raise
        log.warning("books_accepted", by=by, adopted=[m.text for m in accepted.adopted])
        return accepted

    def _adopt(self: _Trader, accepted: Accepted) -> None:
        """Write the accepted figures into the core: a base asset's holding goes to its first symbol's position
        (kept at its price, stops and entry) or, with no position, to its dust (held, not traded); the cash."""
        books, s, now = accepted.books, self.core.s, self.clock.now_ms()
        for m in accepted.adopted:
            if m.asset == books.quote:
                self.core.g[K.CASH] = books.cash
                continue
            symbols = [x for x in books.symbols_of(m.asset) if x in self.core.index]
            for extra in symbols[1:]:  # one symbol holds the asset's figure; the others' holdings are folded in
                j = self.core.index[extra]
                s[j, K.QTY] = s[j, K.DUST] = 0.0
            i = self.core.index[symbols[0]]
            total = books.holdings.get(m.asset, 0.0)
            mark = float(s[i, K.MARK])
            if s[i, K.QTY] > 0.0 and total > s[i, K.DUST]:
                s[i, K.QTY] = total - s[i, K.DUST]
            else:
                if s[i, K.QTY] > 0.0:
                    s[i, K.QTY] = 0.0
                if s[i, K.DUST] <= 0.0:
                    s[i, K.DUST_AVG], s[i, K.DUST_FEE] = mark, 0.0
                s[i, K.DUST] = max(total, 0.0)
            log.warning("holding_adopted", asset=m.asset, symbol=symbols[0], books=m.ours, exchange=total, ts=now)


