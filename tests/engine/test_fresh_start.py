"""A fresh engine trades at once, and shows a fresh price between candles.

The live side is the real engine polling the real ExchangeFeed against the fake exchange over
127.0.0.1 (klines and ticker), persisting to a real SQLite file; the reference is run_backtest.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.model import UP, CandleArrays, SmaCrossModel
from engine.core.risk import RiskLimits
from engine.core.trading import TradingCore
from engine.core.types import Fill
from engine.events import EventBus
from engine.facade import EngineFacade
from engine.feeds.exchange import ExchangeFeed
from engine.feeds.replay import ReplayFeed
from engine.loop import LiveEngine
from engine.store.repo import Store
from sim.exchange import FakeExchange, FakeExchangeServer
from tests.engine.helpers import exchange_rules, real_candles, wait_until
from tests.engine.test_restart import COSTS, FILTERS, LIMITS
from tests.store import queries

SYMBOL, TF, STEP = "ETHBTC", "5m", 300_000
HISTORY = 300
NO_STOPS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0,
                      take_profit_pct=0, trailing_stop_pct=0, max_daily_loss_pct=0, max_drawdown_pct=0)


def first_entry_signal(candles: CandleArrays, model: SmaCrossModel, at_least: int) -> int:
    """Index of the first candle at or after ``at_least`` on which the model says "up"."""
    up = np.asarray(model.predict_proba(model.features(candles)))[:, UP] == 1.0
    return int(np.flatnonzero(up[at_least:])[0]) + at_least


async def stored_fills(store: Store, timeout: float) -> list[Fill]:
    """The fills in the store (newest first) as soon as there is one."""
    deadline = time.monotonic() + timeout
    while not (fills := await queries.fills(store, 10)):
        assert time.monotonic() < deadline, f"no fill within {timeout} s"
        await asyncio.sleep(0.01)
    return fills


async def open_engine(tmp_path: Path, fake: FakeExchange, base_url: str, clock: SimClock, *,
                      poll_interval: float, ticker_interval: float = 0.0,
                      limits: RiskLimits = LIMITS) -> tuple[LiveEngine, Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    feed = ExchangeFeed(base_url, SYMBOL, TF, clock, history=HISTORY)
    core = TradingCore(limits=limits, costs=COSTS, filters=FILTERS, starting_cash=10_000, clock=clock)
    engine = LiveEngine(core=core, store=store, feeds={SYMBOL: feed}, models={SYMBOL: SmaCrossModel(10, 30)},
                        clock=clock, bus=EventBus(), timeframe=TF, poll_interval=poll_interval, stale_after=10_000,
                        ticker_interval=ticker_interval, history=HISTORY)
    return engine, store


async def test_a_fresh_engine_decides_at_once_and_fills_within_one_poll_interval(tmp_path: Path) -> None:
    """The newest candle of the warm-up history is decided by the first poll; its entry fills at the next
    candle's open, seen by the next scheduled poll: one poll interval after start, not two candles later."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 1500)
    k = first_entry_signal(candles, SmaCrossModel(10, 30), HISTORY + 50)
    clock = SimClock(int(candles.ts[k]) + STEP)  # candle k (an SMA cross up) has just closed
    fake = FakeExchange({SYMBOL: candles}, clock, TF)
    poll_interval = 3.0  # the next poll (~3 s) and the one after (~6 s) stay apart on a busy machine
    # compile the kernel first (numba, when on): the timing below is the engine's, not the compiler's
    run_backtest(candles.slice(0, 100), SmaCrossModel(10, 30), BacktestConfig(symbol=SYMBOL, step_every_candle=True))
    async with FakeExchangeServer(fake) as base_url:
        engine, store = await open_engine(tmp_path, fake, base_url, clock, poll_interval=poll_interval)
        t0 = time.monotonic()
        await engine.start()
        st = engine.symbols[SYMBOL]
        await wait_until(lambda: st.last_signal is not None)  # the first poll's step
        assert st.last_signal is not None and st.last_signal.ts == int(candles.ts[k])
        assert st.last_signal.outcome == "order"  # decided at once: an entry for the next candle's open
        assert len(st.window) == st.window.maxlen and len(st.recent) == HISTORY
        clock.set(int(candles.ts[k + 1]) + STEP)  # the next candle closes during the first poll interval
        fills = await stored_fills(store, timeout=poll_interval + 2.0)
        filled_after = time.monotonic() - t0
        await engine.stop()
    await store.close()
    assert filled_after <= poll_interval * 1.5, f"first fill {filled_after:.2f} s after start"
    entry = fills[-1]  # newest first: the entry (its stop may have closed it within the same candle)
    assert (entry.order_id, entry.side.value, entry.ts) == (f"{SYMBOL}-{int(candles.ts[k])}-entry", "buy",
                                                            int(candles.ts[k + 1]))
    tick = 1e-8  # the fake exchange's price tick for ETHBTC: a buy's price is rounded up to it
    assert entry.price == pytest.approx(candles.open[k + 1] * (1 + COSTS.slippage_bps / 10_000), abs=tick)


