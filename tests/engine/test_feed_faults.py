"""Feed faults injected into the fake exchange while the real engine polls it over 127.0.0.1.

Each fault hits mid-run. The engine must keep running (its symbol task alive, later candles still
decided), never decide on a malformed candle, and end with the trades a backtest makes over exactly
the candles it did decide on. A long outage raises ONE FeedStale and ONE FeedRecovered, and entries
are refused while the feed is stale.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.model import CandleArrays
from engine.core.types import Refusal
from engine.feeds.base import MAX_BATCH
from sim.exchange import Fault
from tests.engine.helpers import real_candles, wait_until
from tests.engine.test_restart import STEP, SYMBOL, Rig, backtest, rig_factory, sql_scalar

__all__ = ["rig_factory"]  # the fixture, shared with test_restart

CANDLES = 70
FAULT_AT = 35  # candles [0, FAULT_AT) run clean; the fault hits the request for FAULT_AT .. FAULT_AT + 2

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite keeps this file fast


def symbol_task_alive(rig: Rig) -> bool:
    assert rig.engine is not None
    tasks = [t for t in rig.engine._tasks if t.get_name() == f"symbol:{SYMBOL}"]
    return len(tasks) == 1 and not tasks[0].done()


async def stepped_indices(rig: Rig, candles: CandleArrays) -> list[int]:
    assert rig.store is not None
    signals = await rig.store.signals(SYMBOL, 100_000)
    ts = sorted(s.ts for s in signals)
    assert len(ts) == len(set(ts)), "a candle was decided twice"
    index = {int(t): i for i, t in enumerate(candles.ts)}
    return [index[t] for t in ts]


def take(candles: CandleArrays, idx: list[int]) -> CandleArrays:
    i = np.asarray(idx, dtype=np.int64)
    return CandleArrays(candles.ts[i], candles.open[i], candles.high[i], candles.low[i], candles.close[i],
                        candles.volume[i])


FAULTS = [
    (Fault.SERVER_ERROR, {"times": 3}, False),
    (Fault.RATE_LIMIT, {"times": 2}, False),
    (Fault.TIMEOUT, {}, False),
    (Fault.MALFORMED_JSON, {"times": 2}, False),
    (Fault.DUPLICATE, {"row": 1}, False),
    (Fault.OUT_OF_ORDER, {"row": 1}, False),  # ccxt sorts an answer's candles by time: none is lost
    (Fault.GAP, {"row": 1}, True),  # the missing row is never asked for again
    (Fault.BAD_CANDLE, {"row": 1}, True),
    (Fault.BAD_CANDLE, {"row": 1, "nan": True}, True),
]


@pytest.mark.parametrize(("fault", "kw", "loses_one"), FAULTS,
                         ids=[f"{f.value}{'-nan' if kw.get('nan') else ''}" for f, kw, _ in FAULTS])
async def test_engine_survives_a_fault_and_trades_exactly_the_candles_it_stepped(
        fault: Fault, kw: dict, loses_one: bool, rig_factory) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CANDLES)
    rig: Rig = await rig_factory(candles, feed_timeout_s=0.2)  # TIMEOUT hangs 0.5 s
    engine = await rig.open()
    await rig.run_to(FAULT_AT)
    requests = rig.fake.requests

    rig.fake.inject(fault, **kw)
    third = FAULT_AT + 2
    rig.clock.set(int(candles.ts[third]) + STEP)  # three candles close at once: one response holds them all
    rig.stepped_upto = third + 1
    core = engine.core
    await wait_until(lambda: core.last_candle_ts.get(SYMBOL) == int(candles.ts[third]))
    assert rig.fake.pending_faults == 0 and rig.fake.requests > requests
    assert symbol_task_alive(rig)
    await rig.run_to(CANDLES)  # later candles are still decided
    assert symbol_task_alive(rig)
    assert rig.store is not None
    live = await rig.store.trades(limit=10_000)
    stepped = await stepped_indices(rig, candles)
    await rig.stop()

    missing = sorted(set(range(CANDLES)) - set(stepped))
    assert missing == ([FAULT_AT + 1] if loses_one else [])  # a malformed candle is never decided on
    expected = run_backtest(take(candles, stepped), rig.model(), BacktestConfig(
        symbol=SYMBOL, cash=10_000, limits=rig.limits, costs=rig.costs, filters=rig.filters, rules=rig.rules))
    live.reverse()
    assert live == expected.trades
    assert len(expected.trades) >= 2


async def test_a_long_outage_raises_one_stale_and_one_recovered_event_and_blocks_entries(
        rig_factory, db_url: str) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CANDLES)
    rig: Rig = await rig_factory(candles, stale_after=3, feed_attempts=2)
    engine = await rig.open()
    facade = rig.facade()
    await rig.run_to(FAULT_AT)
    st = engine.symbols[SYMBOL]

    rig.fake.inject(Fault.SERVER_ERROR, times=1_000_000)
    outage_end = FAULT_AT + 6
    rig.clock.set(int(candles.ts[outage_end]) + STEP)  # 7 candles close while the exchange is down
    await wait_until(lambda: st.stale)
    polled = rig.fake.requests
    await wait_until(lambda: rig.fake.requests >= polled + 40)  # many more failed polls while stale
    assert st.stale and symbol_task_alive(rig)
    q = "SELECT count(*) FROM outbox WHERE event_type = '{}'"
    assert await sql_scalar(db_url, q.format("FeedStale")) == 1
    assert await sql_scalar(db_url, q.format("FeedRecovered")) == 0

    refused = await facade.buy(SYMBOL, 100.0)
    assert isinstance(refused, Refusal) and refused.code == "feed_stale"
    view = facade.signal(SYMBOL)
    assert not isinstance(view, Refusal) and not view.would_trade
    assert any("stale" in r for r in view.reasons)
    assert facade.status().symbols[0].stale

    rig.fake.clear_faults()  # the exchange is back: the missed candles are caught up
    rig.stepped_upto = outage_end + 1
    await wait_until(lambda: engine.core.last_candle_ts.get(SYMBOL) == int(candles.ts[outage_end]))
    assert not st.stale
    await rig.run_to(CANDLES)
    assert rig.store is not None
    live = await rig.store.trades(limit=10_000)
    stepped = await stepped_indices(rig, candles)
    await rig.stop()

    assert await sql_scalar(db_url, q.format("FeedStale")) == 1
    assert await sql_scalar(db_url, q.format("FeedRecovered")) == 1
    assert stepped == list(range(CANDLES))
    expected = run_backtest(candles, rig.model(), BacktestConfig(
        symbol=SYMBOL, cash=10_000, limits=rig.limits, costs=rig.costs, filters=rig.filters, rules=rig.rules))
    live.reverse()
    assert live == expected.trades


async def test_engine_far_behind_catches_up_in_bounded_batches_without_waiting(rig_factory) -> None:
    """2,400 candles close at once (a worker down for a week of 5m candles): each poll holds at most
    MAX_BATCH of them; after the restart the engine refills its model window, then decides every
    missed candle, polling again at once while the feed says there is more (the poll interval here
    is an hour); the trades are the backtest's over every candle."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 2400)
    rig: Rig = await rig_factory(candles)
    rig.clock.set(int(candles.ts[0]) + STEP)
    engine = await rig.open()  # candle 0 is the whole warm-up history: its newest, so it is decided at once
    await engine.stop()  # the loop stopped; the next polls are ours
    rig.clock.set(int(candles.ts[-1]) + STEP)
    assert await engine.poll_once(SYMBOL) == MAX_BATCH  # one bounded batch, decided ...
    assert engine.symbols[SYMBOL].behind  # ... and the loop told to come back at once
    assert rig.store is not None and rig.feed is not None
    await rig.feed.close()
    await rig.store.close()

    rig.poll_interval = 3600.0
    engine = await rig.open()  # restored; its first poll is the warm-up, then only `behind` avoids an hour's sleep
    await wait_until(lambda: engine.core.last_candle_ts.get(SYMBOL) == int(candles.ts[-1]), timeout=120)
    async with engine.lock:
        pass
    assert not engine.symbols[SYMBOL].behind
    assert await stepped_indices(rig, candles) == list(range(len(candles)))
    expected = backtest(candles, rig)
    assert rig.store is not None
    trades = await rig.store.trades(limit=10_000)
    trades.reverse()
    assert len(expected.trades) >= 4 and trades == expected.trades
    assert engine.core.portfolio.equity() == pytest.approx(expected.final_equity, rel=0, abs=1e-9)


