"""The fold backtest of a validation is the engine's backtest, and only that: when it fails, the validation
fails in one line; no second backtester quietly takes its place."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.core.model import CandleArrays, SmaCrossModel
from engine.errors import BacktestFailed
from engine.models.validation import backtest_segment


class ShortAnswerModel:
    """A model that answers one row short: the engine's backtest cannot line its signals up with the candles."""

    name = "short-answer"
    feature_names = ("close",)
    lookback = 1

    def features(self, candles: CandleArrays) -> np.ndarray:
        return candles.close.reshape(-1, 1).copy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.zeros((max(0, len(x) - 1), 3))
        p[:, 2] = 1.0
        return p

    def metadata(self) -> dict[str, Any]:
        return {"kind": "rule", "name": self.name}


def test_a_failing_fold_backtest_fails_the_validation_in_one_line(eth_btc: CandleArrays) -> None:
    with pytest.raises(BacktestFailed) as info:
        backtest_segment(eth_btc, 500, 900, ShortAnswerModel(), fee_bps=10.0)
    message = str(info.value)
    assert message.startswith("the fold backtest on candles 500..900 failed: ValueError: ")
    assert "\n" not in message


@pytest.mark.parametrize("evaluator", ["auto", "engine"])
def test_the_fold_backtest_is_the_engine_s(eth_btc: CandleArrays, evaluator: str) -> None:
    result = backtest_segment(eth_btc, 500, 900, SmaCrossModel(10, 30), fee_bps=10.0, evaluator=evaluator)
    assert result["evaluator"] == "engine.backtest.run_backtest"
    assert np.isfinite(float(result["strategy_return"]))


def test_the_simple_evaluator_runs_only_when_asked_for(eth_btc: CandleArrays) -> None:
    result = backtest_segment(eth_btc, 500, 900, SmaCrossModel(10, 30), fee_bps=10.0, evaluator="simple")
    assert result["evaluator"] == "simple_long_only"
