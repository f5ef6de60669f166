"""``TradingCore``: the decision path's Python face over the compiled kernel (engine/core/kernel.py).

``on_candle`` runs ``kernel.step`` for one closed candle and turns its numeric output into typed
fills, trades, events and a signal record; the live loop calls it for every candle. The backtest
runs ``kernel.run_series``, which calls the same ``kernel.step`` for every candle of a series. So
there is one body of decision code; the parity tests prove the two paths agree exactly.

Operator actions (manual orders, closing positions, pause, resume, risk changes) are checked here
and write into the same state arrays, so they take effect through the kernel at the next candle.

The exchange's rules per symbol (``MarketRules``: ``rules`` at construction, ``set_rules`` later) are
written into the symbol's kernel row when it is created and again after every ``restore``: the rules
that apply are the ones given at this start, whatever a snapshot was saved under.

Who fills orders (``fills``): ``"kernel"`` (paper and backtests) fills the pending order at the next candle's
open and triggers stops and targets within each candle. ``"exchange"`` (live): ``on_candle`` still decides and
queues the pending order, but fills nothing and checks no candle's low or high. The caller sizes the order
(``size``: the kernel's paper sizing at the market's price), sends it, books every fill the exchange reports
(``apply_fill``, partial fills adding up; the kernel's own accounting, ``kernel_live.book_fill``), frees the slot of
an order that ends otherwise (``order_done``), and checks every ticker price against the position's stop, target
and trailing stop (``check_exits``, the kernel's levels and rules), sending the exit it returns. An order is in
the pending slot until done, so a signal meanwhile is ``PENDING`` and no second exit is made; while an order is
pending ``check_exits`` returns nothing (an exit on its way, or an entry still filling, owns the slot).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, MutableSet
from typing import Any

import numpy as np

from engine.core import kernel as K
from engine.core import snapshot
from engine.core.clock import Clock
from engine.core.codes import REASON_CODES, REASONS, STATES, closed_trade, order_from_dict, order_size, signal_of
from engine.core.codes import order_to_dict as order_to_dict  # the snapshot's order format, for tests
from engine.core.codes import series_trades as series_trades  # the compiled series' trades, with their tags
from engine.core.codes import signals_from_proba as signals_from_proba  # used by the backtest
from engine.core.events import (
    EngineEvent,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    ProtectiveExitHit,
    RiskStateChanged,
)
from engine.core.exchange_fills import ExchangeFills
from engine.core.outcomes import FIXED_WORDS, RULE_OUTCOMES, Decision, Outcome, Sizing, decide, rule_words, sizing
from engine.core.portfolio import Portfolio, new_state, new_symbol_rows
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.types import (
    Action,
    Candle,
    Fill,
    OrderRequest,
    Refusal,
    RiskState,
    Side,
    SignalRecord,
    Trade,
)
from engine.core.types import StepResult as StepResult  # (defined there, used from here)

FILLS = ("kernel", "exchange")  # who fills orders: the kernel (paper, backtest) or the exchange (live)
RULES_BY = "exchange rules"  # who withdrew an order the exchange's rules would not fill (``OrderCancelled.by``)


class _StaleSymbols(MutableSet[str]):
    """The set of symbols whose feed is stale, stored in the kernel's arrays."""

    def __init__(self, core: TradingCore) -> None:
        self._core = core

    def __contains__(self, symbol: object) -> bool:
        i = self._core.index.get(symbol) if isinstance(symbol, str) else None
        return i is not None and self._core.s[i, K.STALE] != 0.0

    def __iter__(self) -> Iterator[str]:
        return iter([sym for sym, i in self._core.index.items() if self._core.s[i, K.STALE] != 0.0])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def add(self, symbol: str) -> None:
        i = self._core.row(symbol)  # first: a new symbol's row replaces the array ``s``
        self._core.s[i, K.STALE] = 1.0

    def discard(self, symbol: str) -> None:
        if symbol in self._core.index:
            self._core.s[self._core.index[symbol], K.STALE] = 0.0


