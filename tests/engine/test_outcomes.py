"""One outcome table: every kernel outcome code, reached for real, gives the same result live (one step), in the
backtest (``run_series`` over the same candle), in the prediction ``/signal`` and operator checks use
(``TradingCore.would`` / ``outcomes.decide``), the same words in the signal record and in a refusal, and the
same in the chat (``/signal`` rendered by the bot over the facade). The exchange's rules (``MarketRules``) give
two of the codes: BELOW_MIN (an automatic entry too small for the market) and PRECISION (an operator's quantity
with too many decimals)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bot.render.views import signal as render_signal
from engine.core import kernel as K
from engine.core.clock import SimClock
from engine.core.model import SmaCrossModel
from engine.core.outcomes import ENTRY_GATES, REFUSAL_CODES, RULE_OUTCOMES, Decision, Outcome, decide, sizing
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.trading import TradingCore
from engine.core.types import Action, Candle, OrderRequest, Refusal, RiskState, Side
from engine.events import EventBus
from engine.facade import EngineFacade
from engine.feeds.replay import ReplayFeed
from engine.loop import LiveEngine
from engine.store.repo import Store
from tests.engine.helpers import real_candles

SYMBOL = "XUSDT"
T0 = 1_700_000_000_000
STEP = 300_000
LIMITS = RiskLimits(stop_loss_pct=0.0, max_daily_loss_pct=0.0, max_drawdown_pct=0.0)  # nothing moves on its own


def candle(k: int, price: float = 100.0) -> Candle:
    return Candle(T0 + k * STEP, price, price, price, price, 1.0)


def fresh_core() -> TradingCore:
    core = TradingCore(limits=LIMITS, costs=Costs(fee_bps=10), filters=SignalFilters(0.6, 30 * 60_000),
                       starting_cash=10_000, clock=SimClock(T0))
    core.on_signal(SYMBOL, candle(0), Action.HOLD, 1.0)  # the symbol has a row, a mark and a last candle
    return core


def clone(core: TradingCore) -> TradingCore:
    twin = TradingCore(limits=core.limits, costs=core.costs, filters=core.filters, starting_cash=core.starting_cash,
                       clock=core.clock, rules=core.rules)
    twin.restore(core.snapshot())
    return twin


def holding(core: TradingCore) -> None:
    core.submit_manual(OrderRequest("buy-1", SYMBOL, Side.BUY, "manual", T0, notional=1_000.0))
    core.on_signal(SYMBOL, candle(1), Action.HOLD, 1.0)
    assert SYMBOL in core.portfolio.positions


def halted(core: TradingCore) -> None:
    core.g[K.STATE] = K.HALTED


def paused(core: TradingCore) -> None:
    core.paused = True


def stale(core: TradingCore) -> None:
    core.stale.add(SYMBOL)


def cooling(core: TradingCore) -> None:
    core.s[core.index[SYMBOL], K.COOL_UNTIL] = float(T0 + 100 * STEP)


TINY = MarketRules(SYMBOL, amount_step=0.001, min_amount=0.01, min_notional=5_000.0, base="X", quote="USDT")


def tiny_market(core: TradingCore) -> None:
    """An entry (20% of 10,000 at 100) is 2,000 USDT: below this market's minimum order of 5,000."""
    core.set_rules(TINY)


# outcome -> (how to get there, the signal on the next candle). PENDING and PRECISION are reached by an operator
# only: a candle's step fills the pending order at its open before it decides, and the strategy's own sizes are
# floored to the amount step (both checked below).
SCENARIOS: dict[Outcome, tuple[Callable[[TradingCore], None] | None, Action, float]] = {
    Outcome.HOLD: (None, Action.HOLD, 1.0),
    Outcome.LOW_CONFIDENCE: (None, Action.ENTER, 0.5),
    Outcome.NO_POSITION: (None, Action.EXIT, 0.9),
    Outcome.EXIT_ORDER: (holding, Action.EXIT, 0.9),
    Outcome.IN_POSITION: (holding, Action.ENTER, 0.9),
    Outcome.PAUSED: (paused, Action.ENTER, 0.9),
    Outcome.RISK_STATE: (halted, Action.ENTER, 0.9),
    Outcome.STALE: (stale, Action.ENTER, 0.9),
    Outcome.COOLDOWN: (cooling, Action.ENTER, 0.9),
    Outcome.ENTRY_ORDER: (None, Action.ENTER, 0.9),
    Outcome.BELOW_MIN: (tiny_market, Action.ENTER, 0.9),
}
OPERATOR_ONLY = {Outcome.PENDING, Outcome.PRECISION}  # a quantity is the operator's: the strategy's are floored


def test_the_table_covers_every_kernel_code() -> None:
    kernel_codes = {v for k, v in vars(K).items() if k.startswith("O_")}
    assert {int(o) for o in Outcome} == kernel_codes and len(kernel_codes) == 13
    assert set(REFUSAL_CODES) == set(Outcome)
    assert set(SCENARIOS) | OPERATOR_ONLY == set(Outcome)


