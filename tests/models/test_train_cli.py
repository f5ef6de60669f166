from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.models.catboost_model import META_FILE, CatBoostTradingModel
from engine.models.features import LOOKBACK
from engine.models.validation import (
    auc_ovr_macro,
    brier,
    expected_calibration_error,
    load_candles_csv,
    simple_long_only,
    walk_forward_splits,
)
from tests.models.conftest import DATA_DIR, TRAIN_FILE


def test_train_cli_validates_then_saves_a_loadable_model(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "models" / "eth"
    rc = main(["train", "--data", str(DATA_DIR / TRAIN_FILE), "--out", str(out), "--horizon", "6",
               "--folds", "3", "--iterations", "40", "--depth", "4", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "logloss" in printed and "out-of-sample only" in printed
    meta = json.loads((out / META_FILE).read_text())
    folds = meta["metrics"]["folds"]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    assert meta["metrics"]["out_of_sample"] is True
    for f in folds:
        assert 0.0 < f["log_loss"] < 5.0 and 0.0 <= f["auc"] <= 1.0
        assert 0.0 <= f["ece"] <= 1.0 and 0.0 <= f["brier"] <= 2.0
        assert f["train_rows"] > 0 and f["rows"] > 0
        assert np.isfinite(f["strategy_return"]) and np.isfinite(f["buy_and_hold_return"])
    assert folds[0]["train_rows"] < folds[1]["train_rows"] < folds[2]["train_rows"]  # expanding window
    overall = meta["metrics"]["overall"]
    assert overall["rows"] == sum(f["rows"] for f in folds)
    assert meta["horizon"] == 6 and meta["symbol"] == "ETH/BTC" and meta["timeframe"] == "5m"
    model = CatBoostTradingModel.load(out)
    assert model.training.rows == len(load_candles_csv(DATA_DIR / TRAIN_FILE).arrays)


def test_too_short_file_is_a_specific_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (DATA_DIR / TRAIN_FILE).read_text().splitlines()
    short = tmp_path / "SHORT_BTC-5m.csv"
    short.write_text("\n".join(lines[:200]) + "\n")
    rc = main(["train", "--data", str(short), "--out", str(tmp_path / "m"), "--folds", "3"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "data too short: SHORT_BTC-5m.csv has 199 candles" in err
    assert f"{LOOKBACK - 1} candles of history" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_horizon_longer_than_data_is_a_specific_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--data", str(DATA_DIR / "BTC_USDT-1h.csv"), "--out", str(tmp_path / "m"),
               "--horizon", "500"])
    assert rc == 2
    assert "horizon 500 is longer than the data: BTC_USDT-1h.csv has 120 candles" in capsys.readouterr().err


def test_missing_file_is_a_specific_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")]) == 2
    assert "data file not found" in capsys.readouterr().err


@settings(max_examples=100, deadline=None)
@given(st.integers(400, 20_000), st.integers(1, 48), st.integers(1, 8), st.integers(0, 48))
def test_splits_are_purged_embargoed_and_ordered(n: int, horizon: int, folds: int, embargo: int) -> None:
    splits = walk_forward_splits(n, horizon, folds, embargo)
    assert len(splits) == folds
    for prev, s in zip([None, *splits[:-1]], splits, strict=True):
        assert s.first == LOOKBACK - 1
        assert s.test_stop <= n - horizon  # every test row has a label
        # the last training row's label window [t, t+horizon] ends more than `embargo` before the test
        assert (s.train_stop - 1) + horizon + embargo < s.test_start or s.train_stop == s.first
        if prev is not None:
            assert prev.test_stop == s.test_start


def test_metric_functions_on_known_values() -> None:
    y = np.array([0, 1, 2, 2])
    perfect = np.eye(3)[y]
    assert auc_ovr_macro(y, perfect) == 1.0
    assert brier(y, perfect) == 0.0
    assert expected_calibration_error(y, perfect) == 0.0
    uniform = np.full((4, 3), 1 / 3)
    assert auc_ovr_macro(y, uniform) == 0.5
    assert brier(y, uniform) == pytest.approx(2 / 3)


def test_simple_evaluator_on_hand_made_candles() -> None:
    from engine.core.model import CandleArrays

    o = np.array([100.0, 100.0, 110.0, 121.0, 121.0])
    c = CandleArrays(np.arange(5, dtype=np.int64), o, o, o, o, np.ones(5))
    up, down, flat = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)
    proba = np.array([up, flat, down, flat, flat])
    ret, entries = simple_long_only(c, proba, fee_bps=0.0)
    assert entries == 1
    assert ret == pytest.approx(121.0 / 100.0 - 1.0)  # bought at open[1]=100, sold at open[3]=121
    ret_fee, _ = simple_long_only(c, proba, fee_bps=10.0)
    assert ret_fee == pytest.approx(1.21 * 0.999**2 - 1.0)