async def test_a_fresh_start_mid_series_trades_as_the_backtest_of_its_window(tmp_path: Path) -> None:
    """Parity from a fresh start: the engine starts 400 candles into the series with 300 of history; its
    trades equal a backtest over the same candles from the model window before the first decided one."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 1400)
    start = 400  # candles 100..399 are the history; 399 is decided first
    model = SmaCrossModel(10, 30)
    lookback = model.lookback
    window = candles.slice(start - lookback, len(candles))  # candle 399 is the first with a full window
    clock = SimClock(int(candles.ts[start - 1]) + STEP)
    fake = FakeExchange({SYMBOL: candles}, clock, TF)
    async with FakeExchangeServer(fake) as base_url:
        rules = await exchange_rules(base_url, SYMBOL)  # what the live side trades under
        expected = run_backtest(window, SmaCrossModel(10, 30), BacktestConfig(
            symbol=SYMBOL, cash=10_000, limits=LIMITS, costs=COSTS, filters=FILTERS, rules=rules))
        assert len(expected.trades) > 10
        engine, store = await open_engine(tmp_path, fake, base_url, clock, poll_interval=0.0005)
        await engine.start()
        await wait_until(lambda: engine.symbols[SYMBOL].warmed)
        for i in range(start, len(candles)):
            clock.set(int(candles.ts[i]) + STEP)
            await wait_until(lambda i=i: engine.core.last_candle_ts.get(SYMBOL) == int(candles.ts[i]))
        await engine.stop()
    live = await store.trades(limit=10_000)
    decided = await store.signals(SYMBOL, 100_000)
    await store.close()
    live.reverse()
    assert min(s.ts for s in decided) == int(candles.ts[start - 1]) and len(decided) == len(candles) - start + 1
    assert live == expected.trades
    assert engine.core.portfolio.equity() == pytest.approx(expected.final_equity, rel=0, abs=1e-9)


async def test_status_and_positions_show_the_ticker_price_and_its_age(tmp_path: Path) -> None:
    """Between candles /status, /positions and the order preview read the exchange's ticker (the fake
    exchange's open candle so far), with its age on the engine clock; decisions stay on closed candles."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 600)
    clock = SimClock(int(candles.ts[HISTORY]) + 120_000)  # 2 minutes into candle 300
    fake = FakeExchange({SYMBOL: candles}, clock, TF)
    async with FakeExchangeServer(fake) as base_url:
        engine, store = await open_engine(tmp_path, fake, base_url, clock, poll_interval=0.05, ticker_interval=0.05,
                                          limits=NO_STOPS)  # the position stays open for /positions
        facade = EngineFacade(engine, records=store, strategy="sma-cross(10,30)")
        await engine.start()
        st = engine.symbols[SYMBOL]
        await wait_until(lambda: st.last_signal is not None and st.tick is not None)
        (market,) = facade.status().symbols
        ticker = fake.price(SYMBOL)
        assert ticker is not None and ticker != candles.close[HISTORY - 1]
        assert (market.last_price, market.price_source, market.price_age_ms) == (ticker, "ticker", 0)
        assert market.last_candle_ts == int(candles.ts[HISTORY - 1])  # decided: the last closed candle only
        clock.advance(30_000)  # no await: the ticker task cannot refresh in between
        assert facade.status().symbols[0].price_age_ms == 30_000

        ack = await facade.buy(SYMBOL, 1000.0)
        assert not hasattr(ack, "code"), ack
        clock.set(int(candles.ts[HISTORY + 1]) + STEP)  # candles 300 and 301 close: the order fills
        await wait_until(lambda: engine.core.last_candle_ts.get(SYMBOL) == int(candles.ts[HISTORY + 1]))
        assert SYMBOL in engine.core.portfolio.positions
        clock.advance(1_000)
        await wait_until(lambda: st.tick is not None and st.tick.ts > int(candles.ts[HISTORY + 1]) + STEP)
        clock.advance(90_000)  # no await: a ticker 90 s old, newer than the last candle's close
        (position,) = facade.positions()
        (book,) = engine.core.portfolio.views()  # marked at the last close, as the kernel keeps it
        (market,) = facade.status().symbols
        await engine.stop()
    await store.close()
    assert st.tick is not None and position.mark_price == st.tick.price != book.mark_price
    assert position.unrealized_pnl == pytest.approx(book.unrealized_pnl + (st.tick.price - book.mark_price)
                                                    * book.quantity, rel=1e-12)
    assert (market.last_price, market.price_source, market.price_age_ms) == (st.tick.price, "ticker", 90_000)


