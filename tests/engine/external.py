"""A run of the trading core with external fills beside its paper run, over the same candles and signals.

``external_run`` plays the exchange the way the paper kernel fills: each pending order is sized with
``TradingCore.size`` at the next candle's open and booked with ``apply_fill`` at the price and fee a paper fill pays
(a refusal ends it with ``order_done``); then ``check_exits`` is given the candle's low and then its high (the
kernel's order: the stop side first, then the target, the high-water mark rising with the high only when nothing
triggered), and a triggered exit is booked where the candle check fills it (at its level, or at the open when the
candle gapped through it). ``paper_run`` is the kernel's own run. Both record, per candle, everything the live loop
would persist, so a test compares them field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from engine.core import kernel as K
from engine.core.clock import SimClock
from engine.core.events import EngineEvent, OrderCancelled, ProtectiveExitHit
from engine.core.model import CandleArrays
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.trading import StepResult, TradingCore
from engine.core.types import Action, Candle, ExitOrder, Fill, OrderRequest, Refusal, SignalRecord, Trade

SYMBOL = "BTCUSDT"
COSTS = Costs(fee_bps=10, slippage_bps=5)
FILTERS = SignalFilters(min_confidence=0.6, cooldown_ms=30 * 60_000)
PROTECTIVE = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.01,
                        take_profit_pct=0.03, trailing_stop_pct=0.02, max_daily_loss_pct=0.03,
                        max_drawdown_pct=0.10)
ALL_IN = RiskLimits(1, 1, 1, 0, 0, 0, 0, 0)
BTC_RULES = MarketRules(SYMBOL, amount_step=0.001, price_tick=0.01, min_amount=0.001, min_notional=10.0,
                        base="BTC", quote="USDT")


@dataclass
class Run:
    """What one run produced: per candle its events (``comparable``), signal record and equity; all fills and
    trades in order; and the core at the end."""

    core: TradingCore
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    events: list[list[object]] = field(default_factory=list)
    signals: list[SignalRecord | None] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    exits: int = 0  # protective exits booked
    refused: int = 0  # orders the exchange's rules (or the cash) stopped

    def take(self, res: StepResult, into: list[object]) -> None:
        self.fills += res.fills
        self.trades += res.trades
        into += [comparable(e) for e in res.events]


def comparable(event: EngineEvent | tuple[str, str, str]) -> object:
    """An event as both runs must give it: a protective exit by its trigger and level (live announces it before its
    fill, with the price it expects), a withdrawn order by its id and words."""
    if isinstance(event, ProtectiveExitHit):
        return ("exit", event.symbol, event.trigger, event.level)
    if isinstance(event, OrderCancelled):
        return ("cancelled", event.order_id, event.reason)
    return event


def new_core(fills: str, limits: RiskLimits = PROTECTIVE, rules: MarketRules | None = None,
             cash: float = 10_000.0) -> TradingCore:
    return TradingCore(limits=limits, costs=COSTS, filters=FILTERS, starting_cash=cash, clock=SimClock(),
                       rules=None if rules is None else {SYMBOL: rules}, fills=fills)


def tag_of(action: int, k: int, tags: tuple[np.ndarray | None, np.ndarray | None]) -> str | None:
    source = tags[0] if action == Action.ENTER else tags[1] if action == Action.EXIT else None
    return None if source is None or source[k] is None else str(source[k])


def paper_run(candles: CandleArrays, action: np.ndarray, confidence: np.ndarray,
              tags: tuple[np.ndarray | None, np.ndarray | None] = (None, None), limits: RiskLimits = PROTECTIVE,
              rules: MarketRules | None = None, cash: float = 10_000.0) -> Run:
    run = Run(new_core("kernel", limits, rules, cash))
    for k in range(len(candles)):
        act = int(action[k])
        res = run.core.on_signal(SYMBOL, candles.candle(k), Action(act), float(confidence[k]), tag_of(act, k, tags))
        events: list[object] = []
        run.take(res, events)
        run.exits += sum(isinstance(e, ProtectiveExitHit) for e in res.events)
        run.refused += sum(isinstance(e, OrderCancelled) for e in res.events)
        run.events.append(sorted(events, key=repr))
        run.signals.append(res.signal)
        run.equity.append(res.equity)
    return run


def fill_at_open(core: TradingCore, order: OrderRequest, candle: Candle) -> StepResult | Refusal:
    """The exchange fills ``order`` at ``candle``'s open: sized by the core at that price, filled at the price and
    fee a paper fill pays; a refusal is the order's end (``order_done``)."""
    sized = core.size(order, candle.open)
    if isinstance(sized, Refusal):
        core.order_done(order.symbol, order.order_id)
        return sized
    fee = sized.quantity * sized.price * core.p[K.FEE_RATE]
    return core.apply_fill(order.symbol, order.order_id, order.side, sized.quantity, sized.price, fee, candle.ts,
                           order.reason)


