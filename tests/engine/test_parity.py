"""The defining property: the live loop and the backtest run the same decisions.

The live side is the real asyncio engine polling our ExchangeFeed (real ccxt) against the local fake
exchange over 127.0.0.1 (as Binance, and as OKX), persisting every step to a real database; the backtest runs the same
candles through run_backtest. Trades and final equity must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import TradingCore
from engine.events import EventBus
from engine.exchange.client import ExchangeSpec
from engine.exchange.venue import Venue
from engine.feeds.exchange import ExchangeFeed
from engine.loop import LiveEngine
from engine.store.repo import Store
from sim.exchange import FakeExchange, FakeExchangeServer, FakeMarketRules
from tests.engine.helpers import real_candles, wait_until

LIMITS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.02,
                    take_profit_pct=0.04, trailing_stop_pct=0.015, max_daily_loss_pct=0.03, max_drawdown_pct=0.10)
COSTS = Costs(fee_bps=10, slippage_bps=5)
FILTERS = SignalFilters(min_confidence=0.6, cooldown_ms=30 * 60_000)


@pytest.mark.parametrize(("limits", "exchange_id"),
                         [(LIMITS, "binance"), (RiskLimits(1, 1, 1, 0, 0, 0, 0, 0), "binance"),
                          (LIMITS, "okx")], ids=["protective", "all-in", "protective-okx"])
async def test_live_loop_and_backtest_make_identical_trades(limits: RiskLimits, exchange_id: str, db_url: str) -> None:
    """Over ccxt, on two exchanges with different protocols (Binance, OKX), the live side trades as the backtest,
    both under the exchange's market rules (amount step, price tick, minimums) as its markets give them."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 1500)
    symbol, tf, step = "ETHBTC", "5m", 300_000
    model = SmaCrossModel(10, 30)
    clock = SimClock(int(candles.ts[0]))  # nothing is closed yet: every candle is traded live
    fake = FakeExchange({symbol: candles}, clock, tf, personality=exchange_id,
                        rules={symbol: FakeMarketRules(tick_size=0.000001, step_size=0.1, min_qty=0.1,
                                                       min_notional=0.01)})
    store = await Store.open(db_url)
    try:
        async with FakeExchangeServer(fake) as base_url:
            # ccxt's spacing of requests off: 1,500 candles, one request each, against a local server
            venue = Venue(ExchangeSpec(exchange_id, base_url=base_url, rate_limit=False))
            await venue.load_markets()
            rules = venue.rules(symbol)
            assert rules.amount_step == 0.1 and rules.price_tick == 0.000001
            expected = run_backtest(candles, model, BacktestConfig(symbol=symbol, cash=10_000, limits=limits,
                                                                   costs=COSTS, filters=FILTERS, rules=rules))
            assert len(expected.trades) > 20
            assert all(round(t.quantity / 0.1, 6).is_integer() for t in expected.trades)  # the step bites
            feed = ExchangeFeed(venue, symbol, tf, clock)
            core = TradingCore(limits=limits, costs=COSTS, filters=FILTERS, starting_cash=10_000, clock=clock)
            engine = LiveEngine(core=core, store=store, feeds={symbol: feed}, models={symbol: model}, clock=clock,
                                bus=EventBus(), timeframe=tf, poll_interval=0.0005, stale_after=10_000)
            try:
                await engine.start()
                await wait_until(lambda: engine.symbols[symbol].warmed)  # first poll (warm-up) saw nothing closed
                for i in range(len(candles)):
                    clock.set(int(candles.ts[i]) + step)  # candle i has just closed
                    await wait_until(lambda i=i: core.last_candle_ts.get(symbol) == int(candles.ts[i]))
                await engine.stop()
            finally:
                await venue.close()
        live_trades = await store.trades(limit=10_000)
    finally:
        await store.close()

    live_trades.reverse()  # the store returns newest first
    assert live_trades == expected.trades
    assert round(core.portfolio.equity(), 2) == round(expected.final_equity, 2)
    assert np.isclose(core.portfolio.equity(), expected.final_equity, rtol=0, atol=1e-9)
