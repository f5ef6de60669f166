"""record_step: one transaction, idempotent per candle; the reads the facade uses."""

from __future__ import annotations

import asyncio
import math

import pytest
from sqlalchemy.exc import IntegrityError

from engine.core.types import Fill, PositionView, Side, SignalRecord, StepRecord, Trade
from engine.store import Store, fill_cash_amount
from tests.store import factories as f
from tests.store import queries
from tests.store.dbutil import core_state_of, row_counts


def _buy_step(candle_ts: int = f.T0) -> tuple[Fill, StepRecord]:
    buy = f.fill("o-buy", Side.BUY, qty=0.1, price=30_000.0, fee=3.0, ts=candle_ts + f.MINUTE)
    return buy, f.step(
        candle_ts,
        orders=[f.order("o-buy", ts=candle_ts)],
        fills=[buy],
        events=[f.filled_event(buy)],
        positions=[f.position()],
        cash=10_000.0 - 3_000.0 - 3.0,
        equity=10_000.0 - 3.0,
        signal=SignalRecord(f.SYMBOL, candle_ts, 1, 0.8, "order"),
        core_state={"cash": 6_997.0, "paused": False, "risk_state": "ACTIVE"},
    )


async def test_step_is_written_and_read_back_as_dataclasses(store: Store) -> None:
    buy, rec = _buy_step()
    assert await store.record_step(rec) is True

    assert await queries.fills(store, 10) == [buy]
    assert await store.positions() == [f.position()]
    assert all(isinstance(p, PositionView) for p in await store.positions())
    assert await store.signals(f.SYMBOL, 5) == [SignalRecord(f.SYMBOL, f.T0, 1, 0.8, "order")]
    assert await store.order_status("o-buy") == "filled"
    assert await store.pending_orders() == []
    assert await store.load_core_state() == {"cash": 6_997.0, "paused": False, "risk_state": "ACTIVE"}
    assert await store.equity_series() == [(f.T0 + f.MINUTE, 10_000.0 - 3.0)]


async def test_cash_ledger_matches_cash_and_fees(store: Store) -> None:
    buy, rec = _buy_step()
    await store.record_step(rec)
    sell = f.fill("o-sell", Side.SELL, qty=0.1, price=31_000.0, fee=3.1, ts=f.T0 + 3 * f.MINUTE)
    cash = 6_997.0 + fill_cash_amount(sell)
    await store.record_step(
        f.step(f.T0 + 2 * f.MINUTE, orders=[f.order("o-sell", Side.SELL)], fills=[sell],
               trades=[f.trade(sell.ts, pnl=93.9)], cash=cash)
    )  # fmt: skip

    inv = await queries.ledger_invariants(store)
    assert math.isclose(inv["ledger_sum"], cash) and math.isclose(inv["cash"], cash)
    assert math.isclose(inv["last_balance"], cash)
    assert math.isclose(inv["ledger_fees"], 6.1) and math.isclose(inv["fill_fees"], 6.1)
    assert inv["ledger_fill_rows"] == inv["fill_count"] == 2
    assert fill_cash_amount(buy) == pytest.approx(-3_003.0)
    assert fill_cash_amount(sell) == pytest.approx(3_096.9)


async def test_duplicate_candle_returns_false_and_writes_nothing(store: Store, db_url: str) -> None:
    _, rec = _buy_step()
    assert await store.record_step(rec) is True
    before = await row_counts(db_url)
    replay = f.step(f.T0, orders=[f.order("o-other")], events=[f.closed_event(f.T0)], cash=1.0,
                    core_state={"replayed": True})  # fmt: skip
    assert await store.record_step(replay) is False
    assert await row_counts(db_url) == before
    assert await store.load_core_state() == {"cash": 6_997.0, "paused": False, "risk_state": "ACTIVE"}


async def test_concurrent_replays_of_one_candle_record_it_once(store: Store, db_url: str) -> None:
    _, rec = _buy_step()
    results = await asyncio.gather(*(store.record_step(rec) for _ in range(3)))
    assert sorted(results) == [False, False, True]
    counts = await row_counts(db_url)
    assert (counts["decisions"], counts["orders"], counts["fills"], counts["equity_snapshots"]) == (1, 1, 1, 1)


