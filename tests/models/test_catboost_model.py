from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.core.model import FLAT, CandleArrays, GenericTradingModel
from engine.models.catboost_model import (
    META_FILE,
    MODEL_FILE,
    CatBoostParams,
    CatBoostTradingModel,
    ModelLoadError,
    check_catboost,
    sha256_file,
)
from engine.models.features import FEATURE_NAMES, LOOKBACK, compute_features


def test_check_catboost_is_clean() -> None:
    assert check_catboost() is None


def test_saved_model_round_trip(trained_dir: Path, eth_btc: CandleArrays) -> None:
    meta = json.loads((trained_dir / META_FILE).read_text())
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["lookback"] == LOOKBACK
    assert meta["model_sha256"] == sha256_file(trained_dir / MODEL_FILE)
    assert meta["training"]["first_ts"] == int(eth_btc.ts[0])
    assert meta["training"]["last_ts"] == int(eth_btc.ts[-1])
    assert len(meta["training"]["data_sha256"]) == 64
    assert set(meta["versions"]) == {"catboost", "numpy", "python"}
    assert meta["horizon"] == 12 and meta["symbol"] == "ETH/BTC" and meta["timeframe"] == "5m"
    assert meta["params"]["iterations"] == 60
    assert len(meta["feature_bins"]["edges"]) == len(FEATURE_NAMES)

    model = CatBoostTradingModel.load(trained_dir)
    assert isinstance(model, GenericTradingModel)
    x = model.features(eth_btc)
    p = model.predict_proba(x)
    assert p.shape == (len(eth_btc), 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p[: LOOKBACK - 1] == (0.0, 1.0, 0.0)).all()  # no history: flat
    assert not (p[LOOKBACK - 1:, FLAT] == 1.0).all()  # the model says something
    again = CatBoostTradingModel.load(trained_dir)
    assert np.array_equal(again.predict_proba(x), p)


def test_batch_and_per_candle_predictions_are_identical(trained_dir: Path, eth_btc: CandleArrays) -> None:
    model = CatBoostTradingModel.load(trained_dir)
    batch = model.predict_proba(model.features(eth_btc))
    for t in range(LOOKBACK - 1, len(eth_btc)):
        live = model.predict_proba(model.features(eth_btc.slice(t - LOOKBACK + 1, t + 1))[-1:])
        assert np.array_equal(live[0], batch[t]), f"candle {t}: live {live[0]} batch {batch[t]}"


def test_nan_and_inf_rows_give_flat_predictions(trained_dir: Path, eth_btc: CandleArrays) -> None:
    model = CatBoostTradingModel.load(trained_dir)
    x = model.features(eth_btc)[-6:].copy()
    ref = model.predict_proba(x)
    x[1, 0] = np.nan
    x[2, 3] = np.inf
    x[3, 5] = -np.inf
    x[4, :] = np.nan
    p = model.predict_proba(x)
    for r in (1, 2, 3, 4):
        assert p[r].tolist() == [0.0, 1.0, 0.0]
    assert np.array_equal(p[[0, 5]], ref[[0, 5]])
    assert model.predict_proba(np.full((3, len(FEATURE_NAMES)), np.nan)).tolist() == [[0.0, 1.0, 0.0]] * 3


def _load_error(path: Path) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as info:
        CatBoostTradingModel.load(path)
    return info.value


