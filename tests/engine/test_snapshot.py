"""The core's saved state has named fields and a version: a snapshot in the positional format of version 2
(as the code before version 3 wrote it) restores into an identical core, through the real store; a newer
or unknown one is refused in one line and nothing is restored. (Version 3, without dust and the exchange's
rules: tests/engine/test_market_rules_snapshot.py.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.core import kernel as K
from engine.core.clock import SimClock
from engine.core.risk import RiskLimits
from engine.core.snapshot import PORTFOLIO_FIELDS, SNAPSHOT_VERSION, SYMBOL_FIELDS, V3_SYMBOL_FIELDS
from engine.core.trading import TradingCore, order_to_dict
from engine.core.types import Action, OrderRequest, Side, StepRecord
from engine.errors import SnapshotUnreadable
from engine.store import Store
from tests.engine.helpers import real_candles
from tests.engine.test_restart import COSTS, FILTERS

SYMBOLS = ("ETHBTC", "BTCUSDT")
CUT = 415
LIMITS = RiskLimits(position_fraction=0.3, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.05,
                    take_profit_pct=0.1, trailing_stop_pct=0.0, max_daily_loss_pct=0.0, max_drawdown_pct=0.0)


def core_with_history() -> tuple[TradingCore, SimClock]:
    """A core after real candles: a position (with stop and target) in one symbol, a cooldown, a pending
    manual order in the other, paused, limits changed from the defaults."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CUT)
    clock = SimClock(int(candles.ts[0]))
    core = TradingCore(limits=LIMITS, costs=COSTS, filters=FILTERS, starting_cash=10_000.0, clock=clock)
    for i in range(CUT - 1):
        candle = candles.candle(i)
        clock.set(candle.ts + 300_000)
        action = Action.ENTER if i % 40 < 20 else Action.EXIT
        for symbol in SYMBOLS:
            core.on_signal(symbol, candle, action if symbol == SYMBOLS[0] else Action.HOLD, 0.9)
    now = clock.now_ms()
    refusal = core.submit_manual(OrderRequest(f"{SYMBOLS[1]}-{now}-manual-buy", SYMBOLS[1], Side.BUY, "manual", now,
                                              notional=500.0))
    assert refusal is None, refusal
    core.paused = True
    assert core.portfolio.positions and core.pending and core.cooldown_until
    return core, clock


def version_2(core: TradingCore) -> dict[str, Any]:
    """What ``TradingCore.snapshot`` wrote before version 3: ``g`` and ``s`` as positional lists, NaN as null (the
    symbol fields of that time, the first columns of a row today)."""
    def as_json(values: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else float(v) for v in values.tolist()]

    width = len(V3_SYMBOL_FIELDS)
    return {"version": 2, "symbols": list(core.index), "g": as_json(core.g),
            "s": [as_json(row[:width]) for row in core.s],
            "limits": core.limits.as_dict(), "state_reason": core.state_reason,
            "pending": {sym: order_to_dict(orders[0]) for sym, orders in core.pending.items()},
            "starting_cash": core.starting_cash}


def blank_core(clock: SimClock) -> TradingCore:
    """A core built from other settings: everything that matters must come from the snapshot."""
    return TradingCore(limits=RiskLimits(), costs=COSTS, filters=FILTERS, starting_cash=1.0, clock=clock)


async def saved_and_loaded(tmp_path: Path, core_state: dict[str, Any]) -> dict[str, Any]:
    """``core_state`` written with a step and read back by the real store (SQLite), as a restart reads it."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        await store.record_step(StepRecord(None, None, 0, (), (), (), (), None, 0.0, 0.0, (), core_state))
        loaded = await store.load_core_state()
    finally:
        await store.close()
    assert loaded is not None
    return loaded


def test_the_snapshot_names_every_kernel_field_and_says_its_version() -> None:
    assert sorted(PORTFOLIO_FIELDS.values()) == list(range(K.NG))
    assert sorted(SYMBOL_FIELDS.values()) == list(range(K.NS))
    core, _ = core_with_history()
    doc = core.snapshot()
    assert doc["version"] == SNAPSHOT_VERSION == 4
    assert set(doc["portfolio"]) == set(PORTFOLIO_FIELDS)
    assert [row["symbol"] for row in doc["symbols"]] == list(SYMBOLS)
    held = doc["symbols"][0]
    assert set(held) == {"symbol", *SYMBOL_FIELDS}
    position = core.portfolio.positions[SYMBOLS[0]]
    assert held["quantity"] == position.quantity and held["avg_price"] == position.avg_price
    assert doc["portfolio"]["cash"] == core.portfolio.cash and doc["portfolio"]["paused"] == 1.0


async def test_an_old_positional_snapshot_restores_into_an_identical_core(tmp_path: Path) -> None:
    a, clock_a = core_with_history()
    loaded = await saved_and_loaded(tmp_path, {**version_2(a), "paused": True, "risk_state": "ACTIVE",
                                               "halted_reason": None})
    b = blank_core(SimClock(clock_a.now_ms()))
    b.restore(loaded)
    assert b.snapshot() == a.snapshot()
    assert b.paused and b.pending == a.pending and b.cooldown_until == a.cooldown_until
    assert b.portfolio.positions == a.portfolio.positions and b.limits == a.limits
    # and both go on identically
    later = real_candles("ETH_BTC-5m.csv").slice(CUT, CUT + 60)
    for core, clock in ((a, clock_a), (b, b.clock)):
        core.paused = False
        for i in range(len(later)):
            assert isinstance(clock, SimClock)
            clock.set(int(later.ts[i]) + 300_000)
            for symbol in SYMBOLS:
                core.on_signal(symbol, later.candle(i), Action.ENTER if i % 20 < 10 else Action.EXIT, 0.9)
    assert a.snapshot() == b.snapshot()


async def test_the_current_snapshot_round_trips_through_the_store(tmp_path: Path) -> None:
    a, clock_a = core_with_history()
    b = blank_core(SimClock(clock_a.now_ms()))
    b.restore(await saved_and_loaded(tmp_path, a.snapshot()))
    assert b.snapshot() == a.snapshot()


@pytest.mark.parametrize(("change", "expected"), [
    ({"version": 5}, "the saved engine state is version 5, newer than this agent reads (up to 4); start this "
                     "version on an empty database, or run the version that wrote it"),
    ({"version": None}, "the saved engine state has no version (a format older than version 2); "),
    ({"version": "3"}, "the saved engine state has an unknown version '3' (this agent reads 2 to 4); "),
    ({"portfolio": {"cash": 1.0}}, "the saved engine state (version 4) is malformed: field 'fees'; "),
])
def test_a_snapshot_it_cannot_read_is_refused_in_one_line_and_nothing_changes(change: dict[str, Any],
                                                                              expected: str) -> None:
    a, clock = core_with_history()
    doc = {**a.snapshot(), **change}
    b = blank_core(SimClock(clock.now_ms()))
    before = b.snapshot()
    with pytest.raises(SnapshotUnreadable) as info:
        b.restore(doc)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
    assert b.snapshot() == before


def test_a_version_2_snapshot_of_the_wrong_shape_is_refused() -> None:
    a, clock = core_with_history()
    doc = version_2(a)
    doc["s"][0] = doc["s"][0][:-1]
    with pytest.raises(SnapshotUnreadable, match=r"\(version 2\) is malformed: expected 8 portfolio values and 2 "
                                                 r"symbol rows of 17, got 8 and \[16, 17\]"):
        blank_core(SimClock(clock.now_ms())).restore(doc)
