"""The CatBoost model as a strategy (engine.strategy.catboost) trades exactly as the model run directly.

A real CatBoost model is trained on real candles (small and fast, as tests/models/ trains one) and saved; the
backtest of ``CatBoostTradingModel.load(dir)`` and the backtest of the ``CatBoostStrategy`` over the same
directory must give the same trades and equity, under protective stops and a confidence filter (so the
strategy's ``confidence`` column is what the filter reads). A missing model is one clear line; importing the
strategy modules does not import catboost.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
from engine.models.features import compute_features
from engine.models.labels import make_labels
from engine.strategy import ENTER, EXIT, StrategyError
from engine.strategy.catboost import CatBoostStrategy
from engine.strategy.loader import load_strategy
from engine.strategy.model import StrategyModel
from tests.engine.helpers import real_candles

SPEC = "engine.strategy.catboost:CatBoostStrategy"
ROOT = Path(__file__).resolve().parents[2]
LIMITS = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.02,
                    take_profit_pct=0.04, trailing_stop_pct=0.015, max_daily_loss_pct=0.03, max_drawdown_pct=0.10)


def train_small_model(out: Path) -> Path:
    """A real CatBoost model on the real ETH/BTC 5m sample (60 iterations, depth 4: a few seconds)."""
    candles = real_candles("ETH_BTC-5m.csv")
    model = CatBoostTradingModel(CatBoostParams(iterations=60, depth=4, thread_count=2), name="eth-btc-strategy-test",
                                 horizon=12, symbol="ETH/BTC", timeframe="5m")
    model.fit(compute_features(candles), make_labels(candles.close, horizon=12, fee_bps=10.0))
    return model.save(out)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("catboost") / "eth-btc-strategy-test")


@pytest.mark.parametrize(("name", "min_confidence"), [("ETH_BTC-5m.csv", 0.45), ("BTC_USDT-5m.csv", 0.4)])
def test_the_strategy_backtests_exactly_as_the_model(model_dir: Path, name: str, min_confidence: float) -> None:
    candles = real_candles(name)
    config = BacktestConfig(symbol="ETHBTC", cash=10_000, limits=LIMITS, costs=Costs(fee_bps=10, slippage_bps=5),
                            filters=SignalFilters(min_confidence=min_confidence, cooldown_ms=30 * 60_000))
    by_model = run_backtest(candles, CatBoostTradingModel.load(model_dir), config)
    strategy = load_strategy(SPEC, {"model": str(model_dir)})
    by_strategy = run_backtest(candles, StrategyModel(strategy), config)

    assert len(by_model.trades) > 10
    assert {t.exit_reason for t in by_model.trades} >= {"signal", "trailing_stop"}  # signals and stops both
    assert by_strategy.trades == by_model.trades
    assert by_strategy.final_equity == by_model.final_equity
    np.testing.assert_array_equal(by_strategy.in_position, by_model.in_position)


def test_its_columns_are_the_models_reading(model_dir: Path) -> None:
    """enter/exit where the model's most likely class is up/down; confidence is that class's probability."""
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 2000)
    strategy = CatBoostStrategy(model=str(model_dir))
    signals = strategy.signals(candles)
    proba = CatBoostTradingModel.load(model_dir).predict_proba(compute_features(candles))
    frame = signals.frame
    np.testing.assert_array_equal(frame[["p_down", "p_flat", "p_up"]].to_numpy(), proba)
    up = (proba[:, 2] > proba[:, 0]) & (proba[:, 2] > proba[:, 1])
    down = (proba[:, 0] >= proba[:, 1]) & (proba[:, 0] >= proba[:, 2])
    assert (signals.action == ENTER).tolist() == up.tolist() and up.sum() > 0
    assert (signals.action == EXIT).tolist() == down.tolist() and down.sum() > 0
    np.testing.assert_array_equal(signals.confidence, proba.max(axis=1))
    assert strategy.startup_candles == CatBoostTradingModel.load(model_dir).lookback - 1
    assert strategy.name == f"catboost(model={model_dir})"


def test_the_live_window_gives_the_whole_series_action(model_dir: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 1500)
    strategy = load_strategy(SPEC, {"model": str(model_dir)})
    full = strategy.signals(candles)
    ends = range(strategy.lookback, len(candles), 53)
    live = [strategy.signals(candles.slice(end - strategy.lookback, end)).latest()[:2] for end in ends]
    assert live == [(int(full.action[end - 1]), float(full.confidence[end - 1])) for end in ends]


@pytest.mark.parametrize(("params", "expected"), [
    (None, "catboost: no model given; pass a trained model's directory: --param model=DIR "
           "(or model = \"DIR\" under [strategy.params])"),
    ({"model": "  "}, "catboost: no model given; pass a trained model's directory: --param model=DIR "
                      "(or model = \"DIR\" under [strategy.params])"),
    ({"model": 3}, "catboost: parameter model=3 is not a directory path (text)"),
    ({"modle": "x"}, "catboost: unknown parameter 'modle' (did you mean 'model'? parameters: model (a trained "
                     "model directory))"),
])
def test_a_missing_or_wrong_model_parameter_is_one_line(params: dict[str, object] | None, expected: str) -> None:
    with pytest.raises(StrategyError) as exc:
        load_strategy(SPEC, params)  # type: ignore[arg-type]
    assert str(exc.value) == expected


def test_a_model_directory_that_cannot_be_used_is_one_line(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(StrategyError) as exc:
        load_strategy(SPEC, {"model": str(tmp_path / "nope")})
    assert str(exc.value) == f"catboost: model missing: {tmp_path / 'nope'} does not exist"
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.cbm").write_bytes((broken / "model.cbm").read_bytes()[:-10] + b"0123456789")
    with pytest.raises(StrategyError) as exc:
        load_strategy(SPEC, {"model": str(broken)})
    text = str(exc.value)
    assert text.startswith("catboost: model file corrupt: sha256 of ") and "\n" not in text


def test_importing_the_strategy_modules_does_not_import_catboost() -> None:
    code = ("import sys, engine.strategy, engine.strategy.loader, engine.strategy.builtins, engine.strategy.catboost\n"
            "print('catboost' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_it_passes_the_look_ahead_check(model_dir: Path) -> None:
    from engine.strategy.lookahead import check_lookahead

    strategy = load_strategy(SPEC, {"model": str(model_dir)})
    report = check_lookahead(strategy, real_candles("ETH_BTC-5m.csv").slice(0, 1500))
    assert report.clean, report.summary()
    assert report.checked_values > 10_000
