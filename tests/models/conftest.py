"""Shared fixtures: real candles from the shipped sample (data/sample/) and one small CatBoost model trained on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.model import CandleArrays
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
from engine.models.features import compute_features
from engine.models.labels import make_labels
from engine.models.validation import Dataset, Prepared, load_candles_csv, training_info
from tests.sample import SAMPLE, sample_path

DATA_DIR = SAMPLE
TRAIN_FILE = "ETH_BTC-5m.csv"
SMALL = CatBoostParams(iterations=60, depth=4, thread_count=2)


def real(name: str = TRAIN_FILE) -> Dataset:
    return load_candles_csv(sample_path(name))


@pytest.fixture(scope="session")
def eth_btc() -> CandleArrays:
    return real().arrays


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CatBoost model trained on real candles, saved to disk (a few seconds at most)."""
    ds = real()
    x = compute_features(ds.arrays)
    y = make_labels(ds.arrays.close, horizon=12, fee_bps=10.0)
    model = CatBoostTradingModel(SMALL, name="eth-btc-test", horizon=12, symbol="ETH/BTC", timeframe="5m")
    model.fit(x, y, info=training_info([Prepared(ds, x, y)]))
    model.metrics = {"note": "test model"}
    out = tmp_path_factory.mktemp("models") / "eth-btc-test"
    model.save(out)
    return out


@pytest.fixture()
def model_copy(trained_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the trained model directory that a test may damage."""
    dst = tmp_path / trained_dir.name
    dst.mkdir()
    for f in trained_dir.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst
