from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.model import CandleArrays
from engine.models.features import FEATURE_NAMES, LOOKBACK, compute_features
from engine.models.labels import DOWN, FLAT, NO_LABEL, UP, label_threshold, make_labels
from tests.models.conftest import real


def _tile(c: CandleArrays, times: int) -> CandleArrays:
    """A longer series (> one feature block) built by repeating a real one with shifted timestamps."""
    span = int(c.ts[-1] - c.ts[0]) + int(c.ts[1] - c.ts[0])
    ts = np.concatenate([c.ts + k * span for k in range(times)])
    return CandleArrays(ts, *(np.tile(a, times) for a in (c.open, c.high, c.low, c.close, c.volume)))


def test_shape_names_and_warmup(eth_btc: CandleArrays) -> None:
    x = compute_features(eth_btc)
    assert x.shape == (len(eth_btc), len(FEATURE_NAMES))
    assert x.dtype == np.float64
    assert np.isfinite(x[LOOKBACK - 1:]).all()  # full history: every feature defined
    assert np.isnan(x[LOOKBACK - 2]).any()  # one candle short: the widest feature is missing
    assert np.isnan(x[0, FEATURE_NAMES.index("ret_1")])


def test_window_equals_batch_exactly_on_every_row(eth_btc: CandleArrays) -> None:
    full = compute_features(eth_btc)
    for t in range(LOOKBACK - 1, len(eth_btc)):
        row = compute_features(eth_btc.slice(t - LOOKBACK + 1, t + 1))[-1]
        assert np.array_equal(row, full[t]), f"row {t} differs"


def test_blocked_long_series_equals_window_values(eth_btc: CandleArrays) -> None:
    long = _tile(eth_btc, 3)  # 17k rows: processed in several blocks
    full = compute_features(long)
    assert np.array_equal(full[: len(eth_btc)], compute_features(eth_btc), equal_nan=True)
    for t in (8_191, 8_192, 8_193, 8_192 + LOOKBACK, 16_384, len(long) - 1):
        assert np.array_equal(compute_features(long.slice(t - LOOKBACK + 1, t + 1))[-1], full[t])


def test_short_input_is_all_nan_not_an_error() -> None:
    c = CandleArrays(np.arange(5, dtype=np.int64) * 60_000, *(np.full(5, 1.0) for _ in range(5)))
    x = compute_features(c)
    assert x.shape == (5, len(FEATURE_NAMES))
    assert np.isnan(x[:, FEATURE_NAMES.index("macd_signal")]).all()
    empty = compute_features(c.slice(0, 0))
    assert empty.shape == (0, len(FEATURE_NAMES))


def test_time_features_known_instant() -> None:
    # 2024-01-01 (a Monday) 06:00 UTC: a quarter day in, Monday is the start of the week phase
    ts = np.array([1_704_088_800_000], dtype=np.int64)
    c = CandleArrays(ts, *(np.ones(1) for _ in range(5)))
    x = compute_features(c)[0]
    assert x[FEATURE_NAMES.index("tod_sin")] == pytest.approx(1.0)
    assert x[FEATURE_NAMES.index("tod_cos")] == pytest.approx(0.0, abs=1e-12)
    assert x[FEATURE_NAMES.index("dow_sin")] == pytest.approx(np.sin(2 * np.pi * 0.25 / 7))


def test_labels_classes_and_unlabelled_tail() -> None:
    close = np.array([100.0, 101.0, 100.0, 99.0, 99.05, 99.0])
    y = make_labels(close, horizon=1, fee_bps=10.0)  # threshold: ln(1.002)
    assert y.tolist() == [UP, DOWN, DOWN, FLAT, FLAT, NO_LABEL]
    y3 = make_labels(close, horizon=3)
    assert (y3[-3:] == NO_LABEL).all()
    assert label_threshold(10.0) == pytest.approx(np.log(1.002))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1.0, 1000.0), min_size=2, max_size=60), st.integers(1, 10))
def test_labels_only_use_the_future_horizon(prices: list[float], horizon: int) -> None:
    close = np.array(prices)
    y = make_labels(close, horizon)
    n = close.shape[0]
    assert (y[max(n - horizon, 0):] == NO_LABEL).all()
    for t in range(max(n - horizon, 0)):
        changed = close.copy()
        changed[t + horizon + 1:] *= 3.0  # beyond the label window: no effect
        assert make_labels(changed, horizon)[t] == y[t]


def test_real_file_has_all_three_classes() -> None:
    y = make_labels(real().arrays.close, horizon=12)
    assert set(np.unique(y[y >= 0]).tolist()) == {DOWN, FLAT, UP}
