"""The decision path: model output -> signal filters -> risk -> paper broker -> accounting.

``TradingCore.on_candle`` is the one body of code the live loop and the backtest both run. It is
pure and synchronous: no I/O, no wall clock (time comes from the candle and the injected clock).

Order of work on a closed candle of one symbol:
  1. roll the UTC day (day-start equity; REDUCING ends at a new day);
  2. fill that symbol's pending market orders at this candle's open (fee and slippage in bps);
  3. check stop-loss, trailing stop and take-profit within the candle (the worse one first when
     both sides are touched; a gap through a level fills at the open);
  4. mark to the close and update the risk state (daily loss -> REDUCING, drawdown -> HALTED);
  5. turn the model's probabilities into a signal, filter it (confidence, cooldown, pause, stale
     feed, risk state) and queue at most one market order for the next candle's open.

``fast_forward`` lets the backtest skip candles on which ``on_candle`` provably does nothing but
mark to market; ``next_active_index`` finds the next candle where it might do more. The parity
tests prove that a backtest stepping every candle and one fast-forwarding give identical results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.clock import Clock
from engine.core.model import DOWN, UP
from engine.core.portfolio import Portfolio, Position
from engine.core.risk import Costs, RiskLimits, SignalFilters, buy_notional, entry_refusal
from engine.core.types import (
    DAY_MS,
    Action,
    Candle,
    ExitReason,
    Fill,
    OrderRequest,
    Refusal,
    RiskState,
    Side,
    SignalRecord,
    Trade,
)
from engine.events import (
    EngineEvent,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    ProtectiveExitHit,
    RiskStateChanged,
)


@dataclass(slots=True)
class StepResult:
    symbol: str
    candle_ts: int
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)
    orders: list[OrderRequest] = field(default_factory=list)
    signal: SignalRecord | None = None
    equity: float = 0.0


def signal_of(proba_row: np.ndarray | None) -> tuple[Action, float]:
    """The model's wish for one candle: the most likely class (ties go to flat)."""
    if proba_row is None:
        return Action.HOLD, 0.0
    cls = int(np.argmax(proba_row))
    conf = float(proba_row[cls])
    if cls == UP:
        return Action.ENTER, conf
    if cls == DOWN:
        return Action.EXIT, conf
    return Action.HOLD, conf