async def test_without_a_ticker_the_price_is_the_last_close_with_its_age(tmp_path: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 400)
    clock = SimClock(int(candles.ts[HISTORY]) + 120_000)
    fake = FakeExchange({SYMBOL: candles}, clock, TF)
    async with FakeExchangeServer(fake) as base_url:
        engine, store = await open_engine(tmp_path, fake, base_url, clock, poll_interval=3600)
        facade = EngineFacade(engine, records=store, strategy="sma-cross(10,30)")
        await engine.start()
        await wait_until(lambda: engine.symbols[SYMBOL].last_signal is not None)
        (market,) = facade.status().symbols
        await engine.stop()
    await store.close()
    assert market.last_price == candles.close[HISTORY - 1]
    assert (market.price_source, market.price_age_ms) == ("candle", 120_000)  # closed 2 minutes ago


async def test_a_replay_ticker_is_shown_as_the_close_it_is(tmp_path: Path) -> None:
    """A replayed series has no price between candles: its ticker (the newest close, which the engine may
    not have polled yet) is labelled as a candle's close, with the age since that close."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 400)
    clock = SimClock(int(candles.ts[HISTORY]) + 60_000)
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    core = TradingCore(limits=LIMITS, costs=COSTS, filters=FILTERS, starting_cash=10_000, clock=clock)
    engine = LiveEngine(core=core, store=store, feeds={SYMBOL: ReplayFeed(candles, SYMBOL, TF, clock)},
                        models={SYMBOL: SmaCrossModel(10, 30)}, clock=clock, bus=EventBus(), timeframe=TF,
                        poll_interval=3600, ticker_interval=0.01, history=HISTORY)
    facade = EngineFacade(engine, records=store, strategy="sma-cross(10,30)")
    await engine.start()
    st = engine.symbols[SYMBOL]
    await wait_until(lambda: st.last_signal is not None)
    clock.set(int(candles.ts[HISTORY + 1]) + 20_000)  # candle 300 closed 20 s ago; the loop sleeps an hour
    await wait_until(lambda: st.tick is not None and st.tick.ts == int(candles.ts[HISTORY + 1]))
    (market,) = facade.status().symbols
    await engine.stop()
    await store.close()
    assert market.last_candle_ts == int(candles.ts[HISTORY - 1])
    assert (market.last_price, market.price_source, market.price_age_ms) == (candles.close[HISTORY], "candle", 20_000)
