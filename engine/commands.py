"""Commands: every change an operator makes goes through here, whichever front end asks (chat, local chat, API).

Each intent (``submit_order``, ``close_position``, ``cancel_order``, ``pause``, ``resume``, ``set_risk``,
``swap_model``, ``swap_strategy``, and ``record`` for events that change nothing else) takes the engine lock, validates,
changes the core, commits the new state with its orders and events in one transaction and publishes
the events, in one place. A refusal is a
``Refusal`` value; a commit that fails rolls the core back (memory never runs ahead of the
database) and raises. The ``check_*`` methods validate without changing anything (for confirmation
prompts). The live engine owns one ``Commands`` (``LiveEngine.commands``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from engine.core.events import EngineEvent, OrderCancelled, StrategySwitched, TradingPaused
from engine.core.model import GenericTradingModel
from engine.core.risk import RiskLimits, check_change
from engine.core.trading import TradingCore
from engine.core.types import OrderRequest, OrderStatus, Refusal, RiskState, Side
from engine.errors import ConfigError
from engine.ports import Broker, Clock, Store
from engine.strategy_choice import PreparedStrategy, StrategyCatalog, StrategySwitch, StrategyView

MAX_AMOUNT = 1e12  # the largest quote amount an order may name

Commit = Callable[[tuple[EngineEvent, ...], tuple[OrderRequest, ...]], Awaitable[None]]
SwapModel = Callable[[str, GenericTradingModel], None]
SwapModels = Callable[[Mapping[str, GenericTradingModel]], None]


class Commands:
    def __init__(self, *, core: TradingCore, broker: Broker, store: Store, clock: Clock, lock: asyncio.Lock,
                 commit_locked: Commit, swap: SwapModel, symbols: tuple[str, ...], paper: bool,
                 strategies: StrategyCatalog | None = None, strategy: PreparedStrategy | None = None,
                 swap_all: SwapModels | None = None) -> None:
        self._core = core
        self._broker = broker
        self._store = store
        self._clock = clock
        self._lock = lock
        self._commit_locked = commit_locked
        self._swap = swap
        self.symbols = symbols
        self.paper = paper
        self._strategies = strategies  # None: this engine cannot switch strategies (built without a catalog)
        self.strategy = strategy  # the strategy in charge (``swap_strategy`` changes it)
        self._swap_all = swap_all

    async def _commit(self, before: dict[str, object], events: tuple[EngineEvent, ...] = (),
                      orders: tuple[OrderRequest, ...] = ()) -> None:
        """Commit under the held lock; on failure restore the core to ``before`` and re-raise."""
        try:
            await self._commit_locked(events, orders)
        except Exception:
            self._core.restore(before)
            raise

    def _unknown(self, symbol: str) -> Refusal:
        return Refusal("unknown_symbol", f"{symbol} is not traded by this agent; try one of {', '.join(self.symbols)}")

    # ------------------------------------------------------------------ orders

    def check_order(self, symbol: str, side: str, amount: float | None, *,
                    quantity: float | None = None) -> Refusal | OrderRequest:
        """The operator's order as it would be submitted now, or why it would be refused; changes nothing. It is
        sized by ``amount`` (quote currency) or ``quantity`` (base asset), and checked against the kernel's rules
        and the exchange's (minimums, amount step)."""
        symbol = symbol.upper()
        if symbol not in self.symbols:
            return self._unknown(symbol)
        if side not in ("buy", "sell"):
            return Refusal("bad_side", "side must be buy or sell")
        if amount is not None and (not math.isfinite(amount) or amount <= 0 or amount > MAX_AMOUNT):
            return Refusal("bad_amount", "amount must be a positive number (quote currency)")
        if quantity is not None and (not math.isfinite(quantity) or quantity <= 0 or quantity > MAX_AMOUNT):
            return Refusal("bad_amount", "quantity must be a positive number (base asset)")
        if amount is not None and quantity is not None:
            return Refusal("bad_amount", "give an amount or a quantity, not both")
        if amount is None and quantity is None and side == "buy":
            return Refusal("bad_amount", "a buy needs an amount")
        if self._core.last_candle_ts.get(symbol) is None:
            return Refusal("no_price", f"no price for {symbol} yet; wait for the first candle")
        now = self._clock.now_ms()
        order = OrderRequest(f"{symbol}-{now}-manual-{side}", symbol, Side(side), "manual", now, quantity=quantity,
                             notional=amount)
        return self._core.check_manual(order) or order

    async def submit_order(self, symbol: str, side: str, amount: float | None, *,
                           quantity: float | None = None) -> OrderRequest | Refusal:
        """Queue an operator's market order (quote ``amount`` or base ``quantity``; a sell without either sells
        everything held)."""
        async with self._lock:
            checked = self.check_order(symbol, side, amount, quantity=quantity)
            if isinstance(checked, Refusal):
                return checked
            before = self._core.snapshot()
            refusal = self._broker.submit(checked)
            if refusal:
                return refusal
            await self._commit(before, (), (checked,))
        return checked

    def check_close(self, target: str) -> Refusal | tuple[str, ...]:
        """The symbols a close of ``target`` (a symbol or "all") would close now, or why not; changes nothing.

        Refused for an unknown symbol, or by the kernel's exit rule (``TradingCore.check_close``: an order
        already pending, no open position, a position the exchange's minimums do not let sell); "all" leaves
        out the symbols refused and is refused only when none is left (by the first reason that is not a
        pending order, if any)."""
        now = self._clock.now_ms()
        if target.lower() == "all":
            held = sorted(self._core.portfolio.positions)
            if not held:
                return Refusal("no_position", "there are no open positions")
            refused = {s: self._core.check_close(s, now) for s in held}
            free = tuple(s for s, r in refused.items() if r is None)
            other = next((r for r in refused.values() if r is not None and r.code != "pending"), None)
            return free or other or Refusal("pending", f"an order is already pending for {', '.join(held)}")
        symbol = target.upper()
        if symbol not in self.symbols:
            return self._unknown(symbol)
        return self._core.check_close(symbol, now) or (symbol,)

    async def close_position(self, target: str) -> tuple[OrderRequest, ...] | Refusal:
        """Close one position (a symbol) or every one ("all") at the next candle's open."""
        async with self._lock:
            now = self._clock.now_ms()
            if target.lower() == "all":
                symbols = sorted(self._core.portfolio.positions)
                if not symbols:
                    return Refusal("no_position", "there are no open positions")
            else:
                symbols = [target.upper()]
                if symbols[0] not in self.symbols:
                    return Refusal("unknown_symbol", f"{symbols[0]} is not traded by this agent")
            before = self._core.snapshot()
            orders = []
            for s in symbols:
                result = self._core.close_position(s, now)
                if isinstance(result, Refusal):
                    if len(symbols) == 1:
                        return result
                    continue
                orders.append(result)
            await self._commit(before, (), tuple(orders))
        return tuple(orders)

    async def check_cancel(self, order_id: str) -> Refusal | OrderRequest:
        """The pending operator order a cancel of ``order_id`` would withdraw (ids match without regard to case),
        or why not: a protective exit, the strategy's own order, one that filled or was cancelled, an unknown id."""
        wanted = order_id.strip()
        found = next((o for o in self._broker.open_orders() if o.order_id.lower() == wanted.lower()), None)
        if found is not None:
            if found.reason != "manual":
                return Refusal("automatic", f"{found.order_id} is the strategy's own order, not an operator's; it "
                                            "fills at the next candle's open (/pause stops new automatic entries)")
            return found
        for pos in sorted(self._core.portfolio.views(), key=lambda p: p.symbol):
            for kind, level in (("stop_loss", pos.stop_price), ("trailing_stop", pos.trail_price),
                                ("take_profit", pos.target_price)):
                if level is not None and f"{pos.symbol}-{kind}".lower() == wanted.lower():
                    return Refusal("protective", f"{pos.symbol}-{kind} is part of the {pos.symbol} position and "
                                                 f"cannot be cancelled by id; /risk {kind}_pct VALUE sets it for "
                                                 "positions opened after the change (0 switches it off), "
                                                 f"/close {pos.symbol} closes this one")
        status = await self._store.order_status(wanted)
        if status == OrderStatus.FILLED:
            return Refusal("filled", f"order {wanted} has already filled: there is nothing to cancel")
        if status == OrderStatus.CANCELLED:
            return Refusal("cancelled", f"order {wanted} was already cancelled")
        if status is not None:
            return Refusal("not_pending", f"order {wanted} is not pending ({status})")
        return Refusal("unknown_order", f"no pending order {wanted}; /orders lists the pending ones")

    async def cancel_order(self, order_id: str, by: str = "operator") -> OrderRequest | Refusal:
        """Withdraw a pending operator order before it fills: under the lock (a candle cannot fill it meanwhile),
        committed with an ``OrderCancelled`` event that marks the order cancelled in the store."""
        async with self._lock:
            checked = await self.check_cancel(order_id)
            if isinstance(checked, Refusal):
                return checked
            before = self._core.snapshot()
            result = self._broker.cancel(checked.order_id)
            if isinstance(result, Refusal):
                return result
            event = OrderCancelled(ts=self._clock.now_ms(), order_id=result.order_id, symbol=result.symbol,
                                   side=result.side.value, by=by, paper=self.paper)
            await self._commit(before, (event,))
        return result

    # ------------------------------------------------------------------ trading state and settings

    async def pause(self, by: str = "operator") -> bool:
        """Stop new automatic entries (exits and stops keep working). False if already paused."""
        async with self._lock:
            if self._core.paused:
                return False
            before = self._core.snapshot()
            self._core.paused = True
            await self._commit(before, (TradingPaused(ts=self._clock.now_ms(), paused=True, by=by),))
        return True

    async def resume(self, by: str = "operator") -> bool:
        """Un-pause and leave HALTED/REDUCING. False if there was nothing to resume."""
        async with self._lock:
            if not self._core.paused and self._core.state is RiskState.ACTIVE:
                return False
            before = self._core.snapshot()
            was_paused = self._core.paused
            change = self._core.resume(self._clock.now_ms())
            events: list[EngineEvent] = [] if change is None else [change]
            if was_paused:
                events.append(TradingPaused(ts=self._clock.now_ms(), paused=False, by=by))
            await self._commit(before, tuple(events))
        return True

    def check_risk(self, key: str, value: float) -> str | None:
        """Why changing one risk limit to ``value`` would be refused now, or None; changes nothing."""
        return check_change(self._core.limits, key, value)

    async def set_risk(self, key: str, value: float) -> RiskLimits | Refusal:
        """Change one risk limit (``RISK_BOUNDS`` names and bounds, and the limits together): the new limits, or
        why not."""
        async with self._lock:
            problem = self.check_risk(key, value)
            if problem:
                return Refusal("bad_risk_value", problem)
            before = self._core.snapshot()
            self._core.limits = self._core.limits.with_value(key, float(value))
            await self._commit(before)
            return self._core.limits

    async def record(self, *events: EngineEvent) -> None:
        """Commit events that change no trading state (a daily summary, a model's health) and publish them."""
        async with self._lock:
            await self._commit(self._core.snapshot(), events)

    async def swap_model(self, symbol: str, model: GenericTradingModel) -> None:
        """Put ``model`` in charge of ``symbol``'s signals, between two decisions (never during one)."""
        async with self._lock:
            self._swap(symbol.upper(), model)

    # ------------------------------------------------------------------ the strategy

    def strategy_view(self) -> StrategyView | None:
        """The strategy in charge, for people (None when this engine was built without a catalog)."""
        if self._strategies is None or self.strategy is None:
            return None
        return self._strategies.view(self.strategy, self._core.limits)

    def preview(self, prepared: PreparedStrategy) -> StrategyView:
        """``prepared`` as it would show once in charge (its stops under the limits a switch would set)."""
        assert self._strategies is not None and self.strategy is not None
        limits = self._strategies.limits_after(self._core.limits, self.strategy, prepared)
        return self._strategies.view(prepared, limits)

    def strategy_names(self) -> tuple[str, ...]:
        return () if self._strategies is None else self._strategies.names()

    def saved_strategy(self) -> dict[str, Any] | None:
        """What the engine's saved state keeps of a switch made at run time (None: the config's strategy runs)."""
        if self._strategies is None or self.strategy is None or self.strategy.choice.by == "config":
            return None
        return self.strategy.saved(self._strategies.configured)

    async def check_strategy(self, name: str, params: Mapping[str, str], by: str = "operator"
                             ) -> PreparedStrategy | Refusal:
        """``name`` with ``params`` loaded and checked (look-ahead included, in a thread: it runs the strategy's
        code), or why it is refused; changes nothing."""
        if self._strategies is None or self.strategy is None or self._swap_all is None:
            return Refusal("strategy", "this engine cannot switch strategies")
        # in a thread, as the loading below: naming a folder's strategy imports the folder's files
        choice = await asyncio.to_thread(self._strategies.choice, name, params, by=by, ts=self._clock.now_ms())
        if isinstance(choice, Refusal):
            return choice
        try:
            prepared = await asyncio.to_thread(self._strategies.prepare, choice)
        except ConfigError as exc:  # StrategyError: one line (the file and line, the column and candle...)
            return Refusal("strategy", str(exc))
        refused = [m.metadata().get("reason") for m in prepared.models.values() if m.metadata().get("kind") == "none"]
        if refused and len(refused) == len(prepared.models):  # a switch that could only stop every entry
            return Refusal("strategy", f"no CatBoost model can trade any symbol ({refused[0]}); train one first "
                                       "(trading-agent train)")
        return prepared

    async def swap_strategy(self, name: str, params: Mapping[str, str], by: str = "operator"
                            ) -> StrategySwitch | Refusal:
        """Put the strategy ``name`` in charge of every symbol: loaded and checked first (a refusal changes
        nothing), then, under the lock, every symbol's model swapped between two decisions, the stops it declares
        in the risk limits (those the old one declared back to the config's), committed with a
        ``StrategySwitched`` event and kept in the saved state for a restart. Open positions are kept: from now
        on the new strategy's exit signals manage them, with the stop levels they were opened with."""
        prepared = await self.check_strategy(name, params, by)
        if isinstance(prepared, Refusal):
            return prepared
        assert self._strategies is not None and self._swap_all is not None and self.strategy is not None
        async with self._lock:
            old = self.strategy
            old_view = self._strategies.view(old, self._core.limits)
            before = self._core.snapshot()
            kept = tuple(sorted(self._core.portfolio.positions))
            self._core.limits = self._strategies.limits_after(self._core.limits, old, prepared)
            self._swap_all(prepared.models)
            self.strategy = prepared
            event = StrategySwitched(ts=self._clock.now_ms(), old=old.label, new=prepared.label, by=by,
                                     positions=", ".join(kept))
            try:
                await self._commit(before, (event,))
            except Exception:
                self._swap_all(old.models)
                self.strategy = old
                raise
            return StrategySwitch(old_view, self._strategies.view(prepared, self._core.limits), kept)

    def adopt_strategy(self, prepared: PreparedStrategy) -> None:
        """Put ``prepared`` in charge before the engine starts (a switch kept from the last run); no event, no
        commit: the saved state it comes from already says so."""
        if self._swap_all is None:
            raise RuntimeError("this engine cannot switch strategies")
        self._swap_all(prepared.models)
        self.strategy = prepared
