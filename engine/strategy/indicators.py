"""Small indicator helpers for strategies, pandas only (no TA-Lib). Each is causal: its value at candle t uses
candles up to t only, and rows without enough history are NaN."""

from __future__ import annotations

import pandas as pd

__all__ = ["TIE_TOLERANCE", "bollinger", "crossed_above", "crossed_below", "ema", "rsi", "sma"]

# Differences within this relative amount count as level, as ``engine.core.model``'s sma-cross does: two
# averages equal in exact arithmetic can differ in their last bits depending on the order of summation.
TIE_TOLERANCE = 1e-9


def sma(series: pd.Series, window: int) -> pd.Series:
    """Simple moving average of the last ``window`` values."""
    return series.rolling(window, min_periods=window).mean()


def ema(series: pd.Series, span: int) -> pd.Series:
    """Exponential moving average (alpha = 2 / (span + 1)), NaN for the first ``span - 1`` rows."""
    return series.ewm(span=span, adjust=False, min_periods=span).mean()


def rsi(series: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's relative strength index (0..100); 100 where there were no losses, NaN before ``period`` changes."""
    delta = series.diff()
    gain = delta.clip(lower=0.0)
    loss = -delta.clip(upper=0.0)
    alpha = 1.0 / period
    avg_gain = gain.ewm(alpha=alpha, adjust=False, min_periods=period).mean()
    avg_loss = loss.ewm(alpha=alpha, adjust=False, min_periods=period).mean()
    out = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out.mask((avg_loss == 0.0) & avg_gain.notna(), 100.0)


def bollinger(series: pd.Series, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: columns ``mid`` (SMA), ``upper`` and ``lower`` (``k`` population standard deviations)."""
    mid = sma(series, window)
    std = series.rolling(window, min_periods=window).std(ddof=0)
    return pd.DataFrame({"mid": mid, "upper": mid + k * std, "lower": mid - k * std})


def _side(a: pd.Series, b: pd.Series) -> pd.Series:
    """-1, 0 or 1 for a below, level with or above b (within ``TIE_TOLERANCE`` of b: level; NaN: level)."""
    diff = a - b
    above = diff > TIE_TOLERANCE * b.abs()
    below = diff < -TIE_TOLERANCE * b.abs()
    return above.astype("int8") - below.astype("int8")


def crossed_above(a: pd.Series, b: pd.Series) -> pd.Series:
    """True where ``a`` went from strictly below ``b`` on the previous candle to strictly above it now."""
    now = _side(a, b)
    return (now.shift(1, fill_value=0) < 0) & (now > 0)


def crossed_below(a: pd.Series, b: pd.Series) -> pd.Series:
    """True where ``a`` went from strictly above ``b`` on the previous candle to strictly below it now."""
    now = _side(a, b)
    return (now.shift(1, fill_value=0) > 0) & (now < 0)
