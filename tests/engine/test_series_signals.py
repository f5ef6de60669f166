"""The moving average is numpy's mean over each window to the bit; sma-cross's signals over a whole series
(``SmaCrossModel.series_signals``, what the backtest uses) are the model's own reading through ``features``,
``predict_proba`` and ``signals_from_proba`` in blocks (``block_signals``, the live loop's reading over a series),
element for element: on real candles, across block boundaries, and on series built to make the two averages tie.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from engine.backtest import BLOCK, block_signals, model_signals
from engine.core.model import CandleArrays, SmaCrossModel, sma
from tests.engine.helpers import real_candles


@pytest.mark.parametrize("window", [1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 26, 30, 50, 127, 128, 129, 136, 200, 300, 1000])
def test_sma_is_numpys_mean_of_each_window_to_the_bit(window: int) -> None:
    rng = np.random.default_rng(window)
    walk = 20_000.0 * np.exp(np.cumsum(rng.normal(0, 0.003, 200_000)))  # more rows than one block of sma's
    for values in (walk, real_candles("BTC_USDT-5m.csv").close, rng.random(window + 3) * 1e6):
        sizes = {window - 1, window, window + 1, window + 300, values.shape[0]}  # (below 256 rows: the view)
        for n in sorted(k for k in sizes if k <= values.shape[0]):
            got, part = sma(values[:n], window), values[:n]
            want = np.full(n, np.nan)
            if n >= window:
                want[window - 1:] = sliding_window_view(part, window).mean(axis=1)
            assert np.array_equal(got, want, equal_nan=True), (window, n)


def _candles(close: np.ndarray) -> CandleArrays:
    n = close.shape[0]
    ts = np.arange(n, dtype=np.int64) * 300_000
    return CandleArrays(ts, close.copy(), close * 1.001, close * 0.999, close, np.ones(n))


def assert_same(model: SmaCrossModel, candles: CandleArrays) -> int:
    direct = model.series_signals(candles)
    blocks = block_signals(model, candles)
    used = model_signals(model, candles)
    for a, b, c in zip(direct, blocks, used, strict=True):
        assert a.dtype == b.dtype == c.dtype and a.shape == b.shape == c.shape
        assert np.array_equal(a, b) and np.array_equal(a, c)
    return int(np.count_nonzero(direct[0]))


@pytest.mark.parametrize("name", ["BTC_USDT-5m.csv", "ETH_BTC-5m.csv", "BTC_USDT-1m.csv"])
@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (1, 2), (5, 200), (12, 26)])
def test_real_candles(name: str, fast: int, slow: int) -> None:
    assert assert_same(SmaCrossModel(fast, slow), real_candles(name)) > 10


def test_across_block_boundaries() -> None:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 3 * BLOCK + 123)))
    assert assert_same(SmaCrossModel(10, 30), _candles(close)) > 1000


def test_ties_and_short_series() -> None:
    # flat stretches make the averages equal (up to float noise, which counts as level), steps make them cross
    rng = np.random.default_rng(3)  # a walk of whole steps and 0.1 + 0.2: averages equal but for float noise
    close = 100.3 + np.cumsum(rng.choice([-1.0, 0.0, 0.0, 1.0], 5_000)) + 0.1 + 0.2
    assert assert_same(SmaCrossModel(3, 7), _candles(close)) > 50
    for n in (0, 1, 6, 7, 8):
        assert assert_same(SmaCrossModel(3, 7), _candles(np.linspace(1.0, 2.0, n))) == 0
