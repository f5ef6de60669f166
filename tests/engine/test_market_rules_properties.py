"""The books balance under the exchange's rules too: the random scenarios of the accounting properties (candles,
signals, operator orders, risk limits, fees and slippage) with random ``MarketRules`` per symbol. After every
step: every fill is a whole number of steps at a price on the tick and at least the minimums, equity is cash plus
positions plus dust at their marks, a symbol never holds dust beside a position, and cash, fees and realised PnL
are what the fills and trades say."""

from __future__ import annotations

import math
import random

from hypothesis import given

from engine.core.clock import SimClock
from engine.core.rules import MarketRules
from engine.core.trading import TradingCore
from engine.core.types import Fill, OrderRequest, Side
from tests.engine.test_accounting_properties import PROPS, SEEDS, STEP_MS, Scenario, apply_op, scenario


def random_rules(rng: random.Random, symbol: str, price: float, cash: float) -> MarketRules:
    """Rules of the scale of the scenario: a step of 1/1000 to 1/10 of a typical entry, a minimum order of up to
    10% of the cash (often enough to refuse an entry or leave dust)."""
    entry = 0.2 * cash / price
    step = 10.0 ** math.floor(math.log10(entry) - rng.choice((1, 2, 3)))
    least = rng.choice((0.0, rng.uniform(0.0, 0.1) * cash))
    return MarketRules(symbol, amount_step=step, price_tick=10.0 ** math.floor(math.log10(price) - 4),
                       min_amount=step * rng.randint(1, 20), min_notional=least)


def operate(core: TradingCore, op: tuple[str, str, float], i: int, now: int) -> None:
    """The scenario's operator action; a partial sell is of a part of the position's value (a quote amount, as
    /sell takes it), so that what it leaves may be dust."""
    kind, symbol, x = op
    pos = core.portfolio.positions.get(symbol)
    if kind == "sell" and pos is not None:
        value = pos.quantity * core.portfolio.marks[symbol] * min(x, 1.0)
        core.submit_manual(OrderRequest(f"{symbol}-{now}-m{i}-sell", symbol, Side.SELL, "manual", now, notional=value))
    else:
        apply_op(core, op, i, now)


def whole_steps(x: float, step: float) -> bool:
    return abs(round(x / step) * step - x) <= 1e-9 * max(x, step)


def check_fill(fill: Fill, rules: MarketRules) -> None:
    assert whole_steps(fill.quantity, rules.amount_step), (fill, rules)
    assert whole_steps(fill.price, rules.price_tick), (fill, rules)
    assert fill.quantity >= rules.min_quantity * (1 - 1e-12)
    assert fill.quantity * fill.price >= rules.min_notional * (1 - 1e-12)


def check_books(core: TradingCore, sc: Scenario, fills: list[Fill], pnl: float) -> None:
    pf = core.portfolio
    assert pf.cash >= 0.0
    marks = pf.marks
    expected = (pf.cash + sum(p.quantity * marks[s] for s, p in pf.positions.items())
                + sum(d.quantity * marks[s] for s, d in pf.dust.items()))
    assert abs(pf.equity() - expected) <= 1e-9 * max(1.0, abs(expected))
    assert not set(pf.positions) & set(pf.dust)
    assert all(d.quantity > 0.0 for d in pf.dust.values())
    assert abs(math.fsum(f.fee for f in fills) - pf.fees_paid) <= 1e-9 * max(1.0, pf.fees_paid)
    flows = math.fsum(-(f.quantity * f.price + f.fee) if f.side is Side.BUY else f.quantity * f.price - f.fee
                      for f in fills)
    assert abs(sc.cash + flows - pf.cash) <= 1e-9 * sc.cash
    assert abs(pnl - pf.realized_pnl) <= 1e-9 * sc.cash


@PROPS
@given(SEEDS)
def test_books_balance_and_every_fill_keeps_the_rules(seed: int) -> None:
    rng = random.Random(seed)
    sc = scenario(rng)
    rules = {s: random_rules(rng, s, sc.candles[s][0].open, sc.cash) for s in sc.symbols}
    clock = SimClock()
    core = TradingCore(limits=sc.limits, costs=sc.costs, filters=sc.filters, starting_cash=sc.cash, clock=clock,
                       rules=rules)
    fills: list[Fill] = []
    pnl = 0.0
    for i in range(len(sc.candles[sc.symbols[0]])):
        if i in sc.limit_changes:
            core.limits = sc.limit_changes[i]
        for s in sc.symbols:
            candle = sc.candles[s][i]
            clock.set(candle.ts + STEP_MS)
            step = core.on_candle(s, candle, sc.proba[s][i])
            for fill in step.fills:
                check_fill(fill, rules[s])
            fills.extend(step.fills)
            pnl += math.fsum(t.pnl for t in step.trades)
            check_books(core, sc, fills, pnl)
        for op in sc.ops[i]:
            operate(core, op, i, clock.now_ms())
            check_books(core, sc, fills, pnl)
