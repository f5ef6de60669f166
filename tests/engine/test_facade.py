"""The facade over a real live engine (real ExchangeFeed, fake exchange over 127.0.0.1, real database):
every value it returns is checked against what the store and the core hold."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from engine.core.types import DAY_MS, Refusal
from engine.facade import MAX_AMOUNT, period_start
from engine.views import OrderAck
from tests.engine.helpers import real_candles
from tests.engine.test_restart import STEP, SYMBOL, Rig, rig_factory, sql_scalar
from tests.store import queries
from tests.store.dbutil import core_state_of, row_counts

__all__ = ["rig_factory"]

CANDLES = 90


async def next_free_candle(rig: Rig) -> None:
    """Step candles until no order is pending (a signal order would block a manual one)."""
    assert rig.engine is not None
    while rig.engine.core.pending.get(SYMBOL):
        await rig.close_candle(rig.stepped_upto)


async def test_reads_orders_and_settings_match_the_store_and_the_core(rig_factory, db_url: str) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CANDLES)
    rig: Rig = await rig_factory(candles)
    engine = await rig.open()
    store = rig.store
    assert store is not None
    core, pf = engine.core, engine.core.portfolio
    facade = rig.facade()
    await rig.run_to(30)

    # ---- status / balance / positions
    status = facade.status()
    assert (status.mode, status.paused, status.risk_state) == ("paper", False, core.state.value)
    assert status.equity == pf.equity() and status.cash == pf.cash
    assert status.open_positions == len(pf.positions)
    assert status.symbols[0].last_candle_ts == int(candles.ts[29])
    assert status.symbols[0].last_price == float(candles.close[29]) and not status.symbols[0].stale
    balance = facade.balance()
    trades = await store.trades(10_000)
    assert balance.cash == pf.cash and balance.equity == pf.equity()
    assert balance.realized_pnl == pytest.approx(math.fsum(t.pnl for t in trades), abs=1e-9)
    fills = await queries.fills(store, 10_000)
    assert balance.fees_paid == pytest.approx(math.fsum(f.fee for f in fills), abs=1e-12)
    assert balance.total_return == pytest.approx(pf.equity() / 10_000 - 1)
    assert facade.positions() == tuple(await store.positions())

    # ---- buy, partial sell, close one
    await next_free_candle(rig)
    if pf.positions:
        assert isinstance(await facade.close(SYMBOL), tuple)
        await rig.close_candle(rig.stepped_upto)
    ack = await facade.buy(SYMBOL, 1_000.0)
    assert isinstance(ack, OrderAck) and ack.side == "buy" and ack.amount == 1_000.0 and ack.paper
    assert [o.order_id for o in await store.pending_orders()] == [ack.order_id]
    assert await facade.buy(SYMBOL, 10.0) == Refusal("pending", f"an order for {SYMBOL} is already pending")
    i = rig.stepped_upto
    await rig.close_candle(i)
    fill = (await queries.fills(store, 1))[0]
    assert fill.order_id == ack.order_id and fill.ts == int(candles.ts[i])
    assert rig.rules is not None  # the exchange's: the price rounded up to its tick, the quantity down to its step
    assert fill.price == pytest.approx(float(candles.open[i]) * 1.0005, abs=rig.rules.price_tick)
    assert 0 <= 1_000.0 - fill.quantity * fill.price * 1.001 <= rig.rules.amount_step * fill.price * 1.001 + 1e-9
    assert await store.order_status(ack.order_id) == "filled"
    held = pf.positions[SYMBOL].quantity
    assert facade.positions()[0].quantity == held == (await store.positions())[0].quantity

    await next_free_candle(rig)
    ack = await facade.sell(SYMBOL, 300.0)
    assert isinstance(ack, OrderAck)
    i = rig.stepped_upto
    await rig.close_candle(i)
    sold = (await queries.fills(store, 1))[0]
    assert sold.order_id == ack.order_id and sold.quantity == pytest.approx(300.0 / sold.price,
                                                                            abs=rig.rules.amount_step)
    if SYMBOL in pf.positions:  # not stopped out meanwhile
        assert pf.positions[SYMBOL].quantity == pytest.approx(held - sold.quantity)
        await next_free_candle(rig)
        acks = await facade.close(SYMBOL)
        assert isinstance(acks, tuple) and len(acks) == 1
        await rig.close_candle(rig.stepped_upto)
        assert (await store.trades(1))[0].exit_reason == "manual"
    assert not pf.positions and await store.positions() == []
    assert await facade.close(SYMBOL) == Refusal("no_position", f"no {SYMBOL} position to close")
    assert await facade.close("all") == Refusal("no_position", "there are no open positions")
    assert await facade.close("DOGEUSDT") == Refusal("unknown_symbol", "DOGEUSDT is not traded by this agent")

    # ---- close all
    await next_free_candle(rig)
    assert isinstance(await facade.buy(SYMBOL, 500.0), OrderAck)
    await rig.close_candle(rig.stepped_upto)
    await next_free_candle(rig)
    if pf.positions:
        acks = await facade.close("all")
        assert isinstance(acks, tuple) and [a.symbol for a in acks] == [SYMBOL]
        await rig.close_candle(rig.stepped_upto)
    assert not pf.positions

    # ---- invalid orders write nothing
    before = await row_counts(db_url)
    for args in [(SYMBOL, "buy", float("nan")), (SYMBOL, "buy", -5.0), (SYMBOL, "buy", 0.0),
                 (SYMBOL, "buy", MAX_AMOUNT * 10), (SYMBOL, "buy", None), ("NOPE", "buy", 10.0),
                 (SYMBOL, "hold", 10.0), (SYMBOL, "sell", None)]:
        checked = facade.check_order(*args)
        assert isinstance(checked, Refusal), args
    assert isinstance(await facade.sell(SYMBOL, None), Refusal)
    assert isinstance(await facade.buy(SYMBOL, float("inf")), Refusal)
    assert await row_counts(db_url) == before

    # ---- risk get / set
    state_before = await core_state_of(db_url)
    for key, value in [("stop_loss_pct", 1.5), ("nope", 0.1), ("max_drawdown_pct", float("nan")),
                       ("position_fraction", -0.1), ("take_profit_pct", float("inf"))]:
        refused = await facade.set_risk(key, value)
        assert isinstance(refused, Refusal) and refused.code == "bad_risk_value"
        assert key in refused.reason
    assert await row_counts(db_url) == before and await core_state_of(db_url) == state_before
    assert facade.risk() == rig.limits.as_dict()
    got = await facade.set_risk("stop_loss_pct", 0.03)
    assert got == {**rig.limits.as_dict(), "stop_loss_pct": 0.03} == facade.risk()
    assert core.limits.stop_loss_pct == 0.03
    assert (await store.load_core_state())["limits"]["stop_loss_pct"] == 0.03  # type: ignore[index]

    # ---- pause / resume
    assert await facade.pause() is True and await facade.pause() is False
    assert core.paused and facade.status().paused and (await store.get_flags()).paused
    assert await facade.resume() is True and await facade.resume() is False
    assert not core.paused and not (await store.get_flags()).paused
    assert await sql_scalar(db_url, "SELECT count(*) FROM outbox WHERE event_type = 'TradingPaused'") == 2

    # ---- signal
    view = facade.signal(SYMBOL.lower())
    assert not isinstance(view, Refusal)
    assert view.last == (await store.signals(SYMBOL, 1))[0]
    assert view.would_trade == (view.last is not None and view.last.outcome == "order")
    assert facade.signal("NOPE") == Refusal("unknown_symbol", "NOPE is not traded by this agent")

    await rig.run_to(CANDLES)
    # ---- trades paging
    all_trades = await store.trades(10_000)
    assert len(all_trades) >= 3
    page, pages = 2, []
    for offset in range(0, len(all_trades) + page, page):
        got_page = await facade.trades(page, offset)
        assert got_page.total == len(all_trades) and got_page.offset == offset
        pages.extend(got_page.items)
    assert pages == all_trades

    # ---- pnl by period / daily / performance
    now = rig.clock.now_ms()
    series = await store.equity_series(None)
    for period in ("day", "week", "month", "all"):
        pnl = await facade.pnl(period)
        start = period_start(period, now)
        start_eq = ([10_000.0] + [eq for ts, eq in series if ts <= start])[-1]
        in_period = [t for t in all_trades if start <= t.exit_time <= now]
        assert pnl.start_ms == start and pnl.end_ms == now
        assert pnl.start_equity == start_eq and pnl.end_equity == pf.equity()
        assert pnl.pnl == pytest.approx(pf.equity() - start_eq) and pnl.trades == len(in_period)
        assert pnl.wins == sum(1 for t in in_period if t.pnl > 0)
        assert pnl.fees == pytest.approx(math.fsum(t.fee for t in in_period))
    days = await facade.daily(3)
    today = now // DAY_MS
    born = min(series[0][0] // DAY_MS, rig.engine.started_ms // DAY_MS)  # no day before the agent's first
    assert len(days) == min(3, today - born + 1) and days[0].end_equity == series[-1][1]
    assert days[-1].day == datetime.fromtimestamp(max(born, today - 2) * 86_400, tz=UTC).strftime("%Y-%m-%d")
    for back, day in enumerate(days):
        d = today - back
        assert day.trades == sum(1 for t in all_trades if d * DAY_MS <= t.exit_time < (d + 1) * DAY_MS)
    perf = await facade.performance()
    assert [p.symbol for p in perf] == [SYMBOL]
    assert perf[0].trades == len(all_trades) and perf[0].wins == sum(1 for t in all_trades if t.pnl > 0)
    assert perf[0].pnl == pytest.approx(math.fsum(t.pnl for t in all_trades))
    assert perf[0].fees == pytest.approx(math.fsum(t.fee for t in all_trades))
    assert perf[0].avg_pnl_pct == pytest.approx(math.fsum(t.pnl_pct for t in all_trades) / len(all_trades))
    assert perf[0].worst_pnl_pct == min(t.pnl_pct for t in all_trades)
    assert perf[0].best_pnl_pct == max(t.pnl_pct for t in all_trades)

    # ---- charts
    chart = await facade.equity_chart("all")
    assert list(zip(chart.ts, chart.equity, strict=True)) == series
    eq = np.array(chart.equity)
    assert np.allclose(chart.drawdown, 1 - eq / np.maximum.accumulate(eq))
    price = await facade.price_chart_with_trades(SYMBOL, 40)
    assert not isinstance(price, Refusal)
    assert list(price.ts) == [int(t) for t in candles.ts[-40:]]
    assert list(price.close) == [float(c) for c in candles.close[-40:]]
    assert list(price.trades) == [t for t in reversed(all_trades) if t.exit_time >= int(candles.ts[-40])]
    pos = pf.positions.get(SYMBOL)
    assert price.open_entry == (None if pos is None else (pos.entry_ts, pos.avg_price))
    assert isinstance(await facade.price_chart_with_trades("NOPE"), Refusal)
    await rig.stop()


async def test_daily_pnl_counts_from_the_last_equity_before_the_window_even_after_an_idle_day(
        rig_factory, db_url: str) -> None:
    """The engine ran on day D, was idle on D+1 and D+2 and does one operator action on D+3: nothing
    changed, so every day's P&L is 0, counted from the equity at the end of D."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 60)
    rig: Rig = await rig_factory(candles)
    engine = await rig.open()
    facade = rig.facade()
    await rig.run_to(60)
    assert engine.core.portfolio.equity() != 10_000.0
    equity = engine.core.portfolio.equity()
    day = (int(candles.ts[-1]) + STEP) // DAY_MS
    rig.clock.set((day + 3) * DAY_MS + 3_600_000)  # three days later, no candles meanwhile
    assert await facade.pause()
    for n in (1, 2, 3):
        days = await facade.daily(n)
        assert [d.end_equity for d in days] == [equity] * n
        assert [d.pnl for d in days] == [0.0] * n
    assert (await facade.pnl("day")).pnl == 0.0
    await rig.stop()