@pytest.mark.parametrize("outcome", list(SCENARIOS), ids=lambda o: o.name)
def test_live_backtest_and_prediction_agree_on_every_outcome(outcome: Outcome) -> None:
    prepare, action, confidence = SCENARIOS[outcome]
    core = fresh_core()
    if prepare is not None:
        prepare(core)
    nxt = candle(2)
    i = core.index[SYMBOL]
    predicted = decide(core.g, core.s, core.p, i, nxt.ts, int(action), confidence)

    live = clone(core)
    step = live.on_signal(SYMBOL, nxt, action, confidence)
    backtest = clone(core)
    _, equity, _ = backtest.run_series(SYMBOL, np.array([nxt.ts], dtype=np.int64), np.array([nxt.open]),
                                       np.array([nxt.high]), np.array([nxt.low]), np.array([nxt.close]),
                                       np.array([int(action)], dtype=np.int64), np.array([confidence]))

    assert Outcome(int(live._head[K.H_OUTCOME])) is outcome is predicted
    np.testing.assert_array_equal(backtest.s, live.s)  # the same order queued (or none), the same position
    np.testing.assert_array_equal(backtest.g, live.g)
    assert float(equity[-1]) == step.equity
    assert step.signal is not None
    size = None
    if outcome in RULE_OUTCOMES:  # the words name the rule and the numbers of the strategy's own order
        size = sizing(live.g, live.s, live.p, i, K.BUY, K.OWN_SIZE, 0.0, live.rules_for(SYMBOL))
    words = Decision(outcome, SYMBOL, confidence, 0.6, core.state, size).record_text()
    assert step.signal.outcome == words
    assert (words == "order") == outcome.orders == bool(step.orders)


@pytest.mark.parametrize("outcome", [Outcome.PAUSED, Outcome.RISK_STATE, Outcome.STALE, Outcome.COOLDOWN],
                         ids=lambda o: o.name)
def test_an_entry_gate_reads_the_same_in_the_record_in_signal_and_for_an_operator(outcome: Outcome) -> None:
    prepare, action, confidence = SCENARIOS[outcome]
    core = fresh_core()
    assert prepare is not None
    prepare(core)
    record = core.on_signal(SYMBOL, candle(2), action, confidence).signal
    assert record is not None
    gate = core.would(SYMBOL, Action.ENTER, candle(2).ts, entry_gates_only=True)
    refusal = gate.refusal()
    assert gate.outcome is outcome and refusal is not None and refusal.code == REFUSAL_CODES[outcome]
    assert record.outcome == f"refused: {refusal.reason}"  # /signal's reason is the record's
    buy = OrderRequest("op", SYMBOL, Side.BUY, "manual", candle(2).ts, notional=100.0)
    operator = core.check_manual(buy)
    if outcome in (Outcome.PAUSED, Outcome.COOLDOWN):  # they stop automatic entries only
        assert operator is None
    else:
        assert operator == refusal


def test_an_order_already_pending_reads_the_same_for_a_buy_a_sell_a_close_and_the_kernel() -> None:
    core = fresh_core()
    holding(core)
    order = OrderRequest("op", SYMBOL, Side.BUY, "manual", candle(2).ts, notional=100.0)
    assert core.submit_manual(order) is None
    i = core.index[SYMBOL]
    assert decide(core.g, core.s, core.p, i, candle(2).ts, Action.EXIT, 0.9) is Outcome.PENDING
    expected = Decision(Outcome.PENDING, SYMBOL).refusal()
    assert expected == Refusal("pending", f"an order for {SYMBOL} is already pending")
    assert core.check_manual(order) == expected
    assert core.check_manual(OrderRequest("op2", SYMBOL, Side.SELL, "manual", candle(2).ts)) == expected
    assert core.close_position(SYMBOL, candle(2).ts) == expected
    assert Decision(Outcome.PENDING, SYMBOL).record_text() == "nothing to do: an order is already pending"


def test_a_market_too_small_reads_the_same_in_the_record_in_signal_and_for_an_operator() -> None:
    core = fresh_core()
    tiny_market(core)
    record = core.on_signal(SYMBOL, candle(2), Action.ENTER, 0.9).signal
    assert record is not None
    words = "2000 USDT is below the exchange's minimum order of 5000 USDT"
    assert record.outcome == ("refused: 19.98 X at 100 is 1998 USDT, below the exchange's minimum order of 5000 "
                              "USDT")  # 20% of equity, the fee and the amount step taken off
    gate = core.would(SYMBOL, Action.ENTER, candle(2).ts, entry_gates_only=True)
    assert gate.outcome is Outcome.BELOW_MIN and gate.refusal() == Refusal("below_minimum", record.outcome[9:])
    buy = OrderRequest("op", SYMBOL, Side.BUY, "manual", candle(2).ts, notional=2_000.0)
    assert core.check_manual(buy) == Refusal("below_minimum", words)
    assert core.would(SYMBOL, Action.ENTER, candle(2).ts, operator=True, order=buy).outcome is Outcome.BELOW_MIN
    big = OrderRequest("op", SYMBOL, Side.BUY, "manual", candle(2).ts, notional=6_000.0)
    core.limits = RiskLimits(1, 1, 1, 0, 0, 0, 0, 0)
    assert core.check_manual(big) is None  # the same kernel, an order of the operator's own size


