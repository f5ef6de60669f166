"""The engine snapshot (version 4) keeps each symbol's dust and says the rules it traded under; a version-3
snapshot (before dust and rules) restores with none of either; and a restore applies the rules of this start,
whatever the snapshot was saved under."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.core import kernel as K
from engine.core.clock import SimClock
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.snapshot import SNAPSHOT_VERSION, SYMBOL_FIELDS, V3_SYMBOL_FIELDS
from engine.core.trading import TradingCore
from engine.core.types import Action, OrderRequest, Side
from tests.engine.test_market_rules import RULES, SYMBOL, T0, candle
from tests.engine.test_snapshot import saved_and_loaded

OTHER = "ETHUSDT"


def core(rules: dict[str, MarketRules] | None) -> TradingCore:
    return TradingCore(limits=RiskLimits(0.2, 1, 1, 0, 0, 0, 0, 0), costs=Costs(fee_bps=10),
                       filters=SignalFilters(0.6, 0), starting_cash=10_000.0, clock=SimClock(T0), rules=rules)


def with_dust_and_a_position() -> TradingCore:
    """Dust of BTCUSDT (0.00004 BTC) and a position in ETHUSDT (which has no rules)."""
    c = core({SYMBOL: RULES})
    for symbol in (SYMBOL, OTHER):
        c.on_signal(symbol, candle(0, 30_000.0), Action.HOLD, 1.0)
        assert c.submit_manual(OrderRequest(f"{symbol}-b", symbol, Side.BUY, "manual", T0, notional=1_000.0)) is None
        c.on_signal(symbol, candle(1, 30_000.0), Action.HOLD, 1.0)
    assert c.submit_manual(OrderRequest("s", SYMBOL, Side.SELL, "manual", T0, notional=998.0)) is None
    c.on_signal(SYMBOL, candle(2, 30_000.0), Action.HOLD, 1.0)
    assert c.portfolio.dust[SYMBOL].quantity == 0.00004 and set(c.portfolio.positions) == {OTHER}
    return c


async def test_dust_round_trips_through_the_store(tmp_path: Path) -> None:
    a = with_dust_and_a_position()
    doc = a.snapshot()
    assert doc["version"] == SNAPSHOT_VERSION == 4
    row = doc["symbols"][0]
    assert (row["dust"], row["dust_avg_price"]) == (0.00004, 30_000.0)
    assert (row["amount_step"], row["price_tick"], row["min_amount"], row["min_notional"]) == (0.00001, 0.01, 0.0001,
                                                                                             5.0)
    b = core({SYMBOL: RULES})
    b.restore(await saved_and_loaded(tmp_path, doc))
    assert b.snapshot() == doc
    assert b.portfolio.dust == a.portfolio.dust and b.portfolio.equity() == a.portfolio.equity()


def test_a_restore_applies_the_rules_of_this_start() -> None:
    a = with_dust_and_a_position()
    looser = MarketRules(SYMBOL, amount_step=0.001, min_notional=1.0)
    for rules, expected in (({}, MarketRules.none(SYMBOL)), ({SYMBOL: looser}, looser)):
        b = core(rules)
        b.restore(a.snapshot())
        i = b.index[SYMBOL]
        assert b.rules_for(SYMBOL) == expected
        assert list(b.s[i, K.AMOUNT_STEP:]) == [expected.amount_step, expected.price_tick, expected.min_amount,
                                                expected.min_notional]
        assert b.portfolio.dust == a.portfolio.dust  # the dust is the books', whatever the rules


def version_3(doc: dict[str, Any]) -> dict[str, Any]:
    """What ``TradingCore.snapshot`` wrote in version 3: no dust, no rules."""
    rows = [{k: v for k, v in row.items() if k == "symbol" or k in V3_SYMBOL_FIELDS} for row in doc["symbols"]]
    return {**doc, "version": 3, "symbols": rows}


async def test_a_version_3_snapshot_restores_with_no_dust_and_todays_rules(tmp_path: Path) -> None:
    a = core({SYMBOL: RULES})
    for symbol in (SYMBOL, OTHER):
        a.on_signal(symbol, candle(0, 30_000.0), Action.HOLD, 1.0)
        assert a.submit_manual(OrderRequest(f"{symbol}-b", symbol, Side.BUY, "manual", T0, notional=1_000.0)) is None
        a.on_signal(symbol, candle(1, 30_000.0), Action.HOLD, 1.0)
    old = version_3(a.snapshot())
    assert set(old["symbols"][0]) == {"symbol", *V3_SYMBOL_FIELDS} != {"symbol", *SYMBOL_FIELDS}
    b = core({SYMBOL: RULES})
    b.restore(await saved_and_loaded(tmp_path, old))
    assert b.snapshot() == a.snapshot()
    np.testing.assert_array_equal(b.s[:, K.DUST:K.DUST_FEE + 1], 0.0)
    assert b.portfolio.positions == a.portfolio.positions