async def test_step_failing_midway_writes_nothing(store: Store, db_url: str) -> None:
    await store.upsert_chat(1)
    _, first = _buy_step()
    await store.record_step(first)
    before, state_before = await row_counts(db_url), await core_state_of(db_url)

    # orders, decision and outbox rows go in before the fill hits its foreign key (unknown order)
    orphan = f.fill("never-ordered", ts=f.T0 + 2 * f.MINUTE)
    bad = f.step(f.T0 + f.MINUTE, orders=[f.order("o-2")], fills=[orphan], events=[f.filled_event(orphan)],
                 trades=[f.trade(f.T0 + 2 * f.MINUTE)], core_state={"bad": True})  # fmt: skip
    with pytest.raises(IntegrityError):
        await store.record_step(bad)
    assert await row_counts(db_url) == before
    assert await core_state_of(db_url) == state_before

    # a non-event among the events: fails after orders, fills, ledger and trades were written
    good_fill = f.fill("o-2", ts=f.T0 + 2 * f.MINUTE)
    invalid = f.step(f.T0 + f.MINUTE, orders=[f.order("o-2")], fills=[good_fill], trades=[f.trade(1)],
                     events=[f.filled_event(good_fill), "not an event"])  # fmt: skip
    with pytest.raises(TypeError):
        await store.record_step(invalid)
    assert await row_counts(db_url) == before

    # the candle was not marked done: the corrected step goes through
    fixed = f.step(f.T0 + f.MINUTE, orders=[f.order("o-2")], fills=[good_fill], cash=3_000.0)
    assert await store.record_step(fixed) is True
    assert (await row_counts(db_url))["decisions"] == before["decisions"] + 1


async def test_operator_steps_ignore_known_orders_and_fills(store: Store, db_url: str) -> None:
    manual = f.order("manual-1", Side.BUY)
    manual_fill = f.fill("manual-1")
    rec = f.step(None, symbol=None, orders=[manual], fills=[manual_fill], cash=6_997.0)
    assert await store.record_step(rec) is True
    counts = await row_counts(db_url)
    assert await store.record_step(rec) is True  # no candle: no decision guard, but orders/fills dedupe
    again = await row_counts(db_url)
    for table in ("orders", "fills", "cash_ledger", "decisions"):
        assert again[table] == counts[table], table
    assert counts["decisions"] == 0


async def test_step_with_candle_needs_symbol(store: Store) -> None:
    with pytest.raises(ValueError, match="symbol"):
        await store.record_step(f.step(f.T0, symbol=None))


async def test_positions_are_replaced_each_step(store: Store) -> None:
    eth = f.position("ETHUSDT", qty=2.0)
    await store.record_step(f.step(f.T0, positions=[f.position(), eth]))
    assert {p.symbol for p in await store.positions()} == {f.SYMBOL, "ETHUSDT"}
    await store.record_step(f.step(f.T0 + f.MINUTE, positions=[eth]))
    assert await store.positions() == [eth]
    await store.record_step(f.step(f.T0 + 2 * f.MINUTE, positions=[]))
    assert await store.positions() == []


async def test_trade_reads(store: Store) -> None:
    exits = [f.T0 + i * f.MINUTE for i in range(1, 6)]
    for i, exit_time in enumerate(exits):
        symbol = "ETHUSDT" if i == 2 else f.SYMBOL
        await store.record_step(f.step(exit_time, symbol=symbol, trades=[f.trade(exit_time, pnl=i, symbol=symbol)]))

    newest = await store.trades(2)
    assert [t.exit_time for t in newest] == exits[::-1][:2]
    assert all(isinstance(t, Trade) for t in newest)
    assert [t.exit_time for t in await store.trades(2, offset=2)] == [exits[2], exits[1]]
    assert [t.pnl for t in await store.trades(10, symbol="ETHUSDT")] == [2.0]
    assert await store.trade_count() == 5
    assert await store.trade_count(symbol=f.SYMBOL) == 4
    assert [t.exit_time for t in await store.trades_between(exits[1], exits[3])] == exits[1:3]


