"""``CatBoostTradingModel``: a MultiClass CatBoost classifier behind the ``GenericTradingModel`` port.

On disk a model is one directory holding ``model.cbm`` (CatBoost's own format) and ``metadata.json``
(feature names and order, lookback, horizon, training window, sha256 of the training data and of
``model.cbm``, parameters, out-of-sample metrics, library versions, drift reference bins). ``load``
refuses a model that is missing, truncated, corrupt, built for another feature list or by another
catboost major.minor, with a ``ModelLoadError`` that says which check failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from engine.core.model import FLAT, CandleArrays
from engine.errors import ModelLoadError as ModelLoadError  # defined with the whole tree; imported from here too
from engine.models.features import FEATURE_NAMES, LOOKBACK, compute_features, reference_bins

log = structlog.get_logger("engine.models.catboost")

MODEL_FILE = "model.cbm"
META_FILE = "metadata.json"
FORMAT_VERSION = 1
_SMALL_BATCH = 2_048  # below this many rows, predict on one thread (less overhead per live candle)


@dataclass(frozen=True, slots=True)
class CatBoostParams:
    iterations: int = 300
    depth: int = 6
    learning_rate: float = 0.08
    l2_leaf_reg: float = 3.0
    thread_count: int = 2
    random_seed: int = 0


@dataclass(frozen=True, slots=True)
class TrainingInfo:
    """Where the training rows came from (written to the metadata)."""

    first_ts: int | None = None
    last_ts: int | None = None
    rows: int = 0
    data_sha256: str = ""
    files: tuple[str, ...] = field(default_factory=tuple)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _catboost_version() -> str:
    import catboost

    return str(catboost.__version__)


PANDAS_NAMES = ("DataFrame", "Series", "Categorical", "SparseDtype")
"""What catboost's modules look up on ``pandas`` (its Python files and the names in ``_catboost.so``)."""


def import_catboost_without_pandas() -> bool:
    """Import catboost with a stand-in for pandas, so that the worker does not carry pandas (~30 MB).

    catboost imports pandas at import time only to recognise DataFrames and Series among its inputs
    (``isinstance`` checks); it is given numpy arrays here, so those checks are False either way. The
    stand-in holds empty classes of those names and sits in ``sys.modules`` only while catboost is
    imported: any other import of pandas later gets the real one. True if it was done; nothing is done
    when catboost or pandas is imported already. tests/models/test_catboost_model.py checks that
    loading, predicting and training give bit-identical results this way."""
    if "catboost" in sys.modules or "pandas" in sys.modules:
        return False
    stand_in = types.ModuleType("pandas", "stand-in: see engine.models.catboost_model.import_catboost_without_pandas")
    for name in PANDAS_NAMES:
        setattr(stand_in, name, type(name, (), {"__module__": "pandas"}))
    sys.modules["pandas"] = stand_in
    try:
        import catboost  # noqa: F401
    except Exception:  # check_catboost reports a broken catboost with its reason
        pass
    finally:
        if sys.modules.get("pandas") is stand_in:
            del sys.modules["pandas"]
    return True


def check_catboost() -> str | None:
    """None when catboost imports and a tiny fit/predict works, else a message saying what is wrong."""
    try:
        import catboost
        from catboost import CatBoostClassifier
    except Exception as exc:  # ImportError, or a broken native extension
        return (f"catboost is not usable: import failed ({type(exc).__name__}: {exc}); "
                "install catboost==1.2.10")
    try:
        x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
        y = np.array([0, 1, 2, 0, 1, 2])
        clf = CatBoostClassifier(loss_function="MultiClass", iterations=2, depth=2, thread_count=1,
                                 verbose=False, allow_writing_files=False, random_seed=0)
        clf.fit(x, y)
        p = np.asarray(clf.predict(x[:1], prediction_type="Probability"))
        if p.shape != (1, 3) or not np.all(np.isfinite(p)):
            return f"catboost {catboost.__version__} is broken: smoke prediction gave shape {p.shape}"
    except Exception as exc:  # a native extension can fail any way; the check's job is to say how
        return f"catboost {getattr(catboost, '__version__', '?')} is broken: smoke fit/predict failed ({exc})"
    return None