class TradingCore(ExchangeFills):
    """Portfolio-wide decision state for one or more symbols."""

    def __init__(self, *, limits: RiskLimits, costs: Costs, filters: SignalFilters, starting_cash: float,
                 clock: Clock, paper: bool = True, rules: Mapping[str, MarketRules] | None = None,
                 fills: str = "kernel") -> None:
        if fills not in FILLS:
            raise ValueError(f"fills must be 'kernel' (paper) or 'exchange' (live), not {fills!r}")
        self.fills = fills
        self.costs = costs
        self.filters = filters
        self.clock = clock
        self.paper = paper
        self.starting_cash = float(starting_cash)
        self.g, self.s = new_state(self.starting_cash, 0)
        self.index: dict[str, int] = {}
        self._limits = limits
        self.p = self._params()
        self.state_reason = ""
        self._orders: dict[str, OrderRequest] = {}
        self._head = np.zeros(K.NH)
        self._fills = np.zeros((2, K.NF))
        self.portfolio = Portfolio(self)
        self.stale: MutableSet[str] = _StaleSymbols(self)
        self.sources: dict[str, str] = {}  # symbol -> what decides its signals ("sma-cross(10,30)"), for alerts
        self.rules: dict[str, MarketRules] = {}  # symbol -> the exchange's rules; a symbol not here has none
        self.entry_tags: dict[str, str] = {}  # symbol -> the enter_tag of the signal that opened its position
        for symbol, market in (rules or {}).items():
            self.set_rules(market, symbol)

    # ------------------------------------------------------------------ state as attributes

    def _params(self) -> np.ndarray:
        lim, p = self._limits, np.zeros(K.NP)
        p[K.POS_FRAC], p[K.MAX_POS], p[K.MAX_EXPOSURE] = (lim.position_fraction, lim.max_position_fraction,
                                                          lim.max_total_exposure)
        p[K.STOP_PCT], p[K.TP_PCT], p[K.TRAIL_PCT] = lim.stop_loss_pct, lim.take_profit_pct, lim.trailing_stop_pct
        p[K.MAX_DAILY], p[K.MAX_DD] = lim.max_daily_loss_pct, lim.max_drawdown_pct
        p[K.FEE_RATE], p[K.SLIP_RATE] = self.costs.fee_rate, self.costs.slip_rate
        p[K.MIN_CONF], p[K.COOLDOWN_MS] = self.filters.min_confidence, float(self.filters.cooldown_ms)
        p[K.EXTERNAL_FILLS] = 1.0 if self.fills == "exchange" else 0.0
        return p

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @limits.setter
    def limits(self, value: RiskLimits) -> None:
        self._limits = value
        self.p = self._params()

    def row(self, symbol: str) -> int:
        """The kernel row of ``symbol``, created on first use (with the symbol's rules)."""
        i = self.index.get(symbol)
        if i is None:
            i = len(self.index)
            self.index[symbol] = i
            self.s = np.vstack([self.s, new_symbol_rows(1)])
            self._write_rules(symbol, i)
        return i

    # ------------------------------------------------------------------ the exchange's rules

    def set_rules(self, rules: MarketRules, symbol: str | None = None) -> None:
        """Trade ``symbol`` (default ``rules.symbol``) under ``rules`` from now on; ``MarketRules.none``: no rules."""
        symbol = symbol or rules.symbol
        self.rules[symbol] = rules
        if symbol in self.index:
            self._write_rules(symbol, self.index[symbol])

    def rules_for(self, symbol: str) -> MarketRules:
        """The rules ``symbol`` trades under (``MarketRules.none`` when none were given)."""
        return self.rules.get(symbol) or MarketRules.none(symbol)

    def _write_rules(self, symbol: str, i: int) -> None:
        r = self.rules_for(symbol)
        row = self.s[i]
        row[K.AMOUNT_STEP], row[K.PRICE_TICK] = r.amount_step, r.price_tick
        row[K.MIN_AMOUNT], row[K.MIN_NOTIONAL] = r.min_amount, r.min_notional

    @property
    def state(self) -> RiskState:
        return STATES[int(self.g[K.STATE])]

    @property
    def paused(self) -> bool:
        return bool(self.g[K.PAUSED])

    @paused.setter
    def paused(self, value: bool) -> None:
        self.g[K.PAUSED] = 1.0 if value else 0.0

    @property
    def peak_equity(self) -> float:
        return float(self.g[K.PEAK])

    @property
    def day_start_equity(self) -> float:
        return float(self.g[K.DAY_START])

    @property
    def last_candle_ts(self) -> dict[str, int]:
        return {sym: int(self.s[i, K.LAST_TS]) for sym, i in self.index.items() if not math.isnan(self.s[i, K.LAST_TS])}

    @property
    def cooldown_until(self) -> dict[str, int]:
        return {sym: int(self.s[i, K.COOL_UNTIL]) for sym, i in self.index.items()
                if not math.isnan(self.s[i, K.COOL_UNTIL])}

    @property
    def pending(self) -> dict[str, list[OrderRequest]]:
        return {sym: [order] for sym, order in self._orders.items()}

    # ------------------------------------------------------------------ the step

    def on_candle(self, symbol: str, candle: Candle, proba_row: np.ndarray | None, tag: str | None = None
                  ) -> StepResult:
        """One closed candle with the model's probabilities for it (the live loop's call); ``tag`` is the
        strategy's enter_tag or exit_tag for this candle's signal, carried by the order it makes."""
        action, confidence = signal_of(proba_row)
        return self.on_signal(symbol, candle, action, confidence, tag)

    def on_signal(self, symbol: str, candle: Candle, action: Action, confidence: float, tag: str | None = None
                  ) -> StepResult:
        i = self.row(symbol)
        head, fills = self._head, self._fills
        K.step(self.g, self.s, self.p, i, float(candle.ts), candle.open, candle.high, candle.low, candle.close,
               int(action), confidence, head, fills)
        res = StepResult(symbol, candle.ts, equity=float(head[K.H_EQUITY]))
        changes = self._state_changes(candle.ts)
        res.events.extend(e for cause, e in changes if cause == K.C_NEW_DAY)
        pending = self._orders.pop(symbol, None) if head[K.H_PENDING_DONE] else None
        if head[K.H_DROP] != K.RULE_OK and pending is not None:
            res.events.append(self._dropped(pending, candle.ts))
        for k in range(int(head[K.H_NFILLS])):
            self._emit_fill(symbol, candle.ts, fills[k], pending, res)
        res.events.extend(e for cause, e in changes if cause != K.C_NEW_DAY)
        outcome = int(head[K.H_OUTCOME])
        if outcome in (K.O_ENTRY_ORDER, K.O_EXIT_ORDER):
            order = self._order_from_row(symbol, i, "entry" if outcome == K.O_ENTRY_ORDER else "exit", tag)
            self._orders[symbol] = order
            res.orders.append(order)
        res.signal = SignalRecord(symbol, candle.ts, int(action), confidence,
                                  self._outcome_text(outcome, symbol, confidence, action))
        return res

    def _dropped(self, order: OrderRequest, ts: int) -> OrderCancelled:
        """The event of a pending order that did not fill because its fill would break an exchange rule (the
        kernel's ``H_DROP``): it is withdrawn, as the exchange would refuse it."""
        head = self._head
        kind, amount = order_size(order)
        size = Sizing(self.rules_for(order.symbol), kind, amount, float(head[K.H_DROP_QTY]),
                      float(head[K.H_DROP_PRICE]), int(head[K.H_DROP]))
        return OrderCancelled(ts=ts, order_id=order.order_id, symbol=order.symbol, side=order.side.value, by=RULES_BY,
                              paper=self.paper, reason=rule_words(order.symbol, size))

    def _state_changes(self, ts: int) -> list[tuple[int, EngineEvent]]:
        head = self._head
        out: list[tuple[int, EngineEvent]] = []
        for k in range(int(head[K.H_NCHANGES])):
            base = K.H_C1_OLD if k == 0 else K.H_C2_OLD
            old, new, cause = (int(head[base + j]) for j in range(3))
            eq, ref = float(head[base + 3]), float(head[base + 4])
            if cause == K.C_NEW_DAY:
                reason = "new trading day"
            elif cause == K.C_DRAWDOWN:
                reason = (f"max drawdown {self._limits.max_drawdown_pct:.1%} reached (equity {eq:.2f}, "
                          f"peak {ref:.2f})")
            else:
                reason = (f"max daily loss {self._limits.max_daily_loss_pct:.1%} reached (equity {eq:.2f}, "
                          f"day start {ref:.2f})")
            self.state_reason = reason
            out.append((cause, RiskStateChanged(ts=ts, old=STATES[old].value, new=STATES[new].value, reason=reason)))
        return out

    def _emit_fill(self, symbol: str, ts: int, row: np.ndarray, pending: OrderRequest | None,
                   res: StepResult, order_id: str | None = None) -> None:
        """The fill in ``row`` as typed fills, trades and events; ``order_id``: the order of a fill the exchange
        reported that is not the pending one (else a fill not from the pending order is the kernel's protective
        exit, announced here)."""
        side = Side.BUY if row[K.F_SIDE] == K.BUY else Side.SELL
        reason = REASONS[int(row[K.F_REASON])]
        qty, price, fee = float(row[K.F_QTY]), float(row[K.F_PRICE]), float(row[K.F_FEE])
        if row[K.F_FROM_PENDING] and pending is not None:
            order_id = pending.order_id
        elif order_id is None:
            order_id = f"{symbol}-{ts}-{reason}"
            res.orders.append(OrderRequest(order_id, symbol, side, reason, ts, quantity=qty))
            res.events.append(ProtectiveExitHit(ts=ts, symbol=symbol, trigger=reason, level=float(row[K.F_LEVEL]),
                                                fill_price=price))
        res.fills.append(Fill(order_id, symbol, side, qty, price, fee, ts, reason))
        source = self.sources.get(symbol, "")
        res.events.append(OrderFilled(ts=ts, order_id=order_id, symbol=symbol, side=side.value, quantity=qty,
                                      price=price, fee=fee, reason=reason, paper=self.paper, source=source))
        if row[K.F_OPENED]:
            if pending is not None and row[K.F_FROM_PENDING] and pending.tag is not None:
                self.entry_tags[symbol] = pending.tag
            else:
                self.entry_tags.pop(symbol, None)
            res.events.append(PositionOpened(ts=ts, symbol=symbol, quantity=qty, price=price,
                                             stop_price=_opt(row[K.F_STOP]), target_price=_opt(row[K.F_TARGET]),
                                             paper=self.paper))
        if side is Side.SELL:
            exit_tag = pending.tag if row[K.F_FROM_PENDING] and pending is not None else None
            entry_tag = self.entry_tags.pop(symbol, None) if row[K.F_CLOSED] else self.entry_tags.get(symbol)
            trade = closed_trade(symbol, int(row[K.F_T_ENTRY_TS]), ts, float(row[K.F_T_ENTRY_PRICE]), price, qty,
                                 float(row[K.F_T_FEE]), fee, float(row[K.F_T_PNL]), reason, entry_tag, exit_tag)
            res.trades.append(trade)
            if row[K.F_CLOSED]:
                res.events.append(PositionClosed(ts=ts, symbol=symbol, quantity=qty, entry_price=trade.entry_price,
                                                 exit_price=price, pnl=trade.pnl, reason=reason, paper=self.paper,
                                                 pnl_pct=trade.pnl_pct, source=source))

    def _order_from_row(self, symbol: str, i: int, tag: str, signal_tag: str | None = None) -> OrderRequest:
        s = self.s[i]
        ts = int(s[K.P_TS])
        side = Side.BUY if s[K.P_SIDE] == K.BUY else Side.SELL
        amount = float(s[K.P_AMOUNT])
        kind = s[K.P_KIND]
        return OrderRequest(f"{symbol}-{ts}-{tag}", symbol, side, REASONS[int(s[K.P_REASON])], ts,
                            quantity=amount if kind == K.BY_QUANTITY else None,
                            notional=amount if kind == K.BY_NOTIONAL else None,
                            fraction=amount if kind == K.BY_FRACTION else None, tag=signal_tag)

    def _outcome_text(self, outcome: int, symbol: str, confidence: float, action: Action) -> str:
        words = FIXED_WORDS.get(outcome)  # the common outcomes, without building a Decision on every candle
        if words is not None:
            return words
        size = None
        if outcome in RULE_OUTCOMES:  # the strategy's own order, sized on the state it was decided on
            size = sizing(self.g, self.s, self.p, self.index[symbol], K.BUY if action == Action.ENTER else K.SELL,
                          K.OWN_SIZE, 0.0, self.rules_for(symbol))
        return Decision(Outcome(outcome), symbol, confidence, self.filters.min_confidence, self.state,
                        size).record_text()

    def would(self, symbol: str, action: Action, ts: int, *, operator: bool = False,
              entry_gates_only: bool = False, order: OrderRequest | None = None) -> Decision:
        """What the kernel would conclude on ``action`` for ``symbol`` now (nothing changes).

        ``operator``: an operator's request, bound by neither the pause, the cooldown nor the confidence
        filter, and free to add to a position. ``order``: the operator's order, asked about with its own size
        (checked against the exchange's rules; the kernel lets an order of the operator's size add to a
        position); without one, the strategy's own size. ``entry_gates_only``: whether an entry is open at all
        (as if flat, the position sold at the mark, with nothing pending), for ``/signal``. A symbol without a
        row yet is asked about on a fresh one."""
        g, s = self.g.copy(), self.s.copy()
        i = self.index.get(symbol, len(self.index))
        if i == len(self.index):
            s = np.vstack([s, new_symbol_rows(1)])
        if operator:
            g[K.PAUSED] = 0.0
            s[i, K.COOL_UNTIL] = math.nan
            if action == Action.ENTER and order is None:
                s[i, K.QTY] = 0.0
        if entry_gates_only:
            if s[i, K.QTY] > 0.0:
                g[K.CASH] += s[i, K.QTY] * s[i, K.MARK]
            s[i, K.QTY] = 0.0
            s[i, K.P_SIDE] = 0.0
        kind, amount = (K.OWN_SIZE, 0.0) if order is None else order_size(order)
        outcome = decide(g, s, self.p, i, ts, int(action), math.inf, kind, amount)
        size = None
        if outcome in RULE_OUTCOMES:
            size = sizing(g, s, self.p, i, K.BUY if action == Action.ENTER else K.SELL, kind, amount,
                          self.rules_for(symbol))
        return Decision(outcome, symbol, math.inf, self.filters.min_confidence, self.state, size)

    # ------------------------------------------------------------------ backtest

    def run_series(self, symbol: str, ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                   close: np.ndarray, action: np.ndarray, confidence: np.ndarray,
                   tags: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
                   ) -> tuple[list[Trade], np.ndarray, np.ndarray]:
        """``kernel.step`` over every candle in one kernel call: trades, equity per candle, in-position flags.
        ``tags``: a strategy's (enter_tag, exit_tag) per candle, given to the trades their signals made."""
        i = self.row(symbol)
        n = ts.shape[0]
        equity = np.empty(n)
        held = np.zeros(n, dtype=np.bool_)
        size = n // 8 + 1024  # room for a trade every 8 candles; grown (and rerun) if ever short
        while True:
            g, s = self.g.copy(), self.s.copy()
            buf = np.zeros((size, K.NT))
            count = K.run_series(g, s, self.p, i, ts, open_, high, low, close, action, confidence, equity, held, buf)
            if count >= 0:
                break
            size *= 4
        self.g, self.s = g, s
        return series_trades(symbol, ts, buf[:count], tags, float(self.p[K.FEE_RATE])), equity, held

    # ------------------------------------------------------------------ operator actions

    def submit_manual(self, order: OrderRequest) -> Refusal | None:
        """Check and queue an operator's order; it fills at the symbol's next candle open."""
        refusal = self.check_manual(order)
        if refusal is None:
            self._queue(order)
        return refusal

    def _queue(self, order: OrderRequest) -> None:
        row = self.s[self.row(order.symbol)]
        row[K.P_SIDE] = K.BUY if order.side is Side.BUY else K.SELL
        row[K.P_KIND], row[K.P_AMOUNT] = order_size(order)
        row[K.P_TS] = order.decided_ts
        row[K.P_REASON] = REASON_CODES.get(order.reason, K.R_MANUAL)
        self._orders[order.symbol] = order

    def check_manual(self, order: OrderRequest) -> Refusal | None:
        """Why an operator's order may not be queued now: the kernel's entry and exit rules, then the limits, then
        the exchange's rules (the kernel's too: the order's fill at the mark)."""
        if order.symbol not in self.last_candle_ts:
            return Refusal("unknown_symbol", f"{order.symbol} is not traded by this agent")
        buy = order.side is Side.BUY
        decision = self.would(order.symbol, Action.ENTER if buy else Action.EXIT, order.decided_ts, operator=True,
                              order=order)
        refusal = decision.refusal("sell")
        if (refusal is not None and decision.outcome not in RULE_OUTCOMES) or not buy:
            return refusal
        mark = self.portfolio.marks[order.symbol]
        wanted = order.notional if order.notional is not None else (order.quantity or 0.0) * mark
        allowed = float(K.buy_budget(self.g, self.s, self.p, self.index[order.symbol], wanted))
        if allowed + 1e-9 < wanted:
            return Refusal("limit", f"{wanted:.2f} exceeds what risk allows now ({allowed:.2f}: cash, "
                           "position and exposure limits)")
        return refusal

    def check_close(self, symbol: str, ts: int) -> Refusal | None:
        """Why ``symbol``'s position may not be closed now (an order pending, no position, a position too small for
        the exchange's minimums: the kernel's exit rule)."""
        if symbol not in self.index:
            return Refusal("no_position", f"no {symbol} position to close")
        return self.would(symbol, Action.EXIT, ts, operator=True).refusal("close")

    def close_position(self, symbol: str, ts: int) -> Refusal | OrderRequest:
        refusal = self.check_close(symbol, ts)
        if refusal is not None:
            return refusal
        order = OrderRequest(f"{symbol}-{ts}-close", symbol, Side.SELL, "manual", ts,
                             quantity=self.portfolio.positions[symbol].quantity)
        self._queue(order)
        return order

    def cancel_manual(self, order_id: str) -> Refusal | OrderRequest:
        """Withdraw an operator's order that has not filled yet: the symbol's pending slot is emptied, as a fill
        would empty it. The strategy's own orders are refused (they are the kernel's decision)."""
        order = next((o for o in self._orders.values() if o.order_id == order_id), None)
        if order is None:
            return Refusal("not_pending", f"no pending order {order_id}")
        if order.reason != "manual":
            return Refusal("automatic", f"{order_id} is the strategy's own order, not an operator's; it fills at "
                                        "the next candle's open")
        self._free(order.symbol)
        return order

    def _free(self, symbol: str) -> None:
        """Empty ``symbol``'s pending slot, as a fill would."""
        self.s[self.index[symbol], K.P_SIDE] = 0.0
        del self._orders[symbol]

    def resume(self, ts: int) -> EngineEvent | None:
        """Operator resume: un-pause, and leave HALTED/REDUCING with the peak reset to today's equity."""
        self.paused = False
        if self.state is RiskState.ACTIVE:
            return None
        equity = self.portfolio.equity()
        old = self.state
        self.g[K.PEAK] = equity
        self.g[K.DAY_START] = equity
        self.g[K.STATE] = K.ACTIVE
        self.state_reason = "resumed by operator"
        return RiskStateChanged(ts=ts, old=old.value, new=RiskState.ACTIVE.value, reason=self.state_reason)

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state with named fields and a version (``engine.core.snapshot``); ``restore`` rebuilds an
        identical core (the restart path)."""
        return snapshot.write(snapshot.CoreState(tuple(self.index), self.g, self.s, self._limits.as_dict(),
                                                 self.state_reason,
                                                 {sym: order_to_dict(o) for sym, o in self._orders.items()},
                                                 self.starting_cash, dict(self.entry_tags)))

    def restore(self, data: dict[str, Any]) -> None:
        """Restore a snapshot of this version or an older one; ``SnapshotUnreadable`` (one line) for anything
        else, with the core left as it was."""
        state = snapshot.read(data)
        self.index = {sym: i for i, sym in enumerate(state.symbols)}
        self.g, self.s = state.g, state.s
        for symbol, i in self.index.items():  # the rules of this start, not the snapshot's
            self._write_rules(symbol, i)
        self.limits = RiskLimits.from_dict(state.limits)
        self.state_reason = state.state_reason
        self._orders = {sym: order_from_dict(o) for sym, o in state.pending.items()}
        self.entry_tags = dict(state.entry_tags)
        self.starting_cash = state.starting_cash


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else float(x)
