"""Paper-live parity for every built-in strategy, the CatBoost strategy and a strategy a user writes in a file.

As tests/engine/test_parity.py does for the sma-cross model: the live side is the real asyncio engine polling
our ExchangeFeed (real ccxt) against the local fake exchange over 127.0.0.1, under the exchange's market rules,
running the strategy behind ``StrategyModel`` on the trailing window of ``lookback`` candles per closed candle;
the backtest runs the same candles through ``run_backtest`` with the same strategy, once over the whole series.
Both use the risk limits ``strategy_limits`` gives (each stop the strategy declares in place of the config's).
Trades (entry and exit times, prices, quantities, fees, reasons) and final equity must be identical, and so
must the trades' entry and exit tags (the live loop hands the newest candle's tag to the order it makes, the
core keeps the open position's, the store keeps both with the trade).

The user's strategy is written into a separate folder as the docs show one (``from engine.strategy import
Strategy, IntParam, ema, rsi``) and loaded by ``path/file.py:Class``. The store is a SQLite file: the store's
behaviour on PostgreSQL is test_parity's subject; this file's is the strategies (1,200 candles each).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import TradingCore
from engine.core.types import Trade
from engine.events import EventBus
from engine.exchange.client import ExchangeSpec
from engine.exchange.venue import Venue
from engine.feeds.exchange import ExchangeFeed
from engine.loop import LiveEngine
from engine.store.repo import Store
from engine.strategy import Strategy
from engine.strategy.builtins import BUILTINS
from engine.strategy.loader import load_strategy
from engine.strategy.model import StrategyModel, strategy_limits
from sim.exchange import FakeExchange, FakeExchangeServer, FakeMarketRules
from tests.engine.helpers import real_candles, wait_until
from tests.strategy.test_catboost_strategy import train_small_model
from tests.strategy.user_strategy import USER_STRATEGY

LIMITS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.02,
                    take_profit_pct=0.04, trailing_stop_pct=0.015, max_daily_loss_pct=0.03, max_drawdown_pct=0.10)
COSTS = Costs(fee_bps=10, slippage_bps=5)
FILTERS = SignalFilters(min_confidence=0.45, cooldown_ms=30 * 60_000)
SYMBOL, TF, STEP = "ETHBTC", "5m", 300_000
N_CANDLES = 900  # enough for every strategy to trade (>= 8 trades) and exit in every way it can

USER_FILE = USER_STRATEGY  # as the docs teach (tests/strategy/user_strategy.py)
USER = "user-file:EmaRsi"
CATBOOST = "engine.strategy.catboost:CatBoostStrategy"
CASES = [*BUILTINS, *([] if "catboost" in BUILTINS else [CATBOOST]), USER]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("catboost") / "eth-btc-strategy-test")


def strategy_for(case: str, tmp_path: Path, model_dir: Path) -> Strategy:
    if case == USER:
        path = tmp_path / "my_strategies" / "ema_rsi.py"
        path.parent.mkdir()
        path.write_text(USER_FILE, encoding="utf-8")
        return load_strategy(f"{path}:EmaRsi", {"fast": "10"})
    cls = BUILTINS.get(case)
    needs_model = (cls is None and case == CATBOOST) or (cls is not None and "model" in cls.parameters())
    return load_strategy(case, {"model": str(model_dir)} if needs_model else None)


async def trade_live(candles: CandleArrays, strategy: Strategy, limits: RiskLimits, clock: SimClock, base_url: str,
                     db_path: Path) -> tuple[list[Trade], float]:
    """Every candle of ``candles`` closes in turn (``clock``, the fake exchange's too, moves past it); the live
    engine trades each through the fake exchange."""
    venue = Venue(ExchangeSpec("binance", base_url=base_url, rate_limit=False))
    store = await Store.open(f"sqlite+aiosqlite:///{db_path}")
    try:
        await venue.load_markets()
        core = TradingCore(limits=limits, costs=COSTS, filters=FILTERS, starting_cash=10_000, clock=clock)
        engine = LiveEngine(core=core, store=store, feeds={SYMBOL: ExchangeFeed(venue, SYMBOL, TF, clock)},
                            models={SYMBOL: StrategyModel(strategy)}, clock=clock, bus=EventBus(), timeframe=TF,
                            poll_interval=0.0005, stale_after=10_000)
        await engine.start()
        await wait_until(lambda: engine.symbols[SYMBOL].warmed)
        for i in range(len(candles)):
            clock.set(int(candles.ts[i]) + STEP)  # candle i has just closed
            await wait_until(lambda i=i: core.last_candle_ts.get(SYMBOL) == int(candles.ts[i]))
        await engine.stop()
        trades = await store.trades(limit=10_000)
    finally:
        await venue.close()
        await store.close()
    trades.reverse()  # the store returns newest first
    return trades, core.portfolio.equity()


@pytest.mark.parametrize("case", CASES)
async def test_a_strategy_trades_live_exactly_as_in_its_backtest(case: str, tmp_path: Path, model_dir: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, N_CANDLES)
    strategy = strategy_for(case, tmp_path, model_dir)
    limits = strategy_limits(strategy, LIMITS)
    clock = SimClock(int(candles.ts[0]))  # nothing is closed yet: every candle is traded live
    fake = FakeExchange({SYMBOL: candles}, clock, TF,
                        rules={SYMBOL: FakeMarketRules(tick_size=0.000001, step_size=0.1, min_qty=0.1,
                                                       min_notional=0.01)})
    async with FakeExchangeServer(fake) as base_url:
        venue = Venue(ExchangeSpec("binance", base_url=base_url, rate_limit=False))
        try:
            await venue.load_markets()
            rules = venue.rules(SYMBOL)
        finally:
            await venue.close()
        expected = run_backtest(candles, StrategyModel(strategy),
                                BacktestConfig(symbol=SYMBOL, cash=10_000, limits=limits, costs=COSTS,
                                               filters=FILTERS, rules=rules))
        assert len(expected.trades) >= 8
        assert {t.exit_reason for t in expected.trades} >= {"signal", "trailing_stop"}  # signals and stops both
        live, equity = await trade_live(candles, strategy, limits, clock, base_url, tmp_path / "agent.db")

    assert [untagged(t) for t in live] == [untagged(t) for t in expected.trades]  # every trading decision
    assert np.isclose(equity, expected.final_equity, rtol=0, atol=1e-9)
    assert live == expected.trades  # the tags too


def untagged(trade: Trade) -> Trade:
    return replace(trade, entry_tag=None, exit_tag=None)