class CatBoostTradingModel:
    """GenericTradingModel over ``engine.models.features`` with a MultiClass CatBoost classifier."""

    def __init__(self, params: CatBoostParams | None = None, *, name: str = "catboost", horizon: int = 12,
                 fee_bps: float = 10.0, symbol: str = "", timeframe: str = "") -> None:
        self.params = params or CatBoostParams()
        self.name = name
        self.feature_names: tuple[str, ...] = FEATURE_NAMES
        self.lookback: int = LOOKBACK
        self.horizon = horizon
        self.fee_bps = fee_bps
        self.symbol = symbol
        self.timeframe = timeframe
        self.training = TrainingInfo()
        self.metrics: dict[str, Any] = {}
        self.feature_bins: dict[str, list[list[float]]] = {}
        self.class_counts: list[int] = []
        self._saved: dict[str, Any] = {}
        self._clf: Any = None

    # --- GenericTradingModel -----------------------------------------------------------------------

    def features(self, candles: CandleArrays) -> np.ndarray:
        return compute_features(candles)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities; rows with any NaN/inf feature get the flat row (0, 1, 0)."""
        if self._clf is None:
            raise RuntimeError(f"model {self.name} is not fitted or loaded")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} feature columns, got {x.shape[1]}")
        n = x.shape[0]
        out = np.zeros((n, 3))
        out[:, FLAT] = 1.0
        ok = np.isfinite(x).all(axis=1)
        if not ok.any():
            return out
        rows = x if ok.all() else x[ok]
        threads = 1 if rows.shape[0] < _SMALL_BATCH else self.params.thread_count
        proba = np.asarray(self._clf.predict(rows, prediction_type="Probability", thread_count=threads))
        out[ok] = proba
        return out

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": "catboost",
            "feature_names": list(self.feature_names),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "fee_bps": self.fee_bps,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "training": dataclasses.asdict(self.training),
            "params": dataclasses.asdict(self.params),
            "metrics": self.metrics,
            "class_counts": self.class_counts,
            "feature_bins": self.feature_bins,
            "versions": {"catboost": _catboost_version(), "numpy": np.__version__,
                         "python": platform.python_version()},
        }
        meta.update(self._saved)
        return meta

    # --- training and persistence ------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return self._clf is not None

    def fit(self, x: np.ndarray, y: np.ndarray, *, info: TrainingInfo | None = None,
            progress: Callable[[int], None] | None = None) -> None:
        """Fit on rows whose features are all finite (others are skipped: they predict flat anyway).
        ``progress(1)`` is called after every boosting iteration (a progress bar; the model is the same)."""
        from catboost import CatBoostClassifier

        ok = np.isfinite(x).all(axis=1) & (y >= 0)
        xs, ys = x[ok], y[ok].astype(np.int64)
        if xs.shape[0] == 0:
            raise ValueError("no training rows with finite features and a label")
        if np.unique(ys).shape[0] < 2:
            raise ValueError(f"training labels hold a single class ({int(ys[0])}); need at least two")
        p = self.params
        clf = CatBoostClassifier(loss_function="MultiClass", class_names=[0, 1, 2], iterations=p.iterations,
                                 depth=p.depth, learning_rate=p.learning_rate, l2_leaf_reg=p.l2_leaf_reg,
                                 thread_count=p.thread_count, random_seed=p.random_seed, verbose=False,
                                 allow_writing_files=False)
        clf.fit(xs, ys, callbacks=None if progress is None else [_EachIteration(progress)])
        self._clf = clf
        self.class_counts = [int(v) for v in np.bincount(ys, minlength=3)]
        self.feature_bins = reference_bins(xs)
        if info is not None:
            self.training = info
        self._saved = {}
        log.info("model_fitted", model=self.name, rows=int(xs.shape[0]), classes=self.class_counts)

    def save(self, path: Path) -> Path:
        """Write ``path/model.cbm`` and ``path/metadata.json`` (metadata last, each via temp + replace)."""
        if self._clf is None:
            raise RuntimeError("cannot save a model that is not fitted")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model_path = path / MODEL_FILE
        tmp = path / (MODEL_FILE + ".tmp")
        self._clf.save_model(str(tmp), format="cbm")
        os.replace(tmp, model_path)
        self._saved = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_file": MODEL_FILE,
            "model_sha256": sha256_file(model_path),
            "model_size": model_path.stat().st_size,
        }
        meta_tmp = path / (META_FILE + ".tmp")
        meta_tmp.write_text(json.dumps(self.metadata(), indent=2, sort_keys=True))
        os.replace(meta_tmp, path / META_FILE)
        log.info("model_saved", model=self.name, path=str(path))
        return path

    @classmethod
    def load(cls, path: Path) -> CatBoostTradingModel:
        """Load a saved model directory, or raise ``ModelLoadError`` naming the failed check."""
        meta = read_checked_metadata(Path(path))
        from catboost import CatBoostClassifier

        d = Path(path)
        clf = CatBoostClassifier()
        try:
            clf.load_model(str(d / MODEL_FILE), format="cbm")
        except Exception as exc:  # catboost raises its own CatBoostError or a native error: both mean unreadable
            raise ModelLoadError("unreadable",
                                 f"model file {d / MODEL_FILE} is unreadable by catboost: {exc}") from exc
        known = {f.name for f in dataclasses.fields(CatBoostParams)}
        params = CatBoostParams(**{k: v for k, v in meta.get("params", {}).items() if k in known})
        model = cls(params, name=str(meta.get("name", d.name)), horizon=int(meta.get("horizon", 12)),
                    fee_bps=float(meta.get("fee_bps", 10.0)), symbol=str(meta.get("symbol", "")),
                    timeframe=str(meta.get("timeframe", "")))
        model.lookback = int(meta["lookback"])
        tr = meta.get("training", {})
        model.training = TrainingInfo(tr.get("first_ts"), tr.get("last_ts"), int(tr.get("rows", 0)),
                                      str(tr.get("data_sha256", "")), tuple(tr.get("files", ())))
        model.metrics = dict(meta.get("metrics", {}))
        model.feature_bins = dict(meta.get("feature_bins", {}))
        model.class_counts = list(meta.get("class_counts", []))
        saved_keys = ("created_at", "model_file", "model_sha256", "model_size")
        model._saved = {k: meta[k] for k in saved_keys if k in meta}
        model._clf = clf
        log.info("model_loaded", model=model.name, path=str(d))
        return model


class _EachIteration:
    """A CatBoost training callback that reports each finished iteration and never stops training."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self._progress = progress

    def after_iteration(self, info: Any) -> bool:
        self._progress(1)
        return True


