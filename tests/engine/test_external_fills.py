"""External fills (live trading): the exchange fills the kernel's orders and the ticker's prices trigger its exits,
while the decision kernel stays the one path: ``size`` is its paper sizing, ``apply_fill`` its paper accounting,
``check_exits`` its candle check of the stop, trailing stop and target.

The parity tests run the same candles and signals twice, paper and external (tests/engine/external.py plays the
exchange as the paper kernel fills), and compare every fill, trade (with its tags), event, signal record and
equity per candle, and the kernel's state at the end, to the last bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import kernel as K
from engine.core.events import OrderFilled, PositionClosed, PositionOpened, ProtectiveExitHit
from engine.core.model import SmaCrossModel
from engine.core.risk import RiskLimits
from engine.core.rules import MarketRules
from engine.core.trading import TradingCore, signals_from_proba
from engine.core.types import Action, Candle, ExitOrder, Refusal, Side, SizedOrder
from engine.strategy.loader import load_strategy
from engine.strategy.model import strategy_limits
from tests.engine.external import (
    ALL_IN,
    BTC_RULES,
    PROTECTIVE,
    SYMBOL,
    Run,
    exit_price,
    external_run,
    fill_at_open,
    kernel_state,
    new_core,
    paper_run,
)
from tests.engine.helpers import real_candles

ETH_RULES = MarketRules(SYMBOL, amount_step=0.1, price_tick=0.000001, min_amount=0.1, min_notional=0.01)
BTC = real_candles("BTC_USDT-5m.csv")


def assert_identical(paper: Run, live: Run) -> None:
    assert live.fills == paper.fills
    assert live.trades == paper.trades
    assert live.events == paper.events
    assert live.signals == paper.signals
    assert live.equity == paper.equity  # floats compared exactly
    assert live.exits == paper.exits
    assert live.refused == paper.refused
    for a, b in zip(kernel_state(paper.core), kernel_state(live.core), strict=True):
        np.testing.assert_array_equal(a, b)  # NaN equals NaN here
    assert live.core.pending == paper.core.pending
    assert live.core.entry_tags == paper.core.entry_tags
    assert live.core.state_reason == paper.core.state_reason


def sma_signals(candles: object) -> tuple[np.ndarray, np.ndarray]:
    model = SmaCrossModel(10, 30)
    return signals_from_proba(model.predict_proba(model.features(candles)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("candles_name", "limits", "rules"), [
    ("BTC_USDT-5m.csv", PROTECTIVE, None),
    ("BTC_USDT-5m.csv", PROTECTIVE, BTC_RULES),
    ("BTC_USDT-5m.csv", ALL_IN, BTC_RULES),
    ("ETH_BTC-5m.csv", PROTECTIVE, ETH_RULES),
], ids=["protective", "protective-rules", "all-in-rules", "eth-btc-rules"])
def test_an_external_run_trades_exactly_as_paper(candles_name: str, limits: RiskLimits,
                                                 rules: MarketRules | None) -> None:
    candles = real_candles(candles_name).slice(0, 6000)
    action, confidence = sma_signals(candles)

    paper = paper_run(candles, action, confidence, limits=limits, rules=rules)
    live = external_run(candles, action, confidence, limits=limits, rules=rules)

    assert len(paper.trades) > 40
    if limits is PROTECTIVE:
        reasons = {t.exit_reason for t in paper.trades}
        assert {"signal", "stop_loss", "take_profit", "trailing_stop"} <= reasons, reasons
    assert_identical(paper, live)


def test_a_strategys_tagged_signals_trade_externally_as_on_paper() -> None:
    """The EmaRsi example strategy (its 5 % stop-loss in place of the config's), its tags on the orders and trades."""
    strategy = load_strategy("engine/strategy/examples/ema_rsi.py:EmaRsi", {"fast": "5", "slow": "15"})
    candles = BTC.slice(0, 8000)
    signals = strategy.signals(candles)
    limits = strategy_limits(strategy, PROTECTIVE)
    tags = (signals.enter_tag, signals.exit_tag)

    paper = paper_run(candles, signals.action, signals.confidence, tags, limits)
    live = external_run(candles, signals.action, signals.confidence, tags, limits)

    assert len(paper.trades) > 30
    assert {t.entry_tag for t in paper.trades} == {"ema_cross"}
    assert "ema_cross_down" in {t.exit_tag for t in paper.trades}
    assert_identical(paper, live)


LIMIT_CASES = [PROTECTIVE, ALL_IN, RiskLimits(0.3, 0.5, 1, 0.01, 0.0, 0.02, 0.01, 0.04),
               RiskLimits(0.9, 1, 1, 0.0, 0.015, 0.0, 0.0, 0.2)]


@settings(max_examples=30, deadline=None)
@given(start=st.integers(0, len(BTC) - 400),
       actions=st.lists(st.sampled_from([Action.EXIT, Action.HOLD, Action.HOLD, Action.ENTER]), min_size=50,
                        max_size=300),
       confidence=st.sampled_from([0.55, 0.8, 1.0]), limits=st.sampled_from(LIMIT_CASES),
       rules=st.sampled_from([None, BTC_RULES, MarketRules(SYMBOL, amount_step=0.01, min_notional=1_000.0)]),
       cash=st.sampled_from([10_000.0, 300.0]))
def test_random_signals_trade_externally_as_on_paper(start: int, actions: list[int], confidence: float,
                                                     limits: RiskLimits, rules: MarketRules | None,
                                                     cash: float) -> None:
    candles = BTC.slice(start, start + len(actions))
    action = np.array(actions, dtype=np.int64)
    conf = np.full(len(actions), confidence)
    paper = paper_run(candles, action, conf, limits=limits, rules=rules, cash=cash)
    live = external_run(candles, action, conf, limits=limits, rules=rules, cash=cash)

    assert_identical(paper, live)


# ---------------------------------------------------------------------- what the external mode leaves to the caller

def candle(ts: int, o: float, h: float | None = None, low: float | None = None, c: float | None = None) -> Candle:
    return Candle(ts, o, o if h is None else h, o if low is None else low, o if c is None else c, 1.0)


MIN5 = 300_000
T0 = 1_700_000_100_000 - 1_700_000_100_000 % MIN5


def entered(core: TradingCore, price: float = 100.0) -> None:
    """A position opened by the strategy's entry at ``price``, filled as the exchange would."""
    core.on_signal(SYMBOL, candle(T0, price), Action.ENTER, 1.0)
    order = core.pending[SYMBOL][0]
    done = fill_at_open(core, order, candle(T0 + MIN5, price))
    assert not isinstance(done, Refusal) and done.fills


def test_in_external_mode_the_kernel_fills_nothing_and_triggers_no_exit() -> None:
    core = new_core("exchange")
    entered(core)
    core.on_signal(SYMBOL, candle(T0 + MIN5, 100.0), Action.HOLD, 1.0)
    held = core.portfolio.positions[SYMBOL].quantity
    cash = core.portfolio.cash

    res = core.on_signal(SYMBOL, candle(T0 + 2 * MIN5, 100.0, 120.0, 80.0, 90.0), Action.EXIT, 1.0)
    later = core.on_signal(SYMBOL, candle(T0 + 3 * MIN5, 70.0, 130.0, 60.0, 65.0), Action.EXIT, 1.0)

    assert res.orders and res.orders[0].side is Side.SELL  # the exit is decided, not filled
    assert not res.fills and not later.fills and not later.trades  # far through the stop and the target: no exit
    assert later.signal is not None and later.signal.outcome == "nothing to do: an order is already pending"
    assert core.portfolio.positions[SYMBOL].quantity == held and core.portfolio.cash == cash
    assert core.pending[SYMBOL] == res.orders


def test_a_core_that_fills_orders_some_other_way_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^fills must be 'kernel' \(paper\) or 'exchange' \(live\), not 'broker'$"):
        new_core("broker")


def test_size_is_the_paper_fill_of_the_order_at_that_price() -> None:
    live, paper = new_core("exchange", rules=BTC_RULES), new_core("kernel", rules=BTC_RULES)
    for core in (live, paper):
        core.on_signal(SYMBOL, candle(T0, 30_000.0), Action.ENTER, 1.0)
    order = live.pending[SYMBOL][0]

    sized = live.size(order, 30_123.45)
    filled = paper.on_signal(SYMBOL, candle(T0 + MIN5, 30_123.45), Action.HOLD, 1.0).fills[0]

    assert isinstance(sized, SizedOrder)
    assert (sized.quantity, sized.price) == (filled.quantity, filled.price)
    assert round(sized.quantity / 0.001, 9).is_integer() and sized.quantity * sized.price <= 0.5 * 10_000
    assert live.size(order, 1.0) == SizedOrder(order, sized.quantity, 1.01)  # sized once: that quantity from then on


def test_an_order_below_the_exchanges_minimum_is_refused_by_size_and_order_done_frees_its_slot() -> None:
    core = new_core("exchange", rules=MarketRules(SYMBOL, amount_step=0.001, min_amount=0.1, base="BTC",
                                                   quote="USDT"), cash=22.0)
    core.on_signal(SYMBOL, candle(T0, 100.0), Action.ENTER, 1.0)  # half of 22 USDT: 0.109 BTC at 100, enough
    order = core.pending[SYMBOL][0]

    refusal = core.size(order, 120.0)  # the price has risen by the time it is sent

    assert refusal == Refusal("below_minimum", "0.091 BTC is below the exchange's minimum amount of 0.1 BTC")
    assert core.pending[SYMBOL] == [order]  # until the caller says the order is done
    assert core.order_done(SYMBOL, order.order_id) == order
    assert core.pending == {} and core.s[0, K.P_SIDE] == 0.0
    assert core.order_done(SYMBOL, order.order_id) is None  # twice: harmless
    assert core.size(order, 120.0) == Refusal("not_pending", f"no pending order {order.order_id}")


def test_order_done_frees_the_slot_for_the_next_signal() -> None:
    core = new_core("exchange")
    core.on_signal(SYMBOL, candle(T0, 100.0), Action.ENTER, 1.0)
    order = core.pending[SYMBOL][0]
    assert core.size(order, 100.0)  # sent ...

    core.order_done(SYMBOL, order.order_id)  # ... and rejected, not placed, or cancelled unfilled
    res = core.on_signal(SYMBOL, candle(T0 + MIN5, 101.0), Action.ENTER, 1.0)

    assert res.signal is not None and res.signal.outcome == "order"
    assert [o.order_id for o in res.orders] == [f"{SYMBOL}-{T0 + MIN5}-entry"]
    assert core.portfolio.positions == {} and core.portfolio.cash == 10_000.0


def test_partial_fills_add_up_to_one_position_at_their_average_price() -> None:
    core = new_core("exchange", rules=BTC_RULES)
    core.on_signal(SYMBOL, candle(T0, 100.0), Action.ENTER, 1.0, tag="dip")
    order = core.pending[SYMBOL][0]
    sized = core.size(order, 100.0)
    assert isinstance(sized, SizedOrder) and sized.quantity == 49.925  # 5,000 USDT at 100.05 and its fee, stepped
    parts = [(20.0, 100.0, 2.0), (19.925, 100.2, 1.5), (10.0, 100.5, 1.0)]

    results = []
    for n, (qty, price, fee) in enumerate(parts):
        assert core.pending[SYMBOL] == [order]  # not complete yet
        done = core.apply_fill(SYMBOL, order.order_id, Side.BUY, qty, price, fee, T0 + MIN5 + n, "signal")
        assert not isinstance(done, Refusal)
        results.append(done)

    pos = core.portfolio.positions[SYMBOL]
    cost = sum(q * p for q, p, _ in parts)
    assert core.pending == {}  # the last fill completed the order
    assert pos.quantity == pytest.approx(49.925, rel=1e-15) and pos.avg_price == pytest.approx(cost / 49.925, rel=1e-15)
    assert pos.entry_fee == 4.5 and core.portfolio.fees_paid == 4.5
    assert core.portfolio.cash == pytest.approx(10_000.0 - cost - 4.5, rel=1e-15)
    assert pos.stop_price == pytest.approx(pos.avg_price * 0.99, rel=1e-15)  # from the average, not the first fill
    assert pos.target_price == pytest.approx(pos.avg_price * 1.03, rel=1e-15)
    assert pos.high_water == 100.5 and pos.entry_ts == T0 + MIN5
    opened = [e for r in results for e in r.events if isinstance(e, PositionOpened)]
    assert len(opened) == 1 and opened[0].quantity == 20.0  # the first fill opened it; the others added
    assert [(f.order_id, f.quantity, f.price, f.fee) for r in results for f in r.fills] == \
        [(order.order_id, *part) for part in parts]
    assert core.entry_tags == {SYMBOL: "dip"}
    assert core.portfolio.equity() == pytest.approx(core.portfolio.cash + 49.925 * 100.5, rel=1e-15)


def test_partial_exit_fills_are_trades_of_their_part_and_the_last_closes_the_position() -> None:
    core = new_core("exchange", rules=BTC_RULES)
    core.on_signal(SYMBOL, candle(T0, 100.0), Action.ENTER, 1.0, tag="in")
    buy = core.pending[SYMBOL][0]
    fill_at_open(core, buy, candle(T0 + MIN5, 100.0))
    core.on_signal(SYMBOL, candle(T0 + MIN5, 100.0, c=104.0), Action.EXIT, 1.0, tag="out")
    sell = core.pending[SYMBOL][0]
    sized = core.size(sell, 104.0)
    assert isinstance(sized, SizedOrder) and sized.quantity == 49.925
    entry_fee = core.portfolio.positions[SYMBOL].entry_fee

    first = core.apply_fill(SYMBOL, sell.order_id, Side.SELL, 49.0, 104.0, 5.0, T0 + 2 * MIN5, "signal")
    # 0.925 BTC is left: above the minimums, not dust, still the position
    last = core.apply_fill(SYMBOL, sell.order_id, Side.SELL, 0.925, 103.0, 0.1, T0 + 2 * MIN5 + 1, "signal")

    assert not isinstance(first, Refusal) and not isinstance(last, Refusal)
    assert [t.quantity for t in first.trades + last.trades] == [49.0, 0.925]
    assert {(t.entry_tag, t.exit_tag) for t in first.trades + last.trades} == {("in", "out")}
    assert not any(isinstance(e, PositionClosed) for e in first.events)
    assert [e.quantity for e in last.events if isinstance(e, PositionClosed)] == [0.925]
    assert sum(t.pnl for t in first.trades + last.trades) == pytest.approx(
        49.0 * 104.0 + 0.925 * 103.0 - 49.925 * 100.05 - entry_fee - 5.1, rel=1e-12)
    assert core.portfolio.positions == {} and core.pending == {} and core.portfolio.dust == {}


def test_a_partial_exit_fill_leaving_less_than_the_minimum_is_no_dust_while_the_order_still_fills() -> None:
    core = new_core("exchange", rules=BTC_RULES)
    entered(core)
    core.on_signal(SYMBOL, candle(T0 + MIN5, 100.0), Action.EXIT, 1.0)
    sell = core.pending[SYMBOL][0]
    assert isinstance(core.size(sell, 100.0), SizedOrder)

    core.apply_fill(SYMBOL, sell.order_id, Side.SELL, 49.9, 100.0, 0.0, T0 + 2 * MIN5, "signal")
    assert core.portfolio.positions[SYMBOL].quantity == 0.025  # 2.5 USDT: below 10, but the rest is coming
    core.apply_fill(SYMBOL, sell.order_id, Side.SELL, 0.025, 100.0, 0.0, T0 + 2 * MIN5, "signal")

    assert core.portfolio.positions == {} and core.portfolio.dust == {} and core.pending == {}


def test_a_fill_of_an_order_no_longer_pending_is_booked_and_bad_fills_are_refused() -> None:
    core = new_core("exchange")
    core.on_signal(SYMBOL, candle(T0, 100.0), Action.ENTER, 1.0)
    order = core.pending[SYMBOL][0]
    core.size(order, 100.0)
    core.order_done(SYMBOL, order.order_id)  # cancelled ... then a late fill of it arrives
    before = (core.g.copy(), core.s.copy())

    for args in [(0.0, 100.0, 0.0, "signal"), (1.0, float("nan"), 0.0, "signal"), (1.0, 100.0, -1.0, "signal"),
                 (1.0, 100.0, 0.0, "whim")]:
        refused = core.apply_fill(SYMBOL, order.order_id, Side.BUY, *args, T0 + MIN5)  # type: ignore[arg-type]
        assert isinstance(refused, Refusal) and refused.code == "bad_fill"
    assert isinstance(core.apply_fill("ETHUSDT", "x", Side.BUY, 1.0, 1.0, 0.0, T0, "signal"), Refusal)
    assert core.apply_fill(SYMBOL, "x", Side.SELL, 1.0, 1.0, 0.0, T0, "signal") == Refusal(
        "no_position", f"a sell of 1.0 {SYMBOL} with no {SYMBOL} position held")
    assert np.array_equal(core.g, before[0]) and np.array_equal(core.s, before[1], equal_nan=True)

    late = core.apply_fill(SYMBOL, order.order_id, Side.BUY, 10.0, 100.0, 1.0, T0 + MIN5, "signal")

    assert not isinstance(late, Refusal)
    assert [f.order_id for f in late.fills] == [order.order_id]
    assert [type(e) for e in late.events] == [OrderFilled, PositionOpened]
    assert core.portfolio.positions[SYMBOL].quantity == 10.0 and core.pending == {}


# ---------------------------------------------------------------------- exits on every price

def test_check_exits_triggers_the_stop_at_the_kernels_level_and_not_a_tick_above() -> None:
    core = new_core("exchange", RiskLimits(0.5, 0.6, 1, 0.02, 0.03, 0.0, 0, 0))
    entered(core)
    stop = core.portfolio.positions[SYMBOL].stop_price
    assert stop == 100.05 * 0.98  # the kernel's level: 2 % below the entry's fill price

    assert core.check_exits(SYMBOL, stop * (1 + 1e-12), T0 + 2 * MIN5) is None
    hit = core.check_exits(SYMBOL, stop, T0 + 2 * MIN5 + 1)

    assert isinstance(hit, ExitOrder)
    assert hit.order.order_id == f"{SYMBOL}-{T0 + 2 * MIN5 + 1}-stop_loss" and hit.order.side is Side.SELL
    assert (hit.level, hit.quantity, hit.order.reason) == (stop, core.portfolio.positions[SYMBOL].quantity,
                                                                 "stop_loss")
    assert hit.price == stop * (1 - 0.0005)
    assert hit.event == ProtectiveExitHit(ts=T0 + 2 * MIN5 + 1, symbol=SYMBOL, trigger="stop_loss", level=stop,
                                          fill_price=hit.price)
    assert core.pending[SYMBOL] == [hit.order]  # the exit owns the slot: no second exit, no signal order
    assert core.check_exits(SYMBOL, stop * 0.9, T0 + 2 * MIN5 + 2) is None
    res = core.on_signal(SYMBOL, candle(T0 + 2 * MIN5, stop), Action.EXIT, 1.0)
    assert res.signal is not None and res.signal.outcome == "nothing to do: an order is already pending"


def test_check_exits_follows_the_price_up_for_the_trailing_stop_and_takes_the_target() -> None:
    core = new_core("exchange", RiskLimits(0.5, 0.6, 1, 0.05, 0.10, 0.02, 0, 0))
    entered(core)
    for price in (101.0, 104.0, 103.0):
        assert core.check_exits(SYMBOL, price, T0 + 2 * MIN5) is None
    assert core.portfolio.positions[SYMBOL].high_water == 104.0

    assert core.check_exits(SYMBOL, 104.0 * 0.98 + 1e-9, T0 + 2 * MIN5) is None
    hit = core.check_exits(SYMBOL, 104.0 * 0.98, T0 + 2 * MIN5)
    assert isinstance(hit, ExitOrder) and (hit.order.reason, hit.level) == ("trailing_stop", 104.0 * 0.98)

    other = new_core("exchange", RiskLimits(0.5, 0.6, 1, 0.05, 0.10, 0.0, 0, 0))
    entered(other)
    target = other.portfolio.positions[SYMBOL].target_price
    assert target == 100.05 * 1.10
    assert other.check_exits(SYMBOL, target * (1 - 1e-12), T0 + 2 * MIN5) is None
    hit = other.check_exits(SYMBOL, target * 1.01, T0 + 2 * MIN5)
    assert isinstance(hit, ExitOrder) and (hit.order.reason, hit.level) == ("take_profit", target)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.floats(-0.015, 0.015), min_size=5, max_size=120),
       limits=st.sampled_from([RiskLimits(0.5, 0.6, 1, 0.02, 0.03, 0.01, 0, 0),
                               RiskLimits(0.5, 0.6, 1, 0.03, 0.0, 0.008, 0, 0),
                               RiskLimits(0.5, 0.6, 1, 0.01, 0.02, 0.0, 0, 0)]),
       rules=st.sampled_from([None, BTC_RULES]))
