"""A Strategy runs through the one decision kernel behind the model face: the backtest of the sma-cross strategy
trades exactly as the backtest of ``SmaCrossModel``; a strategy written in a file backtests; the live loop over
a strategy (trailing window per candle) trades exactly as its backtest; every (action, confidence) survives the
encoding the loop and the backtest read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.codes import signals_from_proba
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import TradingCore
from engine.events import EventBus
from engine.feeds.replay import ReplayFeed
from engine.loop import LiveEngine
from engine.store.repo import Store
from engine.strategy.loader import load_strategy
from engine.strategy.model import StrategyModel
from tests.engine.helpers import real_candles

LIMITS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.02,
                    take_profit_pct=0.04, trailing_stop_pct=0.015, max_daily_loss_pct=0.03, max_drawdown_pct=0.10)
CONFIG = BacktestConfig(symbol="ETHBTC", cash=10_000, limits=LIMITS, costs=Costs(fee_bps=10, slippage_bps=5),
                        filters=SignalFilters(min_confidence=0.6, cooldown_ms=30 * 60_000))

FILE_STRATEGY = '''
from engine.strategy import IntParam, Strategy, ema


class EmaCross(Strategy):
    timeframe = "5m"
    startup_candles = 40
    fast = IntParam(3, 30, default=8)
    slow = IntParam(10, 100, default=21)

    def populate_indicators(self, df):
        df["fast"] = ema(df["close"], self.fast)
        df["slow"] = ema(df["close"], self.slow)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["fast"] > df["slow"]).astype(int)
        df["confidence"] = 0.7
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["fast"] < df["slow"]).astype(int)
        return df
'''


def test_every_action_and_confidence_survives_the_models_encoding() -> None:
    action = np.array([1, -1, 0, 1, -1, 1, 0], dtype=float)
    confidence = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.3, 0.5])
    model = StrategyModel(load_strategy("sma-cross", None))
    got_action, got_conf = signals_from_proba(model.predict_proba(np.column_stack([action, confidence])))
    assert got_action.tolist() == [1, -1, 0, 1, -1, 1, 0]
    assert got_conf[:6].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.3]


def test_the_sma_cross_strategy_backtests_exactly_as_the_sma_cross_model() -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 3000)
    by_model = run_backtest(candles, SmaCrossModel(10, 30), CONFIG)
    by_strategy = run_backtest(candles, StrategyModel(load_strategy("sma-cross", {"fast": "10", "slow": "30"})),
                               CONFIG)
    assert len(by_model.trades) > 20
    assert by_strategy.trades == by_model.trades and by_strategy.final_equity == by_model.final_equity


async def test_a_strategy_from_a_file_trades_live_as_in_its_backtest(tmp_path: Path) -> None:
    path = tmp_path / "strats" / "ema_cross.py"
    path.parent.mkdir()
    path.write_text(FILE_STRATEGY, encoding="utf-8")
    strategy = load_strategy(f"{path}:EmaCross", {"fast": 5})
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 900)
    expected = run_backtest(candles, StrategyModel(strategy), CONFIG)
    assert len(expected.trades) > 5

    symbol, step = "ETHBTC", 300_000
    clock = SimClock(int(candles.ts[0]))  # nothing closed yet: every candle is traded live
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        core = TradingCore(limits=LIMITS, costs=CONFIG.costs, filters=CONFIG.filters, starting_cash=10_000,
                           clock=clock)
        engine = LiveEngine(core=core, store=store, feeds={symbol: ReplayFeed(candles, symbol, "5m", clock)},
                            models={symbol: StrategyModel(strategy)}, clock=clock, bus=EventBus(), timeframe="5m",
                            poll_interval=3600, stale_after=10_000)
        await engine.poll_once(symbol)
        for i in range(len(candles)):
            clock.set(int(candles.ts[i]) + step)
            assert await engine.poll_once(symbol) == 1
        live = await store.trades(limit=10_000)
    finally:
        await store.close()
    live.reverse()
    assert live == expected.trades


def test_strategy_limits_take_declared_stops_and_keep_the_rest() -> None:
    from engine.core.risk import RiskLimits
    from engine.strategy.loader import load_strategy
    from engine.strategy.model import strategy_limits

    config = RiskLimits(stop_loss_pct=0.05, take_profit_pct=0.2, trailing_stop_pct=0.0)
    assert strategy_limits(load_strategy("sma-cross"), config) == config  # declares none: the config's stops
    rsi = load_strategy("rsi-mean-reversion")
    got = strategy_limits(rsi, config)
    assert got.stop_loss_pct == -rsi.stoploss and got.take_profit_pct == 0.2
    assert got.position_fraction == config.position_fraction
