from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays, GenericTradingModel, SmaCrossModel
from engine.events import EngineEvent, ModelDegraded, ModelRecovered
from engine.models.catboost_model import CatBoostTradingModel
from engine.models.coordinator import DriftTracker, ModelCoordinator
from engine.models.features import LOOKBACK, reference_bins


class ConstModel:
    """A tiny model with switchable faults (stands in for a member that breaks in production)."""

    def __init__(self, name: str, row: tuple[float, float, float]) -> None:
        self.name = name
        self.feature_names = ("f",)
        self.lookback = 1
        self.row = row
        self.fail = False
        self.nan = False

    def features(self, candles: CandleArrays) -> np.ndarray:
        return candles.close.reshape(-1, 1).copy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.fail:
            raise RuntimeError("boom")
        out = np.tile(np.array(self.row), (x.shape[0], 1))
        if self.nan:
            out[:] = np.nan
        return out

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name}


def _candles(n: int) -> CandleArrays:
    c = np.linspace(100.0, 110.0, n)
    return CandleArrays(np.arange(n, dtype=np.int64) * 60_000, c, c + 1, c - 1, c, np.ones(n))


def test_weighted_average_and_protocol() -> None:
    a, b = ConstModel("a", (0.0, 0.0, 1.0)), ConstModel("b", (1.0, 0.0, 0.0))
    coord = ModelCoordinator([(a, 3.0), (b, 1.0)], SimClock())
    assert isinstance(coord, GenericTradingModel)
    x = coord.features(_candles(5))
    assert coord.feature_names == ("a:f", "b:f")
    assert coord.predict_proba(x).tolist() == [[0.25, 0.0, 0.75]] * 5


def test_error_degrades_member_and_recovery_is_announced() -> None:
    clock = SimClock(1_000)
    events: list[EngineEvent] = []
    a, b = ConstModel("a", (0.0, 0.0, 1.0)), ConstModel("b", (1.0, 0.0, 0.0))
    coord = ModelCoordinator([(a, 1.0), (b, 1.0)], clock, on_event=events.append, recover_after=2)
    x = coord.features(_candles(1))
    b.fail = True
    assert coord.predict_proba(x).tolist() == [[0.0, 0.0, 1.0]]  # only the healthy member counts
    assert events == [ModelDegraded(ts=1_000, model="b", reason="predict failed: RuntimeError: boom")]
    hb = {h.name: h for h in coord.health()}["b"]
    assert not hb.healthy and hb.errors == 1 and "boom" in hb.reason
    b.fail = False
    clock.advance(60_000)
    coord.predict_proba(x)
    assert len(events) == 1  # one clean call is not enough
    coord.predict_proba(x)
    assert events[-1] == ModelRecovered(ts=61_000, model="b")
    assert coord.predict_proba(x).tolist() == [[0.5, 0.0, 0.5]]
    assert coord.pop_events() == events and coord.pop_events() == []


def test_nan_outputs_degrade_and_all_unhealthy_gives_flat() -> None:
    a = ConstModel("a", (0.0, 0.0, 1.0))
    coord = ModelCoordinator([(a, 1.0)], SimClock())
    x = coord.features(_candles(2))
    a.nan = True
    assert coord.predict_proba(x).tolist() == [[0.0, 1.0, 0.0]] * 2
    h = coord.health()[0]
    assert not h.healthy and h.nan_outputs == 2 and "NaN/inf" in h.reason


def test_latency_is_tracked_for_live_calls() -> None:
    ticks = iter(np.arange(0.0, 100.0, 0.0005))  # each timer read advances 0.5 ms
    coord = ModelCoordinator([(SmaCrossModel(), 1.0)], SimClock(), timer=lambda: float(next(ticks)),
                             latency_budget_ms=0.1)
    x = coord.features(_candles(40))
    for i in range(25):
        coord.predict_proba(x[i:i + 1])
    h = coord.health()[0]
    assert h.p50_ms == pytest.approx(0.5) and h.p99_ms == pytest.approx(0.5)
    assert not h.healthy and h.reason.startswith("slow: p99 latency 0.50 ms")


