"""Entry and exit tags: a strategy's ``enter_tag``/``exit_tag`` reach its trades, the same in the compiled
backtest, the per-candle backtest (the live loop's call) and across a save/restore of the core."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import TradingCore
from engine.core.types import Action
from engine.strategy import Strategy
from engine.strategy.loader import load_strategy
from engine.strategy.model import StrategyModel
from tests.engine.helpers import real_candles

TAGGED = '''
import numpy as np
from engine.strategy import Strategy, crossed_above, crossed_below, ema, rsi


class Tagged(Strategy):
    startup_candles = 30

    def populate_indicators(self, df):
        df["fast"] = ema(df["close"], 8)
        df["slow"] = ema(df["close"], 21)
        df["rsi"] = rsi(df["close"], 14)
        return df

    def populate_entry_trend(self, df):
        cross = crossed_above(df["fast"], df["slow"])
        dip = df["rsi"] < 30
        df["enter_long"] = (cross | dip).astype(int)
        df["enter_tag"] = np.where(cross, "ema_cross", np.where(dip, "rsi_dip", None))
        return df

    def populate_exit_trend(self, df):
        cross = crossed_below(df["fast"], df["slow"])
        hot = df["rsi"] > 75
        df["exit_long"] = (cross | hot).astype(int)
        df["exit_tag"] = np.where(cross, "ema_down", np.where(hot, "rsi_hot", None))
        return df
'''

LIMITS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.01,
                    take_profit_pct=0.0, trailing_stop_pct=0.0, max_daily_loss_pct=0.0, max_drawdown_pct=0.0)
CONFIG = BacktestConfig(symbol="ETHBTC", cash=10_000, limits=LIMITS, costs=Costs(fee_bps=10, slippage_bps=5),
                        filters=SignalFilters(min_confidence=0.0))


def _strategy(tmp_path: Path) -> Strategy:
    path = tmp_path / "tagged.py"
    path.write_text(TAGGED, encoding="utf-8")
    return load_strategy(f"{path}:Tagged")


def test_tags_reach_trades_the_same_in_both_backtest_paths(tmp_path: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 3000)
    strategy = _strategy(tmp_path)
    fast = run_backtest(candles, StrategyModel(strategy), CONFIG)
    each = run_backtest(candles, StrategyModel(strategy), replace(CONFIG, step_every_candle=True))
    assert len(fast.trades) > 10
    assert each.trades == fast.trades
    entries = Counter(t.entry_tag for t in fast.trades)
    exits = Counter((t.exit_reason, t.exit_tag) for t in fast.trades)
    assert set(entries) <= {"ema_cross", "rsi_dip"} and len(entries) == 2, entries
    assert all(tag is not None for reason, tag in exits if reason == "signal"), exits
    assert all(tag is None for reason, tag in exits if reason != "signal"), exits
    assert {tag for reason, tag in exits if reason == "signal"} == {"ema_down", "rsi_hot"}, exits
    # each tag is the one of the signal candle, the candle before the fill
    signals = strategy.signals(candles)
    index = {int(ts): i for i, ts in enumerate(candles.ts)}
    for t in fast.trades:
        assert signals.enter_tag[index[t.entry_time] - 1] == t.entry_tag
        if t.exit_reason == "signal":
            assert signals.exit_tag[index[t.exit_time] - 1] == t.exit_tag


def test_an_untagged_strategy_has_no_tags(tmp_path: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 1500)
    result = run_backtest(candles, StrategyModel(load_strategy("sma-cross")), CONFIG)
    assert result.trades and all(t.entry_tag is None and t.exit_tag is None for t in result.trades)


def test_an_open_positions_entry_tag_survives_a_restore() -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 10)
    clock = SimClock(int(candles.ts[0]))
    core = TradingCore(limits=LIMITS, costs=CONFIG.costs, filters=CONFIG.filters, starting_cash=10_000, clock=clock)
    core.on_signal("ETHBTC", candles.candle(0), Action.ENTER, 1.0, "breakout")
    assert core.pending["ETHBTC"][0].tag == "breakout"
    core.on_signal("ETHBTC", candles.candle(1), Action.HOLD, 1.0)  # fills at candle 1's open
    assert core.entry_tags == {"ETHBTC": "breakout"}
    saved = core.snapshot()
    again = TradingCore(limits=LIMITS, costs=CONFIG.costs, filters=CONFIG.filters, starting_cash=10_000, clock=clock)
    again.restore(saved)
    assert again.entry_tags == {"ETHBTC": "breakout"}
    again.on_signal("ETHBTC", candles.candle(2), Action.EXIT, 1.0, "took_profit")
    restored = TradingCore(limits=LIMITS, costs=CONFIG.costs, filters=CONFIG.filters, starting_cash=10_000,
                           clock=clock)
    restored.restore(again.snapshot())  # the pending exit keeps its tag across a restart too
    step = restored.on_signal("ETHBTC", candles.candle(3), Action.HOLD, 1.0)
    assert [(t.entry_tag, t.exit_tag, t.exit_reason) for t in step.trades] == [("breakout", "took_profit", "signal")]
    assert restored.entry_tags == {}
