"""The built-in strategies, by name: ``sma-cross``, ``rsi-mean-reversion``, ``bollinger-breakout``.

Simple, honest rules, meant as examples and baselines, not as promises of profit. Each computes its signal on
candle t's close from candles up to t; the kernel fills it at candle t+1's open.
"""

from __future__ import annotations

import pandas as pd

from engine.strategy.base import Strategy
from engine.strategy.indicators import bollinger, crossed_above, crossed_below, rsi, sma
from engine.strategy.params import SMA_CROSS_PARAMS, FloatParam, IntParam


class SmaCross(Strategy):
    """Long when the fast SMA of the close crosses above the slow one, out when it crosses below.

    The very signals of ``engine.core.model.SmaCrossModel`` (crossing as backtesting.py defines it, values
    within a relative 1e-9 level); no stop of its own (the risk limits apply)."""

    strategy_name = "sma-cross"
    fast = SMA_CROSS_PARAMS["fast"]
    slow = SMA_CROSS_PARAMS["slow"]

    def configure(self) -> None:
        self.startup_candles = self.slow  # the first cross can be seen on the candle after the slow SMA's first

    def check_params(self) -> str | None:
        return None if self.fast < self.slow else f"fast ({self.fast}) must be below slow ({self.slow})"

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df["sma_fast"] = sma(df["close"], self.fast)
        df["sma_slow"] = sma(df["close"], self.slow)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = crossed_above(df["sma_fast"], df["sma_slow"]).astype(int)
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = crossed_below(df["sma_fast"], df["sma_slow"]).astype(int)
        return df


class RsiMeanReversion(Strategy):
    """Buy the dip: enter when Wilder's RSI closes below ``oversold``, leave when it closes above ``exit_above``.

    Mean reversion catches falling knives in a trend, so it carries a 10 % stop-loss."""

    strategy_name = "rsi-mean-reversion"
    startup_candles = 100  # Wilder's smoothing settles over a few periods (period is at most 50)
    stoploss = -0.10
    period = IntParam(2, 50, default=14)
    oversold = FloatParam(5.0, 50.0, default=30.0)
    exit_above = FloatParam(30.0, 95.0, default=55.0)

    def check_params(self) -> str | None:
        if self.oversold < self.exit_above:
            return None
        return f"oversold ({self.oversold:g}) must be below exit_above ({self.exit_above:g})"

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df["rsi"] = rsi(df["close"], self.period)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = (df["rsi"] < self.oversold).astype(int)
        df["enter_tag"] = "rsi_oversold"
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = (df["rsi"] > self.exit_above).astype(int)
        df["exit_tag"] = "rsi_recovered"
        return df


class BollingerBreakout(Strategy):
    """Follow a breakout: enter when the close crosses above the upper Bollinger band, leave when it crosses
    back below the middle band (the SMA). A 5 % stop-loss covers a failed breakout that gaps down."""

    strategy_name = "bollinger-breakout"
    stoploss = -0.05
    window = IntParam(5, 200, default=20)
    k = FloatParam(0.5, 4.0, default=2.0)

    def configure(self) -> None:
        self.startup_candles = self.window

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        bands = bollinger(df["close"], self.window, self.k)
        df["bb_mid"] = bands["mid"]
        df["bb_upper"] = bands["upper"]
        df["bb_lower"] = bands["lower"]
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = crossed_above(df["close"], df["bb_upper"]).astype(int)
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = crossed_below(df["close"], df["bb_mid"]).astype(int)
        return df


BUILTINS: dict[str, type[Strategy]] = {cls.label(): cls for cls in (SmaCross, RsiMeanReversion, BollingerBreakout)}