def test_a_quantity_with_too_many_decimals_is_the_operators_alone() -> None:
    core = fresh_core()
    tiny_market(core)
    core.limits = RiskLimits(1, 1, 1, 0, 0, 0, 0, 0)
    odd = OrderRequest("op", SYMBOL, Side.BUY, "manual", candle(1).ts, quantity=60.0005)
    expected = Refusal("precision", f"60.0005 X has more decimals than {SYMBOL} allows (step 0.001)")
    assert core.check_manual(odd) == expected
    decision = core.would(SYMBOL, Action.ENTER, candle(1).ts, operator=True, order=odd)
    assert decision.outcome is Outcome.PRECISION and decision.refusal() == expected
    assert decision.record_text() == f"refused: {expected.reason}"
    assert core.check_manual(OrderRequest("op", SYMBOL, Side.BUY, "manual", candle(1).ts, quantity=60.001)) is None
    # the strategy's own entry (a fraction of equity) is floored to the step instead, and fills
    assert core.on_signal(SYMBOL, candle(1), Action.ENTER, 0.9).orders
    step = core.on_signal(SYMBOL, candle(2), Action.HOLD, 0.9)
    (fill,) = step.fills
    assert fill.quantity == 99.9 and core.portfolio.positions[SYMBOL].quantity == 99.9


def test_nothing_to_sell_or_close_is_the_kernels_no_position() -> None:
    core = fresh_core()
    sell = OrderRequest("op", SYMBOL, Side.SELL, "manual", candle(1).ts)
    assert core.check_manual(sell) == Refusal("no_position", f"no {SYMBOL} position to sell")
    assert core.close_position(SYMBOL, candle(1).ts) == Refusal("no_position", f"no {SYMBOL} position to close")
    assert core.would(SYMBOL, Action.EXIT, candle(1).ts, operator=True).outcome is Outcome.NO_POSITION


def test_asking_changes_nothing_and_a_symbol_without_a_row_is_asked_on_a_fresh_one() -> None:
    core = fresh_core()
    paused(core)
    before = core.snapshot()
    assert core.would("NEWUSDT", Action.ENTER, candle(1).ts, entry_gates_only=True).outcome is Outcome.PAUSED
    assert core.would(SYMBOL, Action.ENTER, candle(1).ts, operator=True).outcome is Outcome.ENTRY_ORDER
    assert core.snapshot() == before and "NEWUSDT" not in core.index
    assert core.state is RiskState.ACTIVE


@pytest.mark.parametrize("outcome", list(SCENARIOS), ids=lambda o: o.name)
async def test_the_chat_shows_what_the_kernel_concluded(outcome: Outcome, tmp_path: Path) -> None:
    """/signal's text (the bot's renderer over the facade, on a real engine and store) says the record's words, the
    entry gate's reason, and "would trade" exactly when the kernel placed an order."""
    prepare, action, confidence = SCENARIOS[outcome]
    core = fresh_core()
    if prepare is not None:
        prepare(core)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        clock = SimClock(candle(2).ts + STEP)
        feed = ReplayFeed(real_candles("ETH_BTC-5m.csv").slice(0, 50), SYMBOL, "5m", clock)
        engine = LiveEngine(core=core, store=store, feeds={SYMBOL: feed}, models={SYMBOL: SmaCrossModel(10, 30)},
                            clock=clock, bus=EventBus(), timeframe="5m", poll_interval=3600)
        step = core.on_signal(SYMBOL, candle(2), action, confidence)
        engine.symbols[SYMBOL].last_signal = step.signal
        view = EngineFacade(engine, records=store, strategy="test").signal(SYMBOL.lower())
        assert not isinstance(view, Refusal) and step.signal is not None
        text = render_signal(view)
    finally:
        await store.close()
    assert f"outcome {step.signal.outcome}" in text
    assert view.would_trade is outcome.orders
    assert ("Would trade now: <b>yes</b>" in text) is outcome.orders
    gate = core.would(SYMBOL, Action.ENTER, clock.now_ms(), entry_gates_only=True).refusal()
    if outcome in ENTRY_GATES:
        assert gate is not None and f"• {gate.reason}" in text and step.signal.outcome == f"refused: {gate.reason}"
