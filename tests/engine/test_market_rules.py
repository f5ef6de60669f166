"""The exchange's rules in the paper broker and the decision kernel (``MarketRules``): quantities floored to the
amount step and prices rounded to the tick, orders below a minimum refused before they are placed (with the rule
and the numbers), fills below one that do not happen, dust left by a sell, and no change at all without rules.
The same kernel decides live (``TradingCore.on_signal``) and in the backtest (``run_series``): both are checked."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core import kernel as K
from engine.core.broker import PaperBroker
from engine.core.clock import SimClock
from engine.core.events import OrderCancelled, PositionClosed
from engine.core.model import SmaCrossModel
from engine.core.outcomes import Outcome
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules, plain
from engine.core.trading import TradingCore
from engine.core.types import Action, Candle, OrderRequest, Refusal, Side
from tests.engine.helpers import real_candles
from tests.sample import sample_path

SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000
STEP = 300_000
RULES = MarketRules(SYMBOL, amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_notional=5.0, base="BTC",
                    quote="USDT")
FREE = RiskLimits(position_fraction=0.2, max_position_fraction=1.0, max_total_exposure=1.0, stop_loss_pct=0.0,
                  take_profit_pct=0.0, trailing_stop_pct=0.0, max_daily_loss_pct=0.0, max_drawdown_pct=0.0)


def candle(k: int, price: float) -> Candle:
    return Candle(T0 + k * STEP, price, price, price, price, 1.0)


def core_at(price: float = 30_000.0, *, rules: MarketRules | None = RULES, cash: float = 10_000.0,
            costs: Costs = Costs(fee_bps=10)) -> TradingCore:
    """A core that has seen one candle at ``price`` (a mark and a last candle)."""
    core = TradingCore(limits=FREE, costs=costs, filters=SignalFilters(0.6, 0), starting_cash=cash,
                       clock=SimClock(T0), rules=None if rules is None else {SYMBOL: rules})
    core.on_signal(SYMBOL, candle(0, price), Action.HOLD, 1.0)
    return core


def order(side: Side, k: int = 0, *, notional: float | None = None, quantity: float | None = None) -> OrderRequest:
    return OrderRequest(f"{SYMBOL}-{k}-{side}", SYMBOL, side, "manual", T0 + k * STEP, quantity=quantity,
                        notional=notional)


def placed(core: TradingCore, o: OrderRequest) -> None:
    assert core.submit_manual(o) is None


def on_the_step(quantity: float, step: float) -> bool:
    """``quantity`` is a whole number of steps, and the float nearest its decimal (as the exchange writes it)."""
    decimals = max(0, -math.floor(math.log10(step)))
    return round(quantity / step) * step == pytest.approx(quantity, rel=1e-12) and float(
        f"{quantity:.{decimals}f}") == quantity


# ---------------------------------------------------------------- fills


def test_a_buy_is_floored_to_the_step_and_prices_go_to_the_tick_against_the_trader() -> None:
    core = core_at(30_000.37, costs=Costs(fee_bps=10, slippage_bps=1))
    placed(core, order(Side.BUY, notional=1_000.0))
    (buy,) = core.on_signal(SYMBOL, candle(1, 30_000.37), Action.HOLD, 1.0).fills
    assert buy.price == 30_003.38  # 30,003.370037 with slippage, up to the 0.01 tick
    assert buy.quantity == 0.03329  # 1,000 / (30,003.38 * 1.001) = 0.0332970…, down to the step
    assert core.portfolio.positions[SYMBOL].quantity == 0.03329
    placed(core, order(Side.SELL, 1))
    (sell,) = core.on_signal(SYMBOL, candle(2, 30_100.55), Action.HOLD, 1.0).fills
    assert sell.price == 30_097.53  # 30,097.539945, down to the tick
    assert sell.quantity == 0.03329 and SYMBOL not in core.portfolio.positions and not core.portfolio.dust


def test_without_rules_and_with_none_a_backtest_is_exactly_as_before() -> None:
    candles = real_candles("BTC_USDT-5m.csv")
    limits = RiskLimits(0.5, 0.6, 1, 0.02, 0.03, 0.01, 0.02, 0.05)
    base = BacktestConfig(symbol=SYMBOL, limits=limits, costs=Costs(10, 5), filters=SignalFilters(0.6, 3_600_000))
    before = run_backtest(candles, SmaCrossModel(10, 30), base)
    for config in (BacktestConfig(**{**asdict_shallow(base), "rules": MarketRules.none(SYMBOL)}),
                   BacktestConfig(**{**asdict_shallow(base), "rules": MarketRules.none(SYMBOL),
                                     "step_every_candle": True})):
        after = run_backtest(candles, SmaCrossModel(10, 30), config)
        assert after.trades == before.trades and len(before.trades) > 20
        assert np.array_equal(after.equity, before.equity) and after.dust == 0.0


def asdict_shallow(config: BacktestConfig) -> dict[str, object]:
    return {name: getattr(config, name) for name in BacktestConfig.__dataclass_fields__}


def test_rules_that_bite_change_the_backtest_and_every_trade_keeps_them() -> None:
    candles = real_candles("BTC_USDT-5m.csv")
    rules = MarketRules(SYMBOL, amount_step=0.001, price_tick=0.1, min_amount=0.002, min_notional=1_950.0,
                        base="BTC", quote="USDT")
    config = BacktestConfig(symbol=SYMBOL, limits=RiskLimits(0.2, 0.5, 1, 0.02, 0.03, 0, 0, 0),
                            costs=Costs(10, 5), filters=SignalFilters(0.6, 0))
    free = run_backtest(candles, SmaCrossModel(10, 30), config)
    ruled = run_backtest(candles, SmaCrossModel(10, 30), BacktestConfig(**{**asdict_shallow(config), "rules": rules}))
    stepped = run_backtest(candles, SmaCrossModel(10, 30),
                           BacktestConfig(**{**asdict_shallow(config), "rules": rules, "step_every_candle": True}))
    assert ruled.trades == stepped.trades and np.array_equal(ruled.equity, stepped.equity)  # one kernel
    assert ruled.trades != free.trades and ruled.trades
    for t in ruled.trades:
        assert on_the_step(t.quantity, rules.amount_step) and t.quantity >= rules.min_amount
        assert t.quantity * t.exit_price >= rules.min_notional
        assert round(t.exit_price / rules.price_tick) * rules.price_tick == pytest.approx(t.exit_price, rel=1e-12)


# ---------------------------------------------------------------- refused before placed


@pytest.mark.parametrize(("size", "code", "reason"), [
    ({"notional": 1.0}, "below_minimum", "1 USDT is below the exchange's minimum order of 5 USDT"),
    ({"notional": 5.0}, "below_minimum",
     "5 USDT fills only 0.00016 BTC at 30000 (4.8 USDT), below the exchange's minimum order of 5 USDT"),
    ({"quantity": 0.0000001}, "precision", "0.0000001 BTC has more decimals than BTCUSDT allows (step 0.00001)"),
    ({"quantity": 0.00005}, "below_minimum", "0.00005 BTC is below the exchange's minimum amount of 0.0001 BTC"),
    ({"quantity": 0.00015}, "below_minimum",
     "0.00015 BTC at 30000 is 4.5 USDT, below the exchange's minimum order of 5 USDT"),
])
def test_a_buy_that_breaks_a_rule_is_refused_with_the_rule_and_the_numbers(size: dict[str, float], code: str,
                                                                          reason: str) -> None:
    core = core_at()
    before = core.snapshot()
    assert core.submit_manual(order(Side.BUY, notional=size.get("notional"), quantity=size.get("quantity"))) == Refusal(
        code, reason)
    assert core.snapshot() == before and core.pending == {}


def test_a_buy_within_the_rules_is_placed_and_risk_limits_still_come_first() -> None:
    core = core_at()
    assert core.check_manual(order(Side.BUY, notional=6.0)) is None
    assert core.check_manual(order(Side.BUY, quantity=0.0002)) is None
    too_much = core.check_manual(order(Side.BUY, notional=20_000.0))
    assert too_much is not None and too_much.code == "limit"


def test_a_sell_or_close_the_exchange_would_refuse_is_refused() -> None:
    core = core_at()
    placed(core, order(Side.BUY, notional=10.0))  # 0.00033 BTC
    core.on_signal(SYMBOL, candle(1, 30_000.0), Action.HOLD, 1.0)
    assert core.portfolio.positions[SYMBOL].quantity == 0.00033
    assert core.check_manual(order(Side.SELL, 1, notional=2.0)) == Refusal(
        "below_minimum", "2 USDT is below the exchange's minimum order of 5 USDT")
    assert core.check_manual(order(Side.SELL, 1, quantity=0.000111)) == Refusal(
        "precision", "0.000111 BTC has more decimals than BTCUSDT allows (step 0.00001)")
    assert core.check_manual(order(Side.SELL, 1, quantity=1.0)) is None  # more than held: all of it
    core.on_signal(SYMBOL, candle(2, 10_000.0), Action.HOLD, 1.0)  # the position is now worth 3.30 USDT
    expected = Refusal("below_minimum",
                       "0.00033 BTC at 10000 is 3.3 USDT, below the exchange's minimum order of 5 USDT")
    assert core.check_close(SYMBOL, T0 + 2 * STEP) == expected
    assert core.close_position(SYMBOL, T0 + 2 * STEP) == expected
    assert core.check_manual(order(Side.SELL, 2)) == expected
    # the strategy's exit is not ordered either, and its record says why
    record = core.on_signal(SYMBOL, candle(3, 10_000.0), Action.EXIT, 0.9).signal
    assert record is not None and record.outcome == f"refused: {expected.reason}" and core.pending == {}


def test_an_automatic_entry_too_small_for_the_market_is_not_ordered() -> None:
    core = core_at(cash=20.0)  # an entry is 20% of 20 USDT: 4 USDT
    step = core.on_signal(SYMBOL, candle(1, 30_000.0), Action.ENTER, 0.9)
    assert step.orders == [] and core.pending == {}
    assert int(core._head[K.H_OUTCOME]) == Outcome.BELOW_MIN
    reason = "0.00013 BTC at 30000 is 3.9 USDT, below the exchange's minimum order of 5 USDT"
    assert step.signal is not None and step.signal.outcome == f"refused: {reason}"
    assert core.would(SYMBOL, Action.ENTER, T0, entry_gates_only=True).refusal() == Refusal("below_minimum", reason)
    # an operator may still buy what the market allows
    assert core.check_manual(order(Side.BUY, 1, notional=6.0)) is None


# ---------------------------------------------------------------- fills that do not happen


def test_a_fill_below_the_minimum_does_not_happen_and_says_why_live_and_in_the_backtest() -> None:
    core = core_at()
    placed(core, order(Side.BUY, notional=40.0))
    core.on_signal(SYMBOL, candle(1, 30_000.0), Action.HOLD, 1.0)
    held = core.portfolio.positions[SYMBOL].quantity
    sell = order(Side.SELL, 1, quantity=0.0002)  # 6 USDT now
    placed(core, sell)
    backtest = clone(core)
    step = core.on_signal(SYMBOL, candle(2, 20_000.0), Action.HOLD, 1.0)  # opens at 20,000: 4 USDT
    assert step.fills == [] and step.trades == [] and core.pending == {}
    assert core.portfolio.positions[SYMBOL].quantity == held
    (event,) = step.events
    assert event == OrderCancelled(ts=T0 + 2 * STEP, order_id=sell.order_id, symbol=SYMBOL, side="sell",
                                   by="exchange rules", paper=True,
                                   reason="0.0002 BTC at 20000 is 4 USDT, below the exchange's minimum order of 5 USDT")
    run_one(backtest, candle(2, 20_000.0))
    np.testing.assert_array_equal(backtest.s, core.s)
    np.testing.assert_array_equal(backtest.g, core.g)


def clone(core: TradingCore) -> TradingCore:
    twin = TradingCore(limits=core.limits, costs=core.costs, filters=core.filters, starting_cash=core.starting_cash,
                       clock=core.clock, rules=core.rules)
    twin.restore(core.snapshot())
    return twin


def run_one(core: TradingCore, c: Candle, action: Action = Action.HOLD) -> None:
    core.run_series(SYMBOL, np.array([c.ts], dtype=np.int64), np.array([c.open]), np.array([c.high]),
                    np.array([c.low]), np.array([c.close]), np.array([int(action)], dtype=np.int64), np.array([1.0]))


def test_a_stop_below_the_minimum_does_not_sell_and_the_position_stays() -> None:
    core = core_at()
    core.limits = RiskLimits(0.2, 1, 1, stop_loss_pct=0.5, take_profit_pct=0, trailing_stop_pct=0,
                             max_daily_loss_pct=0, max_drawdown_pct=0)
    placed(core, order(Side.BUY, notional=8.0))
    core.on_signal(SYMBOL, candle(1, 30_000.0), Action.HOLD, 1.0)
    position = core.portfolio.positions[SYMBOL]
    step = core.on_signal(SYMBOL, candle(2, 10_000.0), Action.HOLD, 1.0)  # through the stop: 2.66 USDT left
    assert step.fills == [] and core.portfolio.positions[SYMBOL] == position


# ---------------------------------------------------------------- dust


def check_books(core: TradingCore) -> None:
    """Equity is cash, positions and dust at their marks; a symbol has dust only without a position."""
    pf = core.portfolio
    marks = pf.marks
    expected = (pf.cash + sum(p.quantity * marks[s] for s, p in pf.positions.items())
                + sum(d.quantity * marks[s] for s, d in pf.dust.items()))
    assert pf.equity() == pytest.approx(expected, rel=1e-12)
    assert not set(pf.positions) & set(pf.dust)


def test_a_sell_that_leaves_less_than_the_minimum_closes_the_position_and_keeps_dust() -> None:
    core = core_at()
    placed(core, order(Side.BUY, notional=1_000.0))
    (buy,) = core.on_signal(SYMBOL, candle(1, 30_000.0), Action.HOLD, 1.0).fills
    assert buy.quantity == 0.0333
    placed(core, order(Side.SELL, 1, notional=998.0))  # 0.033266… BTC, floored: 0.03326; 0.00004 would remain
    step = core.on_signal(SYMBOL, candle(2, 30_000.0), Action.HOLD, 1.0)
    (sell,) = step.fills
    (trade,) = step.trades
    assert sell.quantity == trade.quantity == 0.03326
    assert [type(e) for e in step.events].count(PositionClosed) == 1
    assert core.portfolio.positions == {}
    dust = core.portfolio.dust[SYMBOL]
    assert dust.quantity == 0.00004 and dust.avg_price == 30_000.0
    assert PaperBroker(core).balances() == {"cash": core.portfolio.cash, SYMBOL: 0.00004}
    check_books(core)
    before = core.portfolio.equity()
    core.on_signal(SYMBOL, candle(3, 31_000.0), Action.HOLD, 1.0)
    assert core.portfolio.equity() == pytest.approx(before + 0.00004 * 1_000.0, rel=1e-12)  # valued at the mark
    # a later buy adds the dust to the new position, at the dust's own cost
    placed(core, order(Side.BUY, 3, notional=100.0))
    (again,) = core.on_signal(SYMBOL, candle(4, 31_000.0), Action.HOLD, 1.0).fills
    position = core.portfolio.positions[SYMBOL]
    assert again.quantity == 0.00322 and position.quantity == 0.00326 and not core.portfolio.dust
    assert position.avg_price == pytest.approx((0.00004 * 30_000 + again.quantity * 31_000) / position.quantity)
    # and goes with it: the books close flat, what was realised being the change in equity
    placed(core, order(Side.SELL, 4))
    (last,) = core.on_signal(SYMBOL, candle(5, 31_000.0), Action.HOLD, 1.0).fills
    assert last.quantity == 0.00326 and core.portfolio.positions == {} and not core.portfolio.dust
    check_books(core)
    assert core.portfolio.realized_pnl == pytest.approx(core.portfolio.equity() - 10_000.0, abs=1e-9)


def test_a_sell_of_everything_sells_the_whole_steps_held_and_leaves_the_rest_as_dust() -> None:
    """A position off the step (bought before the market's rules were known: a restored snapshot) sells the largest
    whole number of steps; the rest is dust, at the position's cost."""
    core = core_at(rules=None)
    placed(core, order(Side.BUY, notional=1_000.0))
    core.on_signal(SYMBOL, candle(1, 30_000.0), Action.HOLD, 1.0)
    held = core.portfolio.positions[SYMBOL].quantity
    assert held == pytest.approx(0.0333000333, rel=1e-9)
    core.set_rules(RULES)
    placed(core, order(Side.SELL, 1))
    step = core.on_signal(SYMBOL, candle(2, 31_000.0), Action.HOLD, 1.0)
    (sell,) = step.fills
    assert sell.quantity == 0.0333 and core.portfolio.positions == {}
    dust = core.portfolio.dust[SYMBOL]
    assert dust.quantity == pytest.approx(held - 0.0333, rel=1e-9) and dust.avg_price == 30_000.0
    check_books(core)
    unrealised = (dust.mark_price - dust.avg_price) * dust.quantity - dust.fee
    assert core.portfolio.realized_pnl + unrealised == pytest.approx(core.portfolio.equity() - 10_000.0, abs=1e-9)


def test_dust_is_left_the_same_live_and_in_the_backtest() -> None:
    core = core_at()
    placed(core, order(Side.BUY, notional=1_000.0))
    core.on_signal(SYMBOL, candle(1, 30_000.0), Action.HOLD, 1.0)
    placed(core, order(Side.SELL, 1, notional=998.0))
    backtest = clone(core)
    core.on_signal(SYMBOL, candle(2, 30_000.0), Action.HOLD, 1.0)
    run_one(backtest, candle(2, 30_000.0))
    np.testing.assert_array_equal(backtest.s, core.s)
    np.testing.assert_array_equal(backtest.g, core.g)
    assert backtest.portfolio.dust == core.portfolio.dust and core.portfolio.dust


# ---------------------------------------------------------------- words and the kernel modes


def test_numbers_in_the_words_are_plain() -> None:
    assert [plain(x) for x in (1.0, 5.0, 4.99499999, 1e-7, 0.00001, 30_000.0, 0.12345000000000001)] == [
        "1", "5", "4.995", "0.0000001", "0.00001", "30000", "0.12345"]


SCRIPT = """
import json, sys
from dataclasses import asdict
from engine.backtest import BacktestConfig, run_backtest
from engine.core import kernel
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.feeds.csvio import read_csv
assert not kernel.JITTED
rules = MarketRules(**json.loads(sys.argv[2]))
config = BacktestConfig(symbol="BTCUSDT", limits=RiskLimits(0.2, 0.5, 1, 0.02, 0.03, 0, 0, 0), costs=Costs(10, 5),
                        filters=SignalFilters(0.6, 0), rules=rules)
r = run_backtest(read_csv(sys.argv[1]), SmaCrossModel(10, 30), config)
print(json.dumps({"trades": [asdict(t) for t in r.trades], "equity": [float(x) for x in r.equity]}))
"""


@pytest.mark.skipif(not K.JITTED, reason="numba is not installed, so there is no compiled kernel to compare")
def test_compiled_and_interpreted_kernels_agree_exactly_under_rules() -> None:
    rules = MarketRules(SYMBOL, amount_step=0.001, price_tick=0.1, min_amount=0.002, min_notional=1_950.0,
                        base="BTC", quote="USDT")
    name = "BTC_USDT-5m.csv"
    compiled = run_backtest(real_candles(name), SmaCrossModel(10, 30),
                            BacktestConfig(symbol=SYMBOL, limits=RiskLimits(0.2, 0.5, 1, 0.02, 0.03, 0, 0, 0),
                                           costs=Costs(10, 5), filters=SignalFilters(0.6, 0), rules=rules))
    env = {**os.environ, "TRADING_AGENT_JIT": "0"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(sample_path(name)), json.dumps(asdict(rules))], env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    interpreted = json.loads(out.stdout)
    assert [asdict(t) for t in compiled.trades] == interpreted["trades"] and compiled.trades
    assert [float(x) for x in compiled.equity] == interpreted["equity"]