def test_ticker_prices_trigger_the_exits_a_candle_of_each_price_triggers_on_paper(
        steps: list[float], limits: RiskLimits, rules: MarketRules | None) -> None:
    """Each price of a walk as a candle of that one price on paper, and as a ticker price live: the same exit, at
    the same level, on the same price, filled at the same price."""
    live, paper = new_core("exchange", limits, rules), new_core("kernel", limits, rules)
    entered(live, 30_000.0)
    paper.on_signal(SYMBOL, candle(T0, 30_000.0), Action.ENTER, 1.0)
    paper.on_signal(SYMBOL, candle(T0 + MIN5, 30_000.0), Action.HOLD, 1.0)
    live.on_signal(SYMBOL, candle(T0 + MIN5, 30_000.0), Action.HOLD, 1.0)
    price = 30_000.0
    for n, step in enumerate(steps):
        price *= 1.0 + step
        ts = T0 + (n + 2) * MIN5
        on_paper = paper.on_signal(SYMBOL, candle(ts, price), Action.HOLD, 1.0)
        hit = live.check_exits(SYMBOL, price, ts)
        exits = [e for e in on_paper.events if isinstance(e, ProtectiveExitHit)]
        assert (hit is None) == (not exits)
        if hit is not None:
            assert (hit.order.reason, hit.level, hit.price) == (exits[0].trigger, exits[0].level, exits[0].fill_price)
            assert exit_price(live, hit, candle(ts, price)) == hit.price
            booked = live.apply_fill(SYMBOL, hit.order.order_id, Side.SELL, hit.quantity, hit.price,
                                     hit.quantity * hit.price * live.p[K.FEE_RATE], ts, hit.order.reason)
            assert not isinstance(booked, Refusal)
            assert (booked.fills, booked.trades) == (on_paper.fills, on_paper.trades)
        live.on_signal(SYMBOL, candle(ts, price), Action.HOLD, 1.0)
        assert live.portfolio.positions == paper.portfolio.positions  # the high-water mark rose alike
        if hit is not None:
            break
    for a, b in zip(kernel_state(paper), kernel_state(live), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- restart in the middle of an order

def test_a_snapshot_mid_order_restores_the_pending_order_and_its_partial_fill() -> None:
    core, twin = new_core("exchange", rules=BTC_RULES), new_core("exchange", rules=BTC_RULES)
    for c in (core, twin):
        c.on_signal(SYMBOL, candle(T0, 100.0), Action.ENTER, 1.0, tag="dip")
        order = c.pending[SYMBOL][0]
        assert isinstance(c.size(order, 100.0), SizedOrder)
        c.apply_fill(SYMBOL, order.order_id, Side.BUY, 20.0, 100.0, 2.0, T0 + MIN5, "signal")

    saved = json.loads(json.dumps(core.snapshot()))  # as the store keeps it
    restored = new_core("exchange", rules=BTC_RULES)
    restored.restore(saved)

    assert restored.pending == core.pending
    assert restored.portfolio.positions == core.portfolio.positions and restored.entry_tags == {SYMBOL: "dip"}
    rest = restored.size(order, 250.0)
    assert isinstance(rest, SizedOrder) and rest.quantity == 29.925  # what is still to fill, whatever the price
    for c in (restored, twin):
        last = c.apply_fill(SYMBOL, order.order_id, Side.BUY, 29.925, 100.4, 3.0, T0 + MIN5 + 7, "signal")
        assert not isinstance(last, Refusal) and last.fills
    assert restored.pending == {} == twin.pending
    np.testing.assert_array_equal(restored.g, twin.g)
    np.testing.assert_array_equal(restored.s, twin.s)
    assert restored.snapshot() == twin.snapshot()


def test_a_snapshot_with_a_protective_exit_on_its_way_restores_it() -> None:
    core = new_core("exchange")
    entered(core)
    hit = core.check_exits(SYMBOL, 90.0, T0 + 2 * MIN5)
    assert hit is not None

    restored = new_core("exchange")
    restored.restore(json.loads(json.dumps(core.snapshot())))

    assert restored.pending == {SYMBOL: [hit.order]}
    assert restored.check_exits(SYMBOL, 80.0, T0 + 2 * MIN5 + 1) is None  # no second exit
    sized = restored.size(hit.order, 80.0)
    assert isinstance(sized, SizedOrder) and sized.quantity == hit.quantity
    done = restored.apply_fill(SYMBOL, hit.order.order_id, Side.SELL, sized.quantity, 89.9, 1.0, T0 + 2 * MIN5 + 2,
                               "stop_loss")
    assert not isinstance(done, Refusal)
    assert [t.exit_reason for t in done.trades] == ["stop_loss"] and restored.pending == {}


# ---------------------------------------------------------------------- one source, compiled and interpreted

SCRIPT = """
import json, sys
sys.path.insert(0, ".")
from dataclasses import asdict
from engine.core import kernel
from tests.engine.external import external_run, PROTECTIVE, BTC_RULES
from tests.engine.helpers import real_candles
from engine.core.model import SmaCrossModel
from engine.core.trading import signals_from_proba
assert kernel.JITTED == (sys.argv[1] == "1")
candles = real_candles("BTC_USDT-5m.csv").slice(0, 3000)
model = SmaCrossModel(10, 30)
action, confidence = signals_from_proba(model.predict_proba(model.features(candles)))
run = external_run(candles, action, confidence, limits=PROTECTIVE, rules=BTC_RULES)
print(json.dumps({"trades": [asdict(t) for t in run.trades], "equity": run.equity,
                  "s": run.core.s.tolist(), "g": run.core.g.tolist()}))
"""


@pytest.mark.skipif(not K.JITTED, reason="numba is not installed, so there is no compiled kernel to compare")
def test_external_fills_give_the_same_results_compiled_and_interpreted() -> None:
    out = []
    for jit in ("1", "0"):
        done = subprocess.run([sys.executable, "-c", SCRIPT, jit], env={**os.environ, "TRADING_AGENT_JIT": jit},
                              capture_output=True, text=True, check=True, timeout=300)
        out.append(done.stdout)
    assert len(json.loads(out[0])["trades"]) > 10
    assert out[0] == out[1]
