"""Causal, windowed candle features for the learned models.

``compute_features(c)`` returns an (n, len(FEATURE_NAMES)) float64 matrix. Row t is a function of
exactly the ``LOOKBACK`` candles ending at t (fewer for most features), and every windowed quantity
is computed from a contiguous copy of its own window with the same numpy reduction, so

    compute_features(c)[t] == compute_features(c.slice(t - LOOKBACK + 1, t + 1))[-1]

holds bit for bit. That is what makes a backtest (one call over the whole series) and the live path
(one call per candle over the trailing window) give identical numbers. There is no recursive
(infinite-memory) EMA and no cumulative sum over the history: the MACD EMAs are truncated to a fixed
window with fixed, normalised weights.

Rows without enough history for a feature hold NaN in that column. Long inputs are processed in
overlapping blocks (to bound memory); because rows only depend on their own window the blocks give
the same numbers as one pass.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from engine.core.model import CandleArrays

RETURN_LAGS: tuple[int, ...] = (1, 3, 6, 12, 24, 48)
VOL_WINDOWS: tuple[int, ...] = (12, 48)
RSI_WINDOW = 14
ATR_WINDOW = 14
BB_WINDOW = 20
VOLUME_WINDOW = 48
SMA_WINDOW = 48
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
# A span-s EMA is truncated to its last 3*s values (weight left out: (1-2/(s+1))^(3s) ≈ 0.25%).
EMA_SPAN_MULT = 3

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{k}" for k in RETURN_LAGS),
    *(f"vol_{w}" for w in VOL_WINDOWS),
    f"rsi_{RSI_WINDOW}",
    "macd",
    "macd_signal",
    "macd_hist",
    f"atr_{ATR_WINDOW}",
    f"bb_pctb_{BB_WINDOW}",
    f"bb_width_{BB_WINDOW}",
    f"volume_z_{VOLUME_WINDOW}",
    f"sma_dist_{SMA_WINDOW}",
    "range_hl",
    "close_pos",
    "body",
    "tod_sin",
    "tod_cos",
    "dow_sin",
    "dow_cos",
)

# Candles in the window that the widest feature needs (MACD signal: slow EMA window + signal window - 1).
LOOKBACK: int = max(
    max(RETURN_LAGS) + 1,
    max(VOL_WINDOWS) + 1,
    RSI_WINDOW + 1,
    ATR_WINDOW + 1,
    BB_WINDOW,
    VOLUME_WINDOW,
    SMA_WINDOW,
    EMA_SPAN_MULT * MACD_SLOW + EMA_SPAN_MULT * MACD_SIGNAL - 1,
)

_BLOCK_ROWS = 8_192
_DAY_MS = 86_400_000
_WEEK_MS = 7 * _DAY_MS
_FIRST_MONDAY_MS = 4 * _DAY_MS  # 1970-01-05 was a Monday: Monday 00:00 UTC is phase 0


_INDEX_CACHE: dict[tuple[int, int], np.ndarray] = {}
_INDEX_CACHE_MAX = 64


def _window_index(n: int, w: int) -> np.ndarray:
    key = (n, w)
    idx = _INDEX_CACHE.get(key)
    if idx is None:
        if len(_INDEX_CACHE) >= _INDEX_CACHE_MAX:
            _INDEX_CACHE.clear()
        idx = np.arange(n - w + 1, dtype=np.intp)[:, None] + np.arange(w, dtype=np.intp)[None, :]
        _INDEX_CACHE[key] = idx
    return idx


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    """Contiguous (n-w+1, w) copy of the sliding windows (row i = x[i .. i+w-1])."""
    out: np.ndarray = x[_window_index(x.shape[0], w)]
    return out


def _row_mean(win: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.add.reduce(win, axis=1) / win.shape[1]
    return out


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    """Right-align ``values`` in an array of length n, NaN before."""
    m = values.shape[0]
    if m == n:
        return values
    out = np.empty(n)
    out[: n - m] = np.nan
    out[n - m:] = values
    return out


def _win_mean(x: np.ndarray, w: int) -> np.ndarray:
    n = x.shape[0]
    if n < w:
        return np.full(n, np.nan)
    return _pad(_row_mean(_windows(x, w)), n)


def _win_mean_std(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Windowed mean and population standard deviation (two-pass, per window)."""
    n = x.shape[0]
    if n < w:
        return np.full(n, np.nan), np.full(n, np.nan)
    win = _windows(x, w)
    mean = _row_mean(win)
    win -= mean[:, None]
    win *= win
    return _pad(mean, n), _pad(np.sqrt(_row_mean(win)), n)


def _win_std(x: np.ndarray, w: int) -> np.ndarray:
    return _win_mean_std(x, w)[1]


@lru_cache(maxsize=16)
def _ema_weights(span: int) -> np.ndarray:
    """Fixed weights of a span-``span`` EMA truncated to ``EMA_SPAN_MULT*span`` values, oldest first."""
    length = EMA_SPAN_MULT * span
    alpha = 2.0 / (span + 1.0)
    w = alpha * (1.0 - alpha) ** np.arange(length - 1, -1, -1, dtype=np.float64)
    out: np.ndarray = w / w.sum()
    return out


def _win_ema(x: np.ndarray, span: int) -> np.ndarray:
    weights = _ema_weights(span)
    w = weights.shape[0]
    n = x.shape[0]
    if n < w:
        return np.full(n, np.nan)
    win = _windows(x, w)
    win *= weights
    return _pad(np.add.reduce(win, axis=1), n)