async def test_a_feed_down_from_the_start_goes_stale_without_crashing_its_loop(rig_factory, db_url: str) -> None:
    """No candle was ever seen for the symbol: marking it stale must still work (its core row is new)."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CANDLES)
    rig: Rig = await rig_factory(candles, stale_after=3, feed_attempts=1)
    rig.fake.inject(Fault.SERVER_ERROR, times=1_000_000)
    engine = await rig.build()
    await engine.start()
    rig.clock.set(int(candles.ts[10]) + STEP)
    st = engine.symbols[SYMBOL]
    await wait_until(lambda: st.stale)
    polled = rig.fake.requests
    await wait_until(lambda: rig.fake.requests >= polled + 20)
    assert symbol_task_alive(rig) and SYMBOL in engine.core.stale
    q = "SELECT count(*) FROM outbox WHERE event_type = '{}'"
    assert await sql_scalar(db_url, q.format("FeedStale")) == 1
    rig.fake.clear_faults()  # history comes (its newest candle decided at once) and the feed recovers
    await wait_until(lambda: st.warmed)
    rig.clock.set(int(candles.ts[11]) + STEP)
    await wait_until(lambda: engine.core.last_candle_ts.get(SYMBOL) == int(candles.ts[11]) and not st.stale)
    await rig.stop()
    assert await sql_scalar(db_url, q.format("FeedRecovered")) == 1