def test_psi_tracker_math() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(20_000, 2))
    bins = reference_bins(train, names=("a", "b"))
    tr = DriftTracker(bins["edges"], bins["proportions"], ("a", "b"), window=1000, min_rows=100)
    tr.add(rng.normal(size=(50, 2)))
    assert tr.psi() is None  # not enough rows yet
    for row in rng.normal(size=(1500, 2)):
        tr.add(row[None, :])
    assert tr.rows == 1000
    got = tr.psi()
    assert got is not None and got[0] < 0.05
    shifted = rng.normal(size=(1000, 2))
    shifted[:, 1] += 1.0
    tr.add(shifted)
    psi, feature = tr.psi() or (0.0, "")
    assert feature == "b" and psi > 0.5


def test_drift_fires_on_shifted_live_features_only(trained_dir: Path, eth_btc: CandleArrays) -> None:
    model = CatBoostTradingModel.load(trained_dir)
    x = model.features(eth_btc)[LOOKBACK - 1:]
    rows = x[np.random.default_rng(0).permutation(x.shape[0])[:400]]  # unshifted: the training population

    events: list[EngineEvent] = []
    calm = ModelCoordinator([(model, 1.0)], SimClock(), psi_window=300, psi_min_rows=200, on_event=events.append)
    for r in rows:
        calm.predict_proba(r[None, :])
    h = calm.health()[0]
    assert h.healthy and h.psi is not None and h.psi < 0.25, h
    assert events == []

    drifted = ModelCoordinator([(model, 1.0)], SimClock(), psi_window=300, psi_min_rows=200,
                               on_event=events.append)
    shifted = rows.copy()
    vol = model.feature_names.index("vol_12")
    shifted[:, vol] *= 4.0  # a volatility regime the model never saw
    for r in shifted:
        out = drifted.predict_proba(r[None, :])
    h = drifted.health()[0]
    assert not h.healthy and h.psi is not None and h.psi > 0.25
    assert "input drift" in h.reason and "vol_12" in h.reason
    assert [type(e) for e in events] == [ModelDegraded]
    assert out.tolist() == [[0.0, 1.0, 0.0]]  # its only member is degraded: flat


def test_ensemble_batch_equals_live_per_candle(trained_dir: Path, eth_btc: CandleArrays) -> None:
    model = CatBoostTradingModel.load(trained_dir)
    coord = ModelCoordinator([(model, 2.0), (SmaCrossModel(), 1.0)], SimClock())
    assert coord.lookback == LOOKBACK
    part = eth_btc.slice(0, 1_500)
    batch = coord.predict_proba(coord.features(part))
    for t in range(coord.lookback - 1, len(part)):
        live = coord.predict_proba(coord.features(part.slice(t - coord.lookback + 1, t + 1))[-1:])
        assert np.array_equal(live[0], batch[t]), f"candle {t}"
    assert all(h.errors == 0 and h.nan_outputs == 0 for h in coord.health())


def test_calendar_features_are_not_drift(trained_dir: Path, eth_btc: CandleArrays) -> None:
    """A few hours of live candles cover few days of the week: that alone must not count as drift."""
    model = CatBoostTradingModel.load(trained_dir)
    x = model.features(eth_btc)[LOOKBACK - 1:]
    rows = x[np.random.default_rng(3).permutation(x.shape[0])[:300]]
    dow = model.feature_names.index("dow_sin"), model.feature_names.index("dow_cos")
    rows[:, dow[0]], rows[:, dow[1]] = x[0, dow[0]], x[0, dow[1]]  # every row on the same weekday
    coord = ModelCoordinator([(model, 1.0)], SimClock(), psi_window=300, psi_min_rows=200)
    for r in rows:
        coord.predict_proba(r[None, :])
    h = coord.health()[0]
    assert h.healthy and h.psi is not None and h.psi < 0.25, h


class BrokenFeatures(ConstModel):
    def features(self, candles: CandleArrays) -> np.ndarray:
        raise ValueError("no data")


def test_failing_features_degrade_the_member() -> None:
    events: list[EngineEvent] = []
    good, bad = ConstModel("good", (0.0, 0.0, 1.0)), BrokenFeatures("bad", (1.0, 0.0, 0.0))
    coord = ModelCoordinator([(good, 1.0), (bad, 1.0)], SimClock(5), on_event=events.append)
    x = coord.features(_candles(3))
    assert np.isnan(x[:, 1]).all()
    assert coord.predict_proba(x).tolist() == [[0.0, 0.0, 1.0]] * 3
    assert events == [ModelDegraded(ts=5, model="bad", reason="features failed: ValueError: no data")]