def exit_price(core: TradingCore, exit_: ExitOrder, candle: Candle) -> float:
    """Where the exchange fills a protective exit the candle triggered: at its level, or at the open when the candle
    opened through it; less slippage, on the tick (the paper kernel's fill of it)."""
    level = exit_.level
    touched = max(candle.open, level) if exit_.order.reason == "take_profit" else min(candle.open, level)
    return float(K.to_step(touched * (1.0 - core.p[K.SLIP_RATE]), core.s[core.index[SYMBOL], K.PRICE_TICK]))


def external_run(candles: CandleArrays, action: np.ndarray, confidence: np.ndarray,
                 tags: tuple[np.ndarray | None, np.ndarray | None] = (None, None), limits: RiskLimits = PROTECTIVE,
                 rules: MarketRules | None = None, cash: float = 10_000.0) -> Run:
    run = Run(new_core("exchange", limits, rules, cash))
    core = run.core
    for k in range(len(candles)):
        candle = candles.candle(k)
        events: list[object] = []
        pending = core.pending.get(SYMBOL)
        if pending:
            done = fill_at_open(core, pending[0], candle)
            if isinstance(done, Refusal):
                run.refused += done.code == "below_minimum"
                if done.code == "below_minimum":  # paper withdraws it with these words; an empty fill, silently
                    events.append(("cancelled", pending[0].order_id, done.reason))
            else:
                run.take(done, events)
        for price in (candle.low, candle.high):
            exit_ = core.check_exits(SYMBOL, price, candle.ts)
            if exit_ is not None:
                run.exits += 1
                events.append(comparable(exit_.event))
                px = exit_price(core, exit_, candle)
                booked = core.apply_fill(SYMBOL, exit_.order.order_id, exit_.order.side, exit_.quantity, px,
                                         exit_.quantity * px * core.p[K.FEE_RATE], candle.ts, exit_.order.reason)
                assert not isinstance(booked, Refusal), booked
                run.take(booked, events)
                break
        act = int(action[k])
        res = core.on_signal(SYMBOL, candle, Action(act), float(confidence[k]), tag_of(act, k, tags))
        run.take(res, events)
        run.events.append(sorted(events, key=repr))
        run.signals.append(res.signal)
        run.equity.append(res.equity)
    return run


PENDING_DETAIL = [K.P_KIND, K.P_AMOUNT, K.P_TS, K.P_REASON]


def kernel_state(core: TradingCore) -> tuple[np.ndarray, np.ndarray]:
    """The core's kernel arrays, with what an empty pending slot last held set aside (paper leaves the order's size
    there, live what it counted down to; neither is read again)."""
    s = core.s.copy()
    idle = s[:, K.P_SIDE] == 0.0
    for col in PENDING_DETAIL:
        s[idle, col] = 0.0
    return core.g.copy(), s


def untagged(trades: list[Trade]) -> list[Trade]:
    return [replace(t, entry_tag=None, exit_tag=None) for t in trades]
