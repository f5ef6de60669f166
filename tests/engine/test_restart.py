"""Restart: a new engine on the same database carries on exactly where the old one left off.

The live side is the real engine polling the real ExchangeFeed against the fake exchange over
127.0.0.1 and persisting to a real database (a SQLite file, and PostgreSQL). The old engine is
stopped cleanly, or dropped without stop() (a crash between two steps). The reference for "as if
uninterrupted" is run_backtest over the same candles (test_parity proves the live loop equals it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from sqlalchemy import text

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.model import CandleArrays, GenericTradingModel, SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.trading import TradingCore
from engine.events import EventBus
from engine.exchange.client import ExchangeSpec
from engine.exchange.venue import Venue
from engine.facade import EngineFacade
from engine.feeds.exchange import ExchangeFeed
from engine.loop import LiveEngine
from engine.store import create_engine
from engine.store.repo import Store
from sim.exchange import FakeExchange, FakeExchangeServer
from tests.engine.helpers import real_candles, wait_until

SYMBOL, TF, STEP = "ETHBTC", "5m", 300_000
LIMITS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.02,
                    take_profit_pct=0.04, trailing_stop_pct=0.015, max_daily_loss_pct=0.03, max_drawdown_pct=0.10)
COSTS = Costs(fee_bps=10, slippage_bps=5)
FILTERS = SignalFilters(min_confidence=0.6, cooldown_ms=30 * 60_000)


async def fast_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def sql_scalar(url: str, query: str) -> object:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(query))).scalar_one()
    finally:
        await engine.dispose()


@dataclass
class Rig:
    """A fake exchange serving ``candles`` by a SimClock, and live engines built on ``db_url``."""

    candles: CandleArrays
    db_url: str
    base_url: str
    clock: SimClock
    fake: FakeExchange
    model: Callable[[], GenericTradingModel] = lambda: SmaCrossModel(5, 15)
    limits: RiskLimits = LIMITS
    costs: Costs = COSTS
    filters: SignalFilters = FILTERS
    stale_after: int = 10_000
    feed_timeout_s: float = 10.0
    feed_attempts: int = 5
    poll_interval: float = 0.0005
    engine: LiveEngine | None = None
    store: Store | None = None
    feed: ExchangeFeed | None = None
    stepped_upto: int = 0  # candles [0, stepped_upto) have closed on the clock
    bus: EventBus = field(default_factory=EventBus)
    rules: MarketRules | None = None  # the fake exchange's rules for SYMBOL, as the live side trades under them

    async def open(self) -> LiveEngine:
        engine = await self.build()
        await engine.start()
        await wait_until(lambda: engine.symbols[SYMBOL].warmed)
        assert engine.core.rules_for(SYMBOL) == self.rules  # from the exchange's markets (the first poll reads them)
        return engine

    async def build(self) -> LiveEngine:
        """The engine on its store and feed, not started."""
        self.store = await Store.open(self.db_url)
        self.feed = ExchangeFeed(self.base_url, SYMBOL, TF, self.clock, sleep=fast_sleep,
                                 timeout_s=self.feed_timeout_s, max_attempts=self.feed_attempts)
        core = TradingCore(limits=self.limits, costs=self.costs, filters=self.filters, starting_cash=10_000,
                           clock=self.clock)
        self.engine = LiveEngine(core=core, store=self.store, feeds={SYMBOL: self.feed}, models={SYMBOL: self.model()},
                                 clock=self.clock, bus=self.bus, timeframe=TF, poll_interval=self.poll_interval,
                                 stale_after=self.stale_after)
        return self.engine

    def facade(self) -> EngineFacade:
        assert self.engine is not None and self.store is not None
        return EngineFacade(self.engine, records=self.store, strategy="test")

    async def close_candle(self, i: int) -> None:
        """Let candle i close on the clock and wait until the engine has decided on it."""
        assert self.engine is not None
        core = self.engine.core
        self.clock.set(int(self.candles.ts[i]) + STEP)
        self.stepped_upto = i + 1
        await wait_until(lambda: core.last_candle_ts.get(SYMBOL) == int(self.candles.ts[i]))
        async with self.engine.lock:  # the step is committed (the core moves first, under the lock)
            pass

    async def run_to(self, stop: int) -> None:
        for i in range(self.stepped_upto, stop):
            await self.close_candle(i)

    async def stop(self) -> None:
        assert self.engine is not None and self.store is not None
        await self.engine.stop()
        await self.store.close()
        self.engine = None

    async def crash(self) -> None:
        """Drop the engine between two steps: its tasks die, nothing more is written (no stop record)."""
        assert self.engine is not None and self.store is not None and self.feed is not None
        async with self.engine.lock:  # not in the middle of a step
            tasks = list(self.engine._tasks)
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.feed.close()  # the process is gone: so is its HTTP session
        await self.store.close()
        self.engine = None


@pytest.fixture
async def rig_factory(db_url: str):
    servers: list[FakeExchangeServer] = []
    rigs: list[Rig] = []

    async def make(candles: CandleArrays, **kw: object) -> Rig:
        clock = SimClock(int(candles.ts[0]))  # nothing closed yet: every candle is traded live
        fake = FakeExchange({SYMBOL: candles}, clock, TF, hang_s=0.5)
        server = FakeExchangeServer(fake)
        servers.append(server)
        base_url = await server.start()
        venue = Venue(ExchangeSpec("binance", base_url=base_url))
        try:  # the rules the live side will trade under, for the backtest to apply too
            await venue.load_markets()
            rules = venue.rules(SYMBOL)
        finally:
            await venue.close()
        assert rules.any
        rig = Rig(candles, db_url, base_url, clock, fake, **kw)  # type: ignore[arg-type]
        rig.rules = rules
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        if rig.engine is not None:  # a failed test left it running
            await rig.stop()
    for server in servers:
        await server.stop()


def backtest(candles: CandleArrays, rig: Rig):
    """The backtest of ``candles`` under the same exchange rules the live side traded under."""
    return run_backtest(candles, rig.model(), BacktestConfig(symbol=SYMBOL, cash=10_000, limits=rig.limits,
                                                             costs=rig.costs, filters=rig.filters, rules=rig.rules))


CANDLES = 130


def cut_points(candles: CandleArrays) -> dict[str, int]:
    """Where to interrupt: right after an entry decision (its order pending), and just before a signal."""
    result = backtest(candles, Rig(candles, "", "", SimClock(), None))  # type: ignore[arg-type]
    ts = [int(t) for t in candles.ts]
    first = result.trades[0]
    entry_fill = ts.index(first.entry_time)
    later_entry = ts.index(result.trades[2].entry_time)
    return {"order-pending": entry_fill,  # entry decided on entry_fill - 1, fills at entry_fill's open
            "signal-soon": later_entry - 3}  # the signal comes 2 candles after the restart: the window must be warm


@pytest.mark.parametrize(("cut", "how"), [("order-pending", "crash"), ("signal-soon", "stop")])
async def test_restart_continues_as_if_uninterrupted(how: str, cut: str, rig_factory, db_url: str) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CANDLES)
    k = cut_points(candles)[cut]
    rig: Rig = await rig_factory(candles)
    expected = backtest(candles, rig)
    assert len(expected.trades) >= 4

    engine = await rig.open()
    await rig.run_to(k)
    before = engine.core.snapshot()
    if cut == "order-pending":
        assert before["pending"], "the entry order decided on the last candle should be pending"
    assert rig.store is not None
    pending_before = await rig.store.pending_orders()
    await (rig.stop() if how == "stop" else rig.crash())

    engine = await rig.open()
    assert engine.restored
    assert engine.core.snapshot() == before
    assert rig.store is not None
    assert await rig.store.pending_orders() == pending_before
    await rig.run_to(len(candles))
    trades = await rig.store.trades(limit=10_000)
    await rig.stop()

    trades.reverse()
    assert trades == expected.trades
    assert engine.core.portfolio.equity() == pytest.approx(expected.final_equity, rel=0, abs=1e-9)
    decisions = await sql_scalar(db_url, "SELECT count(*) FROM decisions")
    distinct = await sql_scalar(db_url, "SELECT count(*) FROM (SELECT DISTINCT symbol, candle_ts FROM decisions) d")
    signals = await sql_scalar(db_url, "SELECT count(*) FROM signals")
    assert decisions == distinct == signals == len(candles)


@pytest.mark.parametrize("how", ["stop", "crash"])
async def test_restart_restores_positions_cash_pause_halt_cooldowns_risk_and_pending_orders(
        how: str, rig_factory, db_url: str) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, CANDLES)
    rig: Rig = await rig_factory(candles, filters=SignalFilters(min_confidence=0.6, cooldown_ms=60 * 60_000))
    expected = backtest(candles, rig)
    ts = [int(t) for t in candles.ts]
    second_entry = ts.index(expected.trades[1].entry_time)
    engine = await rig.open()
    await rig.run_to(second_entry + 1)  # one trade closed (cooldown set), a position open
    facade = rig.facade()
    assert engine.core.cooldown_until
    assert engine.core.portfolio.positions
    assert await facade.set_risk("max_drawdown_pct", 0.0005) == {**rig.limits.as_dict(), "max_drawdown_pct": 0.0005}
    i = second_entry + 1
    while engine.core.state.value != "HALTED":
        await rig.close_candle(i)
        i += 1
    if not engine.core.portfolio.positions:  # the drop that halted us also stopped us out
        pytest.skip("the halt came with a stop-out on this slice")
    assert await facade.pause()
    acks = await facade.close(SYMBOL)
    assert not isinstance(acks, type(None)) and len(acks) == 1  # type: ignore[arg-type]
    before = engine.core.snapshot()
    cooldowns = dict(engine.core.cooldown_until)
    status, balance, positions = facade.status(), facade.balance(), facade.positions()
    assert rig.store is not None
    pending_before = await rig.store.pending_orders()
    assert [o.order_id for o in pending_before][-1] == acks[0].order_id  # type: ignore[index]
    await (rig.stop() if how == "stop" else rig.crash())

    engine = await rig.open()
    facade = rig.facade()
    assert engine.core.snapshot() == before
    assert engine.core.paused and engine.core.state.value == "HALTED"
    assert facade.risk()["max_drawdown_pct"] == 0.0005
    assert facade.positions() == positions
    assert facade.balance().cash == balance.cash and facade.balance().equity == balance.equity
    assert facade.status().risk_reason == status.risk_reason
    assert engine.core.cooldown_until == cooldowns
    assert rig.store is not None
    assert await rig.store.pending_orders() == pending_before
    flags = await rig.store.get_flags()  # the engine_state mirror of the blob
    assert (flags.paused, flags.risk_state, flags.halted_reason) == (True, "HALTED", status.risk_reason)
    # the pending close fills at the next open, once: not lost, not repeated
    await rig.close_candle(i)
    assert not engine.core.portfolio.positions
    assert await rig.store.pending_orders() == [o for o in pending_before if o.order_id != acks[0].order_id]  # type: ignore[index]
    await rig.stop()
    fills = await sql_scalar(db_url, f"SELECT count(*) FROM fills WHERE order_id = '{acks[0].order_id}'")  # type: ignore[index]
    assert fills == 1
    assert np.isfinite(balance.equity)