class TradingCore:
    """Portfolio-wide decision state for one or more symbols."""

    def __init__(self, *, limits: RiskLimits, costs: Costs, filters: SignalFilters, starting_cash: float,
                 clock: Clock, paper: bool = True) -> None:
        self.limits = limits
        self.costs = costs
        self.filters = filters
        self.clock = clock
        self.paper = paper
        self.portfolio = Portfolio(cash=float(starting_cash))
        self.starting_cash = float(starting_cash)
        self.state = RiskState.ACTIVE
        self.state_reason = ""
        self.paused = False
        self.stale: set[str] = set()
        self.cooldown_until: dict[str, int] = {}
        self.pending: dict[str, list[OrderRequest]] = {}
        self.last_candle_ts: dict[str, int] = {}
        self.peak_equity = float(starting_cash)
        self.day = -1
        self.day_start_equity = float(starting_cash)

    # ------------------------------------------------------------------ the step

    def on_candle(self, symbol: str, candle: Candle, proba_row: np.ndarray | None) -> StepResult:
        res = StepResult(symbol, candle.ts)
        self._roll_day(candle.ts, res)
        for order in self.pending.pop(symbol, []):
            self._fill(order, candle.open, candle.ts, res)
        self._check_protective(symbol, candle, res)
        self.portfolio.marks[symbol] = candle.close
        res.equity = self._update_risk(candle.ts, res)
        action, confidence = signal_of(proba_row)
        res.signal = self._decide(symbol, candle.ts, action, confidence, res)
        self.last_candle_ts[symbol] = candle.ts
        return res

    def _roll_day(self, ts: int, res: StepResult) -> None:
        day = ts // DAY_MS
        if day == self.day:
            return
        if self.day >= 0:
            self.day_start_equity = self.portfolio.equity()
        self.day = day
        if self.state is RiskState.REDUCING:
            self._set_state(RiskState.ACTIVE, "new trading day", ts, res)

    def _update_risk(self, ts: int, res: StepResult) -> float:
        equity = self.portfolio.equity()
        if equity > self.peak_equity:
            self.peak_equity = equity
        lim = self.limits
        if (self.state is not RiskState.HALTED and lim.max_drawdown_pct > 0
                and equity <= self.peak_equity * (1.0 - lim.max_drawdown_pct)):
            self._set_state(RiskState.HALTED, f"max drawdown {lim.max_drawdown_pct:.1%} reached "
                            f"(equity {equity:.2f}, peak {self.peak_equity:.2f})", ts, res)
        elif (self.state is RiskState.ACTIVE and lim.max_daily_loss_pct > 0
              and equity <= self.day_start_equity * (1.0 - lim.max_daily_loss_pct)):
            self._set_state(RiskState.REDUCING, f"max daily loss {lim.max_daily_loss_pct:.1%} reached "
                            f"(equity {equity:.2f}, day start {self.day_start_equity:.2f})", ts, res)
        return equity

    def _set_state(self, new: RiskState, reason: str, ts: int, res: StepResult | None) -> EngineEvent | None:
        if new is self.state:
            return None
        event = RiskStateChanged(ts=ts, old=self.state.value, new=new.value, reason=reason)
        self.state, self.state_reason = new, reason
        if res is not None:
            res.events.append(event)
        return event

    # ------------------------------------------------------------------ signals

    def _decide(self, symbol: str, ts: int, action: Action, confidence: float, res: StepResult) -> SignalRecord:
        def record(outcome: str) -> SignalRecord:
            return SignalRecord(symbol, ts, int(action), confidence, outcome)

        if action is Action.HOLD:
            return record("hold")
        if confidence < self.filters.min_confidence:
            return record(f"filtered: confidence {confidence:.2f} below {self.filters.min_confidence:.2f}")
        if self.pending.get(symbol):
            return record("nothing to do: an order is already pending")
        holding = symbol in self.portfolio.positions
        if action is Action.EXIT:
            if not holding:
                return record("nothing to do: no position")
            order = OrderRequest(f"{symbol}-{ts}-exit", symbol, Side.SELL, ExitReason.SIGNAL.value, ts,
                                 quantity=self.portfolio.positions[symbol].quantity)
            self._queue(order, res)
            return record("order")
        if holding:
            return record("nothing to do: already in position")
        refusal = entry_refusal(paused=self.paused, state=self.state, stale=symbol in self.stale,
                                cooling_until=self.cooldown_until.get(symbol), now_ts=ts, symbol=symbol)
        if refusal:
            return record(f"refused: {refusal.reason}")
        order = OrderRequest(f"{symbol}-{ts}-entry", symbol, Side.BUY, ExitReason.SIGNAL.value, ts,
                             fraction=self.limits.position_fraction)
        self._queue(order, res)
        return record("order")

    def _queue(self, order: OrderRequest, res: StepResult | None) -> None:
        self.pending.setdefault(order.symbol, []).append(order)
        if res is not None:
            res.orders.append(order)

    # ------------------------------------------------------------------ manual orders

    def submit_manual(self, order: OrderRequest) -> Refusal | None:
        """Check and queue an operator's order; it fills at the symbol's next candle open."""
        refusal = self.check_manual(order)
        if refusal is None:
            self._queue(order, None)
        return refusal

    def check_manual(self, order: OrderRequest) -> Refusal | None:
        if order.symbol not in self.last_candle_ts:
            return Refusal("unknown_symbol", f"{order.symbol} is not traded by this agent")
        if self.pending.get(order.symbol):
            return Refusal("pending", f"an order for {order.symbol} is already pending")
        mark = self.portfolio.marks[order.symbol]
        if order.side is Side.SELL:
            held = self.portfolio.positions.get(order.symbol)
            if held is None:
                return Refusal("no_position", f"no {order.symbol} position to sell")
            return None
        if self.state is not RiskState.ACTIVE:
            return Refusal("risk_state", f"risk state is {self.state.value}: no new entries")
        if order.symbol in self.stale:
            return Refusal("feed_stale", f"the {order.symbol} feed is stale: no new entries")
        wanted = order.notional if order.notional is not None else (order.quantity or 0.0) * mark
        allowed = buy_notional(self.limits, wanted=wanted, equity=self.portfolio.equity(),
                               position_value=self.portfolio.position_value(order.symbol),
                               exposure=self.portfolio.exposure(), cash=self.portfolio.cash,
                               fee_rate=self.costs.fee_rate)
        if allowed + 1e-9 < wanted:
            return Refusal("limit", f"{wanted:.2f} exceeds what risk allows now ({allowed:.2f}: cash, "
                           "position and exposure limits)")
        return None

    def close_position(self, symbol: str, ts: int) -> Refusal | OrderRequest:
        pos = self.portfolio.positions.get(symbol)
        if pos is None:
            return Refusal("no_position", f"no {symbol} position to close")
        if self.pending.get(symbol):
            return Refusal("pending", f"an order for {symbol} is already pending")
        order = OrderRequest(f"{symbol}-{ts}-close", symbol, Side.SELL, ExitReason.MANUAL.value, ts,
                             quantity=pos.quantity)
        self._queue(order, None)
        return order

    def resume(self, ts: int) -> EngineEvent | None:
        """Operator resume: un-pause, and leave HALTED/REDUCING with the peak reset to today's equity."""
        self.paused = False
        if self.state is RiskState.ACTIVE:
            return None
        equity = self.portfolio.equity()
        self.peak_equity = equity
        self.day_start_equity = equity
        return self._set_state(RiskState.ACTIVE, "resumed by operator", ts, None)

    # ------------------------------------------------------------------ broker

    def _fill(self, order: OrderRequest, open_price: float, ts: int, res: StepResult) -> None:
        """Paper market order at the candle's open; sizes are worked out at fill time."""
        pf = self.portfolio
        pf.marks[order.symbol] = open_price
        slip = self.costs.slip_rate
        if order.side is Side.BUY:
            price = open_price * (1.0 + slip)
            qty = self._buy_quantity(order, price)
            if qty <= 0.0:
                return
        else:
            price = open_price * (1.0 - slip)
            pos = pf.positions.get(order.symbol)
            if pos is None:
                return
            qty = pos.quantity if order.quantity is None else min(order.quantity, pos.quantity)
            if order.notional is not None:
                qty = min(pos.quantity, order.notional / price)
        self._book(Fill(order.order_id, order.symbol, order.side, qty, price,
                        qty * price * self.costs.fee_rate, ts, order.reason), res)

    def _buy_quantity(self, order: OrderRequest, price: float) -> float:
        pf = self.portfolio
        equity = pf.equity()
        if order.fraction is not None:
            wanted = order.fraction * equity
        elif order.notional is not None:
            wanted = order.notional
        else:
            wanted = (order.quantity or 0.0) * price * (1.0 + self.costs.fee_rate)
        spend = buy_notional(self.limits, wanted=wanted, equity=equity,
                             position_value=pf.position_value(order.symbol), exposure=pf.exposure(),
                             cash=pf.cash, fee_rate=self.costs.fee_rate)
        fee_rate = self.costs.fee_rate
        qty = spend / (price * (1.0 + fee_rate))
        while qty > 0.0 and qty * price + qty * price * fee_rate > pf.cash:
            qty *= 1.0 - 1e-12  # float rounding must never take cash below zero
        return qty

    def _book(self, fill: Fill, res: StepResult) -> None:
        pf = self.portfolio
        opened = fill.side is Side.BUY and fill.symbol not in pf.positions
        trade = pf.apply(fill)
        res.fills.append(fill)
        res.events.append(OrderFilled(ts=fill.ts, order_id=fill.order_id, symbol=fill.symbol,
                                      side=fill.side.value, quantity=fill.quantity, price=fill.price,
                                      fee=fill.fee, reason=fill.reason, paper=self.paper))
        if opened:
            pos = pf.positions[fill.symbol]
            lim = self.limits
            pos.stop_price = fill.price * (1 - lim.stop_loss_pct) if lim.stop_loss_pct > 0 else None
            pos.target_price = fill.price * (1 + lim.take_profit_pct) if lim.take_profit_pct > 0 else None
            pos.trail_pct = lim.trailing_stop_pct
            res.events.append(PositionOpened(ts=fill.ts, symbol=fill.symbol, quantity=fill.quantity,
                                             price=fill.price, stop_price=pos.stop_price,
                                             target_price=pos.target_price, paper=self.paper))
        if trade is not None:
            res.trades.append(trade)
            if fill.symbol not in pf.positions:
                if self.filters.cooldown_ms > 0:
                    self.cooldown_until[fill.symbol] = fill.ts + self.filters.cooldown_ms
                res.events.append(PositionClosed(ts=fill.ts, symbol=fill.symbol, quantity=trade.quantity,
                                                 entry_price=trade.entry_price, exit_price=trade.exit_price,
                                                 pnl=trade.pnl, reason=trade.exit_reason, paper=self.paper))

    def _check_protective(self, symbol: str, candle: Candle, res: StepResult) -> None:
        pos = self.portfolio.positions.get(symbol)
        if pos is None:
            return
        hit = protective_hit(pos, candle.open, candle.high, candle.low)
        if hit is None:
            pos.high_water = max(pos.high_water, candle.high)
            return
        trigger, level, price = hit
        price *= 1.0 - self.costs.slip_rate
        order_id = f"{symbol}-{candle.ts}-{trigger}"
        res.orders.append(OrderRequest(order_id, symbol, Side.SELL, trigger, candle.ts, quantity=pos.quantity))
        res.events.append(ProtectiveExitHit(ts=candle.ts, symbol=symbol, trigger=trigger, level=level,
                                            fill_price=price))
        self._book(Fill(order_id, symbol, Side.SELL, pos.quantity, price,
                        pos.quantity * price * self.costs.fee_rate, candle.ts, trigger), res)

    # ------------------------------------------------------------------ backtest fast path

    def next_active_index(self, symbol: str, ts: np.ndarray, high: np.ndarray, low: np.ndarray,
                          close: np.ndarray, wanted: np.ndarray, start: int) -> int:
        """The first index >= start where ``on_candle`` may do more than mark to market.

        ``wanted`` holds, sorted, the indices of candles whose model signal passes the confidence
        filter (not HOLD). The answer is conservative: stepping a candle that turns out quiet is harmless.
        """
        n = ts.shape[0]
        if start >= n or self.pending.get(symbol) or len(self.portfolio.positions) > 1 or (
                self.portfolio.positions and symbol not in self.portfolio.positions):
            return start
        stop = n
        k = int(np.searchsorted(wanted, start))
        if k < wanted.shape[0]:
            stop = int(wanted[k])
        if stop == start:
            return start
        days = ts[start:stop] // DAY_MS
        if self.state is not RiskState.ACTIVE:
            changed = np.flatnonzero(days != self.day)
            if changed.size:
                stop = start + int(changed[0])
        if stop == start:
            return start
        pos = self.portfolio.positions.get(symbol)
        qty = 0.0 if pos is None else pos.quantity
        if pos is not None:
            hw = np.maximum.accumulate(np.concatenate(([pos.high_water], high[start:stop - 1])))
            trigger = np.zeros(stop - start, dtype=bool)
            if pos.stop_price is not None:
                trigger |= low[start:stop] <= pos.stop_price
            if pos.trail_pct > 0:
                trigger |= low[start:stop] <= hw * (1.0 - pos.trail_pct)
            if pos.target_price is not None:
                trigger |= high[start:stop] >= pos.target_price
            hit = np.flatnonzero(trigger)
            if hit.size:
                stop = start + int(hit[0])
            if stop == start:
                return start
        equity = self.portfolio.cash + qty * close[start:stop]
        days = days[: stop - start]
        peak = np.maximum(np.maximum.accumulate(equity), self.peak_equity)
        risk = np.zeros(stop - start, dtype=bool)
        lim = self.limits
        if self.state is not RiskState.HALTED and lim.max_drawdown_pct > 0:
            risk |= equity <= peak * (1.0 - lim.max_drawdown_pct)
        if self.state is RiskState.ACTIVE and lim.max_daily_loss_pct > 0:
            risk |= equity <= self._day_start_series(days, equity) * (1.0 - lim.max_daily_loss_pct)
        hit = np.flatnonzero(risk)
        return start + int(hit[0]) if hit.size else stop

    def _day_start_series(self, days: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """Day-start equity in force at each candle of a quiet span (equity before the day's first candle)."""
        before = np.concatenate(([self.portfolio.equity()], equity[:-1]))
        new_day = np.concatenate(([days[0] != self.day], days[1:] != days[:-1]))
        if self.day < 0:
            new_day[0] = False  # the very first candle keeps the starting equity, as _roll_day does
        idx = np.where(new_day, np.arange(days.shape[0]), -1)
        last = np.maximum.accumulate(idx)
        return np.where(last >= 0, before[np.maximum(last, 0)], self.day_start_equity)

    def fast_forward(self, symbol: str, ts: np.ndarray, high: np.ndarray, close: np.ndarray,
                     start: int, stop: int, equity_out: np.ndarray) -> None:
        """Apply candles [start, stop) that ``next_active_index`` proved quiet: marks, peak, day, trail."""
        if stop <= start:
            return
        pf = self.portfolio
        pos = pf.positions.get(symbol)
        qty = 0.0 if pos is None else pos.quantity
        equity = pf.cash + qty * close[start:stop]
        days = ts[start:stop] // DAY_MS
        day_start = self._day_start_series(days, equity)
        equity_out[start:stop] = equity
        self.peak_equity = max(self.peak_equity, float(equity.max()))
        self.day_start_equity = float(day_start[-1])
        self.day = int(days[-1])
        if pos is not None:
            pos.high_water = max(pos.high_water, float(high[start:stop].max()))
        pf.marks[symbol] = float(close[stop - 1])
        self.last_candle_ts[symbol] = int(ts[stop - 1])

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state; ``restore`` rebuilds an identical core (the restart path)."""
        return {
            "portfolio": self.portfolio.snapshot(),
            "limits": self.limits.as_dict(),
            "state": self.state.value,
            "state_reason": self.state_reason,
            "paused": self.paused,
            "stale": sorted(self.stale),
            "cooldown_until": dict(self.cooldown_until),
            "pending": {s: [order_to_dict(o) for o in orders] for s, orders in self.pending.items() if orders},
            "last_candle_ts": dict(self.last_candle_ts),
            "peak_equity": self.peak_equity,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "starting_cash": self.starting_cash,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.portfolio = Portfolio.restore(data["portfolio"])
        self.limits = RiskLimits.from_dict(data["limits"])
        self.state = RiskState(data["state"])
        self.state_reason = str(data.get("state_reason", ""))
        self.paused = bool(data["paused"])
        self.stale = set(data.get("stale", []))
        self.cooldown_until = {k: int(v) for k, v in data["cooldown_until"].items()}
        self.pending = {s: [order_from_dict(o) for o in orders] for s, orders in data["pending"].items()}
        self.last_candle_ts = {k: int(v) for k, v in data["last_candle_ts"].items()}
        self.peak_equity = float(data["peak_equity"])
        self.day = int(data["day"])
        self.day_start_equity = float(data["day_start_equity"])
        self.starting_cash = float(data["starting_cash"])


def protective_hit(pos: Position, open_: float, high: float, low: float) -> tuple[str, float, float] | None:
    """(trigger, level, fill price before slippage) if a protective exit is touched in this candle.

    The stop side is checked first: when a candle touches both, the worse outcome is assumed.
    A gap through a level fills at the open.
    """
    stops = [(lvl, name) for lvl, name in ((pos.stop_price, ExitReason.STOP_LOSS.value),
                                           (pos.trail_price(), ExitReason.TRAILING_STOP.value))
             if lvl is not None]
    if stops:
        level, name = max(stops)
        if low <= level:
            return name, level, min(open_, level)
    if pos.target_price is not None and high >= pos.target_price:
        return ExitReason.TAKE_PROFIT.value, pos.target_price, max(open_, pos.target_price)
    return None


def order_to_dict(order: OrderRequest) -> dict[str, Any]:
    return {"order_id": order.order_id, "symbol": order.symbol, "side": order.side.value,
            "reason": order.reason, "decided_ts": order.decided_ts, "quantity": order.quantity,
            "notional": order.notional, "fraction": order.fraction}


def order_from_dict(data: dict[str, Any]) -> OrderRequest:
    return OrderRequest(data["order_id"], data["symbol"], Side(data["side"]), data["reason"],
                        int(data["decided_ts"]), data.get("quantity"), data.get("notional"),
                        data.get("fraction"))
