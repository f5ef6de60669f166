"""A trial is a backtest by the backtest's own kernel: its objective equals ``run_backtest``'s to the last bit, whole
or run in chunks with reports to the pruner, for sma-cross (its cached moving averages) and a pandas strategy."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from config.trading import load_trading_config
from engine.backtest import run_backtest
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs
from engine.feeds.candle_file import load_candles
from engine.optimize.evaluate import Evaluator, Infeasible, Setup, Window, scored
from engine.optimize.objectives import score
from engine.strategy.builtins import RsiMeanReversion
from engine.strategy.model import StrategyModel, strategy_limits
from tests.optimize.conftest import SAMPLE_5M


def _setup(spec: str, objective: str = "sharpe") -> Setup:
    cfg = load_trading_config(None)
    candles = load_candles(SAMPLE_5M).arrays
    return Setup(spec, candles, "BTCUSDT", {}, {}, cfg.risk.to_core(), Costs(fee_bps=10, slippage_bps=5),
                 cfg.signal_filters.to_core(), 10_000.0, objective)


@pytest.mark.parametrize("objective", ["sharpe", "return", "calmar", "profit-factor"])
def test_sma_cross_trial_equals_run_backtest_whole_and_chunked(objective: str) -> None:
    setup = _setup("sma-cross", objective)
    evaluator = Evaluator(setup)
    window = Window(500, 9_000, 2_000)
    candles = setup.candles.slice(window.start, window.end)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    for fast, slow in ((5, 20), (12, 60), (5, 60)):  # (5, 60) reuses both averages from the cache
        expected_run = run_backtest(candles, SmaCrossModel(fast, slow), setup.config(setup.limits))
        expected = score(objective, scored(expected_run, candles, slow, setup.costs).metrics)
        assert expected_run.metrics["trades"] > 0
        assert evaluator.trial({"fast": fast, "slow": slow}, window) == expected
        assert evaluator.trial({"fast": fast, "slow": slow}, window, study.ask()) == expected


def test_strategy_trial_equals_run_backtest() -> None:
    setup = _setup("rsi-mean-reversion")
    evaluator = Evaluator(setup)
    window = Window(0, 8_000, 1_000)
    params = {"period": 9, "oversold": 25.0, "exit_above": 60.0}
    strategy = RsiMeanReversion(params)
    candles = setup.candles.slice(window.start, window.end)
    result = run_backtest(candles, StrategyModel(strategy), setup.config(strategy_limits(strategy, setup.limits)))
    expected = scored(result, candles, strategy.startup_candles, setup.costs).metrics["sharpe"]
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    assert result.metrics["trades"] > 0
    assert evaluator.trial(params, window, study.ask()) == expected
    assert evaluator.backtest(params, window).metrics["sharpe"] == expected


def test_refused_parameters_and_a_warm_up_too_long_are_infeasible() -> None:
    evaluator = Evaluator(_setup("sma-cross"))
    with pytest.raises(Infeasible, match="fast"):
        evaluator.trial({"fast": 50, "slow": 20}, Window(0, 5_000, 1_000))
    with pytest.raises(Infeasible, match="warms up on 1000 candles"):
        evaluator.trial({"fast": 5, "slow": 1_000}, Window(0, 5_000, 999))


def test_a_windows_average_cut_from_the_whole_series_is_the_windows_own_to_the_bit() -> None:
    from engine.core.model import sma

    evaluator = Evaluator(_setup("sma-cross"))
    close = evaluator.setup.candles.close
    for start, end in ((0, 10_999), (1, 4_000), (1_222, 6_110), (10_000, 10_999)):
        for length in (1, 2, 7, 8, 9, 30, 128, 129, 611, 999):
            own = sma(close[start:end], length)
            assert np.array_equal(evaluator._average(Window(start, end, end), length), own, equal_nan=True)
