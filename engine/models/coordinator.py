"""``ModelCoordinator``: a weighted ensemble that watches the health of each member.

The coordinator is itself a ``GenericTradingModel``. Its feature matrix is the members' feature
matrices side by side (columns ``"<member>:<feature>"``), its lookback the largest member lookback,
and its probabilities the weighted average of the healthy members' rows (a flat row when no member
is healthy, or none gave a finite row).

For each member it tracks, on every ``predict_proba`` call:

* errors: exceptions from ``features`` or ``predict_proba``, or output of the wrong shape;
* NaN/inf outputs (a member must return a flat row for NaN input, never NaN);
* latency of live-sized calls (at most ``live_rows`` rows; batched backtest calls are not timed);
* input drift: the population stability index (PSI) of the last ``psi_window`` live feature rows
  against the training distribution stored in the member's metadata (``feature_bins``: per-feature
  decile edges and training proportions). The reported PSI is the largest over the features.

A member with an error, a NaN/inf output, PSI above ``psi_threshold`` or (if set) p99 latency above
``latency_budget_ms`` is marked degraded: it stops contributing (it is still evaluated, so it can
recover) and a ``ModelDegraded`` event goes to ``on_event``. It recovers after ``recover_after``
consecutive clean calls with PSI at most ``psi_threshold * psi_recover_ratio``, with a
``ModelRecovered`` event.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from engine.core.clock import Clock
from engine.core.model import FLAT, CandleArrays, GenericTradingModel
from engine.events import EngineEvent, ModelDegraded, ModelRecovered

log = structlog.get_logger("engine.models.coordinator")

PSI_EPS = 1e-4


@dataclass(frozen=True, slots=True)
class ModelHealth:
    name: str
    healthy: bool
    reason: str
    p50_ms: float
    p99_ms: float
    psi: float | None
    errors: int
    nan_outputs: int
    weight: float = 1.0


class DriftTracker:
    """PSI of a rolling window of live rows against reference bins (see ``features.reference_bins``)."""

    def __init__(self, edges: Sequence[Sequence[float]], proportions: Sequence[Sequence[float]],
                 feature_names: Sequence[str], window: int = 500, min_rows: int = 100) -> None:
        k = len(edges)
        nb = max((len(e) + 1 for e in edges), default=1)
        self.nbins = nb
        self.names = tuple(feature_names)
        self.edges = np.full((k, max(nb - 1, 1)), np.inf)
        self.ref = np.zeros((k, nb))
        for j, (e, p) in enumerate(zip(edges, proportions, strict=True)):
            self.edges[j, : len(e)] = e
            self.ref[j, : len(p)] = p
        self.ref = np.maximum(self.ref, PSI_EPS)
        self.window = window
        self.min_rows = min_rows
        self._buf = np.zeros((window, k), dtype=np.intp)
        self._pos = 0
        self._count = 0
        self._counts = np.zeros((k, nb + 1), dtype=np.int64)  # last column: non-finite values
        self._feat = np.arange(k)

    def _bin(self, x: np.ndarray) -> np.ndarray:
        idx: np.ndarray = (x[:, :, None] >= self.edges[None, :, :]).sum(axis=2)
        idx[~np.isfinite(x)] = self.nbins
        return idx

    def add(self, x: np.ndarray) -> None:
        """Add live rows (m, k); only the last ``window`` rows are kept."""
        if x.shape[0] == 0:
            return
        if x.shape[0] >= self.window:
            idx = self._bin(x[-self.window:])
            self._buf[:] = idx
            self._pos, self._count = 0, self.window
            flat = (self._feat[None, :] * (self.nbins + 1) + idx).ravel()
            self._counts = np.bincount(flat, minlength=self._counts.size).reshape(self._counts.shape)
            return
        for row in self._bin(x):
            if self._count == self.window:
                self._counts[self._feat, self._buf[self._pos]] -= 1
            else:
                self._count += 1
            self._buf[self._pos] = row
            self._counts[self._feat, row] += 1
            self._pos = (self._pos + 1) % self.window

    @property
    def rows(self) -> int:
        return self._count

    def psi(self) -> tuple[float, str] | None:
        """(largest per-feature PSI, that feature) once ``min_rows`` rows are in, else None."""
        if self._count < self.min_rows:
            return None
        finite = self._counts[:, : self.nbins]
        totals = finite.sum(axis=1)
        live = np.maximum(finite / np.maximum(totals, 1)[:, None], PSI_EPS)
        per_feature = ((live - self.ref) * np.log(live / self.ref)).sum(axis=1)
        per_feature[totals < self.min_rows] = 0.0
        j = int(np.argmax(per_feature))
        return float(per_feature[j]), self.names[j]


class _Member:
    def __init__(self, model: GenericTradingModel, weight: float, name: str, start: int, window: int,
                 min_rows: int) -> None:
        self.model = model
        self.weight = weight
        self.name = name
        self.cols = slice(start, start + len(model.feature_names))
        self.healthy = True
        self.reason = ""
        self.errors = 0
        self.nan_outputs = 0
        self.clean_streak = 0
        self.pending_error: str | None = None
        self.latencies: deque[float] = deque(maxlen=1000)
        self.psi: float | None = None
        self.psi_feature = ""
        bins = _feature_bins(model)
        self.drift = None if bins is None else DriftTracker(bins[0], bins[1], model.feature_names, window,
                                                            min_rows)


def _feature_bins(model: GenericTradingModel) -> tuple[list[list[float]], list[list[float]]] | None:
    try:
        bins = model.metadata().get("feature_bins")
    except Exception:  # a model's own code: whatever it raises, the drift check is simply off for it
        return None
    if not isinstance(bins, dict) or "edges" not in bins or "proportions" not in bins:
        return None
    edges, props = bins["edges"], bins["proportions"]
    if len(edges) != len(model.feature_names) or len(props) != len(edges):
        return None
    return edges, props


class ModelCoordinator:
    """Weighted ensemble of models with per-member health, drift and events (see module docstring)."""

    def __init__(self, models: Sequence[tuple[GenericTradingModel, float]], clock: Clock, *,
                 psi_threshold: float = 0.25, psi_recover_ratio: float = 0.8, psi_window: int = 500,
                 psi_min_rows: int = 100, latency_budget_ms: float | None = None, recover_after: int = 3,
                 live_rows: int = 16, on_event: Callable[[EngineEvent], object] | None = None,
                 name: str = "ensemble", timer: Callable[[], float] = time.perf_counter) -> None:
        if not models:
            raise ValueError("ModelCoordinator needs at least one model")
        self.clock = clock
        self.psi_threshold = psi_threshold
        self.psi_recover = psi_threshold * psi_recover_ratio
        self.latency_budget_ms = latency_budget_ms
        self.recover_after = recover_after
        self.live_rows = live_rows
        self.on_event = on_event
        self._timer = timer
        self._events: list[EngineEvent] = []
        self.members: list[_Member] = []
        seen: dict[str, int] = {}
        start = 0
        for model, weight in models:
            if weight <= 0:
                raise ValueError(f"model {model.name}: weight must be > 0, got {weight}")
            seen[model.name] = seen.get(model.name, 0) + 1
            mname = model.name if seen[model.name] == 1 else f"{model.name}#{seen[model.name]}"
            self.members.append(_Member(model, float(weight), mname, start, psi_window, psi_min_rows))
            start += len(model.feature_names)
        self.name = name
        self.feature_names: tuple[str, ...] = tuple(
            f"{m.name}:{f}" for m in self.members for f in m.model.feature_names)
        self.lookback: int = max(m.model.lookback for m in self.members)

    # --- GenericTradingModel -----------------------------------------------------------------------

    def features(self, candles: CandleArrays) -> np.ndarray:
        n = len(candles)
        out = np.full((n, len(self.feature_names)), np.nan)
        for m in self.members:
            try:
                f = np.asarray(m.model.features(candles), dtype=np.float64)
                if f.shape != (n, m.cols.stop - m.cols.start):
                    raise ValueError(f"features have shape {f.shape}, expected {(n, m.cols.stop - m.cols.start)}")
                out[:, m.cols] = f
            except Exception as exc:  # a member's own code: any failure degrades that member, never the loop
                m.errors += 1
                m.pending_error = f"features failed: {type(exc).__name__}: {exc}"
                log.warning("member_features_failed", model=m.name, error=repr(exc))
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        total = np.zeros((n, 3))
        wsum = np.zeros(n)
        for m in self.members:
            p = self._call(m, x[:, m.cols])
            if m.healthy and p is not None:
                ok = np.isfinite(p).all(axis=1)
                total[ok] += m.weight * p[ok]
                wsum[ok] += m.weight
        out = np.zeros((n, 3))
        out[:, FLAT] = 1.0
        has = wsum > 0
        out[has] = total[has] / wsum[has, None]
        return out

    def metadata(self) -> dict[str, Any]:
        members = []
        for m in self.members:
            try:
                meta = m.model.metadata()
            except Exception as exc:  # a member's own code: shown as its error, never fatal
                meta = {"error": repr(exc)}
            members.append({"name": m.name, "weight": m.weight, "metadata": meta})
        return {"name": self.name, "kind": "ensemble", "feature_names": list(self.feature_names),
                "lookback": self.lookback, "psi_threshold": self.psi_threshold, "members": members}

    # --- health ------------------------------------------------------------------------------------

    def health(self) -> list[ModelHealth]:
        out = []
        for m in self.members:
            if m.latencies:
                lat = np.asarray(m.latencies)
                p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
            else:
                p50 = p99 = float("nan")
            out.append(ModelHealth(m.name, m.healthy, m.reason, p50, p99, m.psi, m.errors, m.nan_outputs,
                                   m.weight))
        return out

    def pop_events(self) -> list[EngineEvent]:
        """Events raised since the last call (they also went to ``on_event``)."""
        events, self._events = self._events, []
        return events

    def _call(self, m: _Member, xm: np.ndarray) -> np.ndarray | None:
        n = xm.shape[0]
        problem = m.pending_error
        m.pending_error = None
        p: np.ndarray | None = None
        t0 = self._timer()
        try:
            p = np.asarray(m.model.predict_proba(xm), dtype=np.float64)
            if p.shape != (n, 3):
                raise ValueError(f"predict_proba returned shape {p.shape}, expected {(n, 3)}")
        except Exception as exc:  # a member's own code: any failure degrades that member, never the loop
            p = None
            m.errors += 1
            problem = problem or f"predict failed: {type(exc).__name__}: {exc}"
            log.warning("member_predict_failed", model=m.name, error=repr(exc))
        elapsed_ms = (self._timer() - t0) * 1000.0
        if n <= self.live_rows:
            m.latencies.append(elapsed_ms)
        if p is not None:
            bad = int(np.count_nonzero(~np.isfinite(p).all(axis=1)))
            if bad:
                m.nan_outputs += bad
                problem = problem or f"{bad} NaN/inf output row(s)"
        if m.drift is not None:
            m.drift.add(xm)
            got = m.drift.psi()
            if got is not None:
                m.psi, m.psi_feature = got
        self._update(m, problem)
        return p

    def _update(self, m: _Member, problem: str | None) -> None:
        limit = self.psi_threshold if m.healthy else self.psi_recover
        if problem is None and m.psi is not None and m.psi > limit:
            problem = f"input drift: PSI {m.psi:.3f} on {m.psi_feature} > {limit:.3f}"
        if problem is None and self.latency_budget_ms is not None and len(m.latencies) >= 20:
            p99 = float(np.percentile(np.asarray(m.latencies), 99))
            if p99 > self.latency_budget_ms:
                problem = f"slow: p99 latency {p99:.2f} ms > {self.latency_budget_ms:.2f} ms"
        if problem is not None:
            m.clean_streak = 0
            if m.healthy:
                m.healthy = False
                m.reason = problem
                self._emit(ModelDegraded(ts=self.clock.now_ms(), model=m.name, reason=problem))
            else:
                m.reason = problem
            return
        m.clean_streak += 1
        if not m.healthy and m.clean_streak >= self.recover_after:
            m.healthy = True
            m.reason = ""
            self._emit(ModelRecovered(ts=self.clock.now_ms(), model=m.name))

    def _emit(self, event: EngineEvent) -> None:
        self._events.append(event)
        log.warning("model_health", kind=type(event).__name__, model=getattr(event, "model", ""),
                    reason=getattr(event, "reason", ""))
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a subscriber's failure must not stop the predictions (a task boundary)
                log.exception("on_event_failed", event=type(event).__name__)