def read_checked_metadata(path: Path) -> dict[str, Any]:
    """The metadata of a model directory after the file, hash, feature-list and version checks."""
    if not path.exists():
        raise ModelLoadError("missing", f"model missing: {path} does not exist")
    if path.is_file():
        raise ModelLoadError("missing", f"model missing: {path} is a file; expected a model directory")
    model_path, meta_path = path / MODEL_FILE, path / META_FILE
    if not model_path.is_file():
        raise ModelLoadError("missing", f"model missing: no {MODEL_FILE} in {path}")
    if not meta_path.is_file():
        raise ModelLoadError("missing", f"model metadata missing: no {META_FILE} in {path}")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        expected_sha = str(meta["model_sha256"])
        expected_size = int(meta["model_size"])
        names = list(meta["feature_names"])
        int(meta["lookback"])
        trained_with = str(meta["versions"]["catboost"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError("metadata", f"model metadata unreadable: {meta_path} ({exc})") from exc
    size = model_path.stat().st_size
    if size < expected_size:
        raise ModelLoadError("truncated", f"model file truncated: {model_path} has {size} bytes, "
                                          f"metadata says {expected_size}")
    actual_sha = sha256_file(model_path)
    if actual_sha != expected_sha:
        raise ModelLoadError("corrupt", f"model file corrupt: sha256 of {model_path} is "
                                        f"{actual_sha[:12]}..., metadata says {expected_sha[:12]}...")
    if names != list(FEATURE_NAMES):
        missing = [f for f in FEATURE_NAMES if f not in names]
        extra = [f for f in names if f not in FEATURE_NAMES]
        detail = f"missing {missing}, unknown {extra}" if missing or extra else "same names, different order"
        raise ModelLoadError("features", f"feature list mismatch: the model was trained on {len(names)} "
                                         f"features, the code computes {len(FEATURE_NAMES)} ({detail})")
    installed = _catboost_version()
    if _major_minor(trained_with) != _major_minor(installed):
        raise ModelLoadError("version", f"catboost version mismatch: model trained with {trained_with}, "
                                        f"installed {installed} (major.minor must match)")
    return meta