async def test_fills_equity_and_signals_reads(store: Store) -> None:
    for i in range(3):
        ts = f.T0 + i * f.MINUTE
        oid = f"o-{i}"
        await store.record_step(
            f.step(ts, orders=[f.order(oid, ts=ts)], fills=[f.fill(oid, ts=ts + f.MINUTE)], equity=100.0 + i,
                   signal=SignalRecord(f.SYMBOL, ts, 0, 0.1 * i, "hold"), now_ms=ts)
        )  # fmt: skip
    await store.record_step(
        f.step(f.T0, symbol="ETHUSDT", signal=SignalRecord("ETHUSDT", f.T0, -1, 0.9, "filtered: x"),
               now_ms=f.T0 + 10 * f.MINUTE, equity=99.0)
    )  # fmt: skip

    assert [x.order_id for x in await queries.fills(store, 2)] == ["o-2", "o-1"]
    series = await store.equity_series()
    assert series == [(f.T0, 100.0), (f.T0 + f.MINUTE, 101.0), (f.T0 + 2 * f.MINUTE, 102.0),
                      (f.T0 + 10 * f.MINUTE, 99.0)]  # fmt: skip
    assert await store.equity_series(since_ms=f.T0 + 2 * f.MINUTE) == series[2:]
    assert [s.ts for s in await store.signals(f.SYMBOL, 2)] == [f.T0 + 2 * f.MINUTE, f.T0 + f.MINUTE]
    assert await store.signals("ETHUSDT", 5) == [SignalRecord("ETHUSDT", f.T0, -1, 0.9, "filtered: x")]
    assert len(await store.signals(None, 10)) == 4


async def test_order_status_changes(store: Store) -> None:
    await store.record_step(f.step(f.T0, orders=[f.order("o-1"), f.order("o-2")]))
    assert [o.order_id for o in await store.pending_orders()] == ["o-1", "o-2"]
    assert await queries.set_order_status(store, "o-1", "cancelled") is True
    assert await queries.set_order_status(store, "nope", "refused") is False
    with pytest.raises(ValueError):
        await queries.set_order_status(store, "o-2", "lost")
    assert await store.order_status("o-1") == "cancelled"
    assert await store.pending_orders() == [f.order("o-2")]


async def test_flags_and_core_state(store: Store) -> None:
    assert await store.load_core_state() is None
    flags = await store.get_flags()
    assert (flags.clean_shutdown, flags.last_heartbeat_ms, flags.paused, flags.risk_state) == (
        True, None, False, "ACTIVE")  # fmt: skip
    await store.set_flags(clean_shutdown=False, heartbeat_ms=123)
    await store.set_flags(heartbeat_ms=456)
    flags = await store.get_flags()
    assert (flags.clean_shutdown, flags.last_heartbeat_ms) == (False, 456)
    await store.record_step(
        f.step(None, symbol=None, core_state={"paused": True, "risk_state": "HALTED", "halted_reason": "dd"})
    )
    flags = await store.get_flags()
    assert (flags.paused, flags.risk_state, flags.halted_reason) == (True, "HALTED", "dd")
    assert flags.clean_shutdown is False


async def test_state_survives_restart(db_url: str) -> None:
    store = await Store.open(db_url)
    _, rec = _buy_step()
    try:
        assert await store.record_step(rec) is True
        await store.set_flags(clean_shutdown=False)
    finally:
        await store.close()

    reopened = await Store.open(db_url)
    try:
        assert await reopened.record_step(rec) is False
        assert await reopened.load_core_state() == {"cash": 6_997.0, "paused": False, "risk_state": "ACTIVE"}
        assert (await reopened.get_flags()).clean_shutdown is False
        assert len(await queries.fills(reopened, 10)) == 1
    finally:
        await reopened.close()