def test_corrupt_model_refused(model_copy: Path) -> None:
    f = model_copy / MODEL_FILE
    data = bytearray(f.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    f.write_bytes(bytes(data))
    err = _load_error(model_copy)
    assert err.check == "corrupt"
    assert "model file corrupt: sha256" in str(err)


def test_truncated_model_refused(model_copy: Path) -> None:
    f = model_copy / MODEL_FILE
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    err = _load_error(model_copy)
    assert err.check == "truncated"
    assert f"has {len(data) // 2} bytes, metadata says {len(data)}" in str(err)


def test_missing_model_refused(model_copy: Path, tmp_path: Path) -> None:
    (model_copy / MODEL_FILE).unlink()
    err = _load_error(model_copy)
    assert err.check == "missing" and f"no {MODEL_FILE}" in str(err)
    err = _load_error(tmp_path / "never-trained")
    assert err.check == "missing" and "does not exist" in str(err)


def test_missing_metadata_refused(model_copy: Path) -> None:
    (model_copy / META_FILE).unlink()
    err = _load_error(model_copy)
    assert err.check == "missing" and "metadata missing" in str(err)


def _edit_meta(path: Path, **changes: object) -> None:
    meta = json.loads((path / META_FILE).read_text())
    meta.update(changes)
    (path / META_FILE).write_text(json.dumps(meta))


def test_feature_list_mismatch_refused(model_copy: Path) -> None:
    names = list(FEATURE_NAMES)
    _edit_meta(model_copy, feature_names=[*names[:-1], "ret_96"])
    err = _load_error(model_copy)
    assert err.check == "features"
    assert "feature list mismatch" in str(err) and "ret_96" in str(err) and names[-1] in str(err)


def test_feature_order_mismatch_refused(model_copy: Path) -> None:
    names = list(FEATURE_NAMES)
    names[0], names[1] = names[1], names[0]
    _edit_meta(model_copy, feature_names=names)
    err = _load_error(model_copy)
    assert err.check == "features" and "different order" in str(err)


def test_catboost_version_mismatch_refused(model_copy: Path) -> None:
    meta = json.loads((model_copy / META_FILE).read_text())
    _edit_meta(model_copy, versions={**meta["versions"], "catboost": "0.26.1"})
    err = _load_error(model_copy)
    assert err.check == "version"
    assert "catboost version mismatch: model trained with 0.26.1" in str(err)


def test_unreadable_metadata_refused(model_copy: Path) -> None:
    (model_copy / META_FILE).write_text("{not json")
    err = _load_error(model_copy)
    assert err.check == "metadata" and "metadata unreadable" in str(err)


def test_fit_needs_two_classes() -> None:
    model = CatBoostTradingModel()
    x = np.random.default_rng(0).normal(size=(50, len(FEATURE_NAMES)))
    with pytest.raises(ValueError, match="single class"):
        model.fit(x, np.ones(50, dtype=np.int64))
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict_proba(x)


def test_catboost_without_pandas_loads_predicts_and_trains_the_same(trained_dir: Path, eth_btc: CandleArrays,
                                                                     tmp_path: Path) -> None:
    """The worker imports catboost with a stand-in for pandas (import_catboost_without_pandas, ~30 MB):
    a saved model must give bit-identical probabilities, and training the same model, without pandas."""
    import subprocess
    import sys

    from engine.models.labels import make_labels

    x = compute_features(eth_btc)
    y = make_labels(eth_btc.close, horizon=12, fee_bps=10.0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    loaded = CatBoostTradingModel.load(trained_dir).predict_proba(x[-2000:])
    params = CatBoostParams(iterations=30, depth=4, thread_count=1)
    fresh = CatBoostTradingModel(params, name="t", horizon=12)
    fresh.fit(x, y)
    trained = fresh.predict_proba(x[-2000:])
    script = f"""
import sys, numpy as np
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel, import_catboost_without_pandas
assert import_catboost_without_pandas()
x, y = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})
np.save({str(tmp_path / 'loaded.npy')!r}, CatBoostTradingModel.load({str(trained_dir)!r}).predict_proba(x[-2000:]))
m = CatBoostTradingModel(CatBoostParams(iterations=30, depth=4, thread_count=1), name="t", horizon=12)
m.fit(x, y)
np.save({str(tmp_path / 'trained.npy')!r}, m.predict_proba(x[-2000:]))
assert "pandas" not in sys.modules, "pandas was imported after all"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    assert np.array_equal(np.load(tmp_path / "loaded.npy"), loaded)
    assert np.array_equal(np.load(tmp_path / "trained.npy"), trained)