def _safe_ratio(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    """num/den where den != 0, ``fill`` where den == 0, NaN where either is NaN."""
    out = np.full(num.shape[0], fill)
    nz = den != 0
    np.divide(num, den, out=out, where=nz)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def _lag_log_return(close: np.ndarray, k: int) -> np.ndarray:
    n = close.shape[0]
    out = np.full(n, np.nan)
    if n > k:
        out[k:] = np.log(close[k:] / close[:-k])
    return out


def _block_features(c: CandleArrays) -> np.ndarray:
    n = len(c)
    close, high, low, opn = c.close, c.high, c.low, c.open
    cols: list[np.ndarray] = []

    for k in RETURN_LAGS:
        cols.append(_lag_log_return(close, k))

    r1 = _lag_log_return(close, 1)
    for w in VOL_WINDOWS:
        cols.append(_pad(_win_std(r1[1:], w), n))

    diff = np.full(n, np.nan)
    diff[1:] = close[1:] - close[:-1]
    gain = np.maximum(diff[1:], 0.0)
    loss = np.maximum(-diff[1:], 0.0)
    avg_gain = _pad(_win_mean(gain, RSI_WINDOW), n)
    avg_loss = _pad(_win_mean(loss, RSI_WINDOW), n)
    cols.append(_safe_ratio(avg_gain, avg_gain + avg_loss, 0.5))

    macd = _safe_ratio(_win_ema(close, MACD_FAST) - _win_ema(close, MACD_SLOW), close, 0.0)
    first = EMA_SPAN_MULT * MACD_SLOW - 1  # first row with a MACD value
    signal = _pad(_win_ema(macd[first:], MACD_SIGNAL), n) if n > first else np.full(n, np.nan)
    cols.extend((macd, signal, macd - signal))

    prev_close = np.full(n, np.nan)
    prev_close[1:] = close[:-1]
    tr = np.maximum(high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close)))
    cols.append(_safe_ratio(_pad(_win_mean(tr[1:], ATR_WINDOW), n), close, 0.0))

    mid, sd = _win_mean_std(close, BB_WINDOW)
    cols.append(_safe_ratio(close - (mid - 2.0 * sd), 4.0 * sd, 0.5))
    cols.append(_safe_ratio(4.0 * sd, mid, 0.0))

    logv = np.log1p(c.volume)
    vmean, vsd = _win_mean_std(logv, VOLUME_WINDOW)
    cols.append(_safe_ratio(logv - vmean, vsd, 0.0))

    cols.append(_safe_ratio(close, _win_mean(close, SMA_WINDOW), np.nan) - 1.0)

    rng = high - low
    cols.append(_safe_ratio(rng, close, 0.0))
    cols.append(_safe_ratio(close - low, rng, 0.5))
    cols.append(_safe_ratio(close - opn, opn, 0.0))

    tod = (c.ts % _DAY_MS).astype(np.float64) * (2.0 * np.pi / _DAY_MS)
    dow = ((c.ts - _FIRST_MONDAY_MS) % _WEEK_MS).astype(np.float64) * (2.0 * np.pi / _WEEK_MS)
    cols.extend((np.sin(tod), np.cos(tod), np.sin(dow), np.cos(dow)))

    return np.column_stack(cols) if n else np.empty((0, len(FEATURE_NAMES)))


def compute_features(c: CandleArrays) -> np.ndarray:
    """(n, len(FEATURE_NAMES)) float64 causal features; NaN where a feature lacks history."""
    n = len(c)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if n <= _BLOCK_ROWS:
            return _block_features(c)
        out = np.empty((n, len(FEATURE_NAMES)))
        for start in range(0, n, _BLOCK_ROWS):
            stop = min(n, start + _BLOCK_ROWS)
            lead = min(start, LOOKBACK - 1)
            block = _block_features(c.slice(start - lead, stop))
            out[start:stop] = block[lead:]
        return out


# --- reference distribution for drift (population stability index) ---------------------------------

PSI_BINS = 10
# Calendar features are not monitored for drift: any window shorter than a week differs from the
# (uniform) training distribution of the day of week by construction, without anything being wrong.
DRIFT_EXEMPT: tuple[str, ...] = ("tod_sin", "tod_cos", "dow_sin", "dow_cos")


def reference_bins(x: np.ndarray, n_bins: int = PSI_BINS,
                   names: tuple[str, ...] = FEATURE_NAMES) -> dict[str, list[list[float]]]:
    """Per-feature inner bin edges (training quantiles) and the training proportion in each bin.

    Only finite values count. ``edges[j]`` is increasing and may be shorter than ``n_bins - 1`` where a
    feature has repeated values; ``proportions[j]`` has ``len(edges[j]) + 1`` entries summing to 1.
    Features in ``DRIFT_EXEMPT`` (and columns without finite values) get one bin: never any drift.
    """
    edges: list[list[float]] = []
    props: list[list[float]] = []
    qs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    for j in range(x.shape[1]):
        col = x[:, j]
        col = col[np.isfinite(col)]
        exempt = j < len(names) and names[j] in DRIFT_EXEMPT
        if col.shape[0] == 0 or exempt:
            edges.append([])
            props.append([1.0])
            continue
        e = np.unique(np.quantile(col, qs))
        counts = np.bincount(np.searchsorted(e, col, side="right"), minlength=e.shape[0] + 1)
        edges.append([float(v) for v in e])
        props.append([float(v) for v in counts / counts.sum()])
    return {"edges": edges, "proportions": props}
