"""Risk rules, one spec per test, on the real decision core with hand-made candles (no fees, no slippage
unless said), and one through the facade on a live engine over a real database."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.clock import SimClock
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import StepResult, TradingCore
from engine.core.types import DAY_MS, Candle, OrderRequest, Refusal, RiskState, Side
from engine.events import RiskStateChanged
from tests.engine.helpers import real_candles
from tests.engine.test_restart import SYMBOL, Rig, rig_factory
from tests.store.dbutil import row_counts

__all__ = ["rig_factory"]

HOUR = 3_600_000
DAY0 = 1_700_006_400_000 - 1_700_006_400_000 % DAY_MS  # a UTC midnight
ENTER, EXIT = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
OFF = RiskLimits(position_fraction=1.0, max_position_fraction=1.0, max_total_exposure=1.0, stop_loss_pct=0.0,
                 take_profit_pct=0.0, trailing_stop_pct=0.0, max_daily_loss_pct=0.0, max_drawdown_pct=0.0)


class Driver:
    """Feeds one symbol candle by candle (1h apart) and keeps every step."""

    def __init__(self, limits: RiskLimits, cooldown_ms: int = 0, start: int = DAY0) -> None:
        self.clock = SimClock(start)
        self.core = TradingCore(limits=limits, costs=Costs(0, 0), filters=SignalFilters(0.6, cooldown_ms),
                                starting_cash=10_000, clock=self.clock)
        self.ts = start
        self.steps: list[StepResult] = []

    def candle(self, o: float, h: float, lo: float, c: float, signal: np.ndarray | None = None) -> StepResult:
        step = self.core.on_candle("X", Candle(self.ts, o, h, lo, c, 1.0), signal)
        self.ts += HOUR
        self.clock.set(self.ts)
        self.steps.append(step)
        return step

    def flat(self, price: float, signal: np.ndarray | None = None) -> StepResult:
        return self.candle(price, price, price, price, signal)

    def enter_at(self, price: float) -> StepResult:
        self.flat(price, ENTER)
        step = self.flat(price)
        assert step.fills and step.fills[0].side is Side.BUY
        return step

    def events(self, kind: type) -> list:
        return [e for s in self.steps for e in s.events if isinstance(e, kind)]

    @property
    def held(self) -> bool:
        return "X" in self.core.portfolio.positions


async def test_an_order_over_max_position_is_refused_with_its_reason_and_writes_nothing(
        rig_factory, db_url: str) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 20)
    rig: Rig = await rig_factory(candles)  # max_position_fraction 0.6 of 10 000
    await rig.open()
    await rig.run_to(5)
    facade = rig.facade()
    before = await row_counts(db_url)
    snapshot = rig.engine.core.snapshot()  # type: ignore[union-attr]
    refused = await facade.buy(SYMBOL, 6_500.0)
    assert isinstance(refused, Refusal) and refused.code == "limit"
    assert "6500.00 exceeds what risk allows now (6000.00" in refused.reason
    assert await row_counts(db_url) == before
    assert rig.engine.core.snapshot() == snapshot  # type: ignore[union-attr]
    ok = await facade.buy(SYMBOL, 5_900.0)
    assert not isinstance(ok, Refusal)
    after = await row_counts(db_url)
    assert after["orders"] == before["orders"] + 1
    await rig.stop()


@pytest.mark.parametrize("exit_by", ["signal", "stop"])
def test_drawdown_halts_once_no_entries_while_halted_exits_and_stops_still_work_resume_reactivates(
        exit_by: str) -> None:
    d = Driver(RiskLimits(1.0, 1.0, 1.0, stop_loss_pct=0.2, take_profit_pct=0.0, trailing_stop_pct=0.0,
                          max_daily_loss_pct=0.0, max_drawdown_pct=0.10))
    d.enter_at(100.0)  # stop at 80
    d.flat(85.0)  # equity 8 500 <= 9 000: HALTED
    assert d.core.state is RiskState.HALTED
    d.flat(84.0)
    d.flat(83.0)
    halts = d.events(RiskStateChanged)
    assert [(e.old, e.new) for e in halts] == [("ACTIVE", "HALTED")]  # emitted once
    if exit_by == "signal":
        d.flat(83.0, EXIT)
        step = d.flat(83.0)
        assert [t.exit_reason for t in step.trades] == ["signal"]
    else:
        step = d.candle(83.0, 83.0, 79.0, 80.0)
        assert [(t.exit_reason, t.exit_price) for t in step.trades] == [("stop_loss", 80.0)]
    assert not d.held
    step = d.flat(82.0, ENTER)
    assert step.signal is not None and step.signal.outcome == "refused: risk state is HALTED: no new entries"
    assert not step.orders
    refusal = d.core.submit_manual(OrderRequest("m1", "X", Side.BUY, "manual", d.ts, notional=100.0))
    assert refusal == Refusal("risk_state", "risk state is HALTED: no new entries")
    assert not d.flat(82.0).fills
    event = d.core.resume(d.ts)
    assert isinstance(event, RiskStateChanged) and (event.old, event.new) == ("HALTED", "ACTIVE")
    assert d.core.state is RiskState.ACTIVE
    step = d.flat(82.0, ENTER)
    assert step.signal is not None and step.signal.outcome == "order"
    assert d.flat(82.0).fills


def test_daily_loss_reduces_until_the_next_utc_day() -> None:
    d = Driver(RiskLimits(1.0, 1.0, 1.0, 0.0, 0.0, 0.0, max_daily_loss_pct=0.05, max_drawdown_pct=0.5))
    d.enter_at(100.0)
    d.flat(94.0)  # 6 % down on the day
    assert d.core.state is RiskState.REDUCING
    d.flat(94.0, EXIT)
    assert d.flat(94.0).trades  # exits still work
    while d.ts < DAY0 + DAY_MS:  # the rest of the UTC day: no entries
        step = d.flat(95.0, ENTER)
        assert step.signal is not None and step.signal.outcome == "refused: risk state is REDUCING: no new entries"
        assert d.core.state is RiskState.REDUCING
    step = d.flat(95.0, ENTER)  # 00:00 the next day
    assert d.core.state is RiskState.ACTIVE
    assert [(e.old, e.new) for e in step.events if isinstance(e, RiskStateChanged)] == [("REDUCING", "ACTIVE")]
    assert step.signal is not None and step.signal.outcome == "order"


def test_stop_loss_and_take_profit_both_touched_in_one_candle_takes_the_stop() -> None:
    d = Driver(RiskLimits(1.0, 1.0, 1.0, stop_loss_pct=0.05, take_profit_pct=0.05, trailing_stop_pct=0.0,
                          max_daily_loss_pct=0.0, max_drawdown_pct=0.0))
    d.enter_at(100.0)
    step = d.candle(100.0, 106.0, 94.0, 104.0)
    assert [(t.exit_reason, t.exit_price) for t in step.trades] == [("stop_loss", 95.0)]
    assert d.core.portfolio.cash == pytest.approx(9_500.0)


@pytest.mark.parametrize(("open_", "reason", "price"), [(90.0, "stop_loss", 90.0), (112.0, "take_profit", 112.0),
                                                        (96.0, "stop_loss", 95.0)])
def test_a_gap_through_the_stop_fills_at_the_open(open_: float, reason: str, price: float) -> None:
    d = Driver(RiskLimits(1.0, 1.0, 1.0, stop_loss_pct=0.05, take_profit_pct=0.10, trailing_stop_pct=0.0,
                          max_daily_loss_pct=0.0, max_drawdown_pct=0.0))
    d.enter_at(100.0)
    low = min(open_, 94.0) if reason == "stop_loss" else open_
    step = d.candle(open_, max(open_, 100.0), low, open_)
    assert [(t.exit_reason, t.exit_price) for t in step.trades] == [(reason, price)]


def test_trailing_stop_follows_highs() -> None:
    d = Driver(RiskLimits(1.0, 1.0, 1.0, stop_loss_pct=0.0, take_profit_pct=0.0, trailing_stop_pct=0.10,
                          max_daily_loss_pct=0.0, max_drawdown_pct=0.0))
    d.enter_at(100.0)
    assert d.core.portfolio.views()[0].trail_price == pytest.approx(90.0)
    d.candle(100.0, 110.0, 100.0, 109.0)
    assert d.core.portfolio.views()[0].trail_price == pytest.approx(99.0)
    d.candle(109.0, 120.0, 109.0, 118.0)
    assert d.core.portfolio.views()[0].trail_price == pytest.approx(108.0)
    d.candle(118.0, 119.0, 108.5, 110.0)  # above the trail: held, and the trail does not move down
    assert d.held and d.core.portfolio.views()[0].trail_price == pytest.approx(108.0)
    step = d.candle(112.0, 130.0, 107.0, 125.0)  # the level in force is from earlier highs, not this one's
    assert [(t.exit_reason, t.exit_price) for t in step.trades] == [("trailing_stop", pytest.approx(108.0))]


def test_cooldown_after_exit() -> None:
    d = Driver(OFF, cooldown_ms=2 * HOUR)
    d.enter_at(100.0)
    d.flat(101.0, EXIT)
    exit_ts = d.ts
    for i in range(2):  # the exit candle (it fills at its open) and the next are inside the 2 h cooldown
        step = d.flat(101.0, ENTER)
        assert bool(step.trades) == (i == 0)
        assert step.signal is not None and step.signal.outcome == "refused: X is cooling down after its last exit"
    assert d.ts == exit_ts + 2 * HOUR
    step = d.flat(101.0, ENTER)
    assert step.signal is not None and step.signal.outcome == "order"


def test_pause_blocks_entries_but_not_exits() -> None:
    d = Driver(RiskLimits(1.0, 1.0, 1.0, stop_loss_pct=0.05, take_profit_pct=0.0, trailing_stop_pct=0.0,
                          max_daily_loss_pct=0.0, max_drawdown_pct=0.0))
    d.core.paused = True
    step = d.flat(100.0, ENTER)
    assert step.signal is not None and step.signal.outcome == "refused: trading is paused"
    assert not step.orders and not d.flat(100.0).fills
    d.core.paused = False
    d.enter_at(100.0)
    d.core.paused = True
    d.flat(100.0, EXIT)
    assert [t.exit_reason for t in d.flat(100.0).trades] == ["signal"]  # signal exit while paused
    d.core.paused = False
    d.enter_at(100.0)
    d.core.paused = True
    step = d.candle(100.0, 100.0, 90.0, 92.0)
    assert [t.exit_reason for t in step.trades] == ["stop_loss"]  # stop while paused
    assert d.core.close_position("X", d.ts) == Refusal("no_position", "no X position to close")
