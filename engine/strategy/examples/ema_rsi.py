"""EmaRsi: an EMA cross with an RSI filter, an example strategy file for trading-agent.

Run it:    trading-agent backtest --strategy engine/strategy/examples/ema_rsi.py:EmaRsi --data candles.csv
Check it:  trading-agent check-lookahead --strategy engine/strategy/examples/ema_rsi.py:EmaRsi --data candles.csv
Tune it:   --param fast=8 --param slow=30 --param rsi_max=65

The rule: buy when the fast EMA of the close crosses above the slow one while the RSI is below ``rsi_max``
(not chasing a move that is already overbought); sell when the fast EMA crosses back below the slow one, or at
the 5 % stop-loss. A signal on a candle's close fills at the next candle's open.

It is the strategy of bench/strategy.py (1,000,000 candles against backtesting.py running the same rule) and of
the backtesting.py cross-check in tests/strategy/test_crosscheck_strategies.py.
"""

import pandas as pd

from engine.strategy import FloatParam, IntParam, Strategy, crossed_above, crossed_below, ema, rsi


class EmaRsi(Strategy):
    timeframe = "5m"
    startup_candles = 50
    stoploss = -0.05  # sell when the price falls 5 % below the entry

    fast = IntParam(3, 50, default=12)
    slow = IntParam(10, 200, default=26)
    rsi_period = IntParam(2, 50, default=14)
    rsi_max = FloatParam(50.0, 95.0, default=70.0)

    def check_params(self) -> str | None:
        return None if self.fast < self.slow else f"fast ({self.fast}) must be below slow ({self.slow})"

    def configure(self) -> None:
        # an EMA starts from the first close it sees: three spans of candles let the start fade
        self.startup_candles = max(50, 3 * self.slow)

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df["ema_fast"] = ema(df["close"], self.fast)
        df["ema_slow"] = ema(df["close"], self.slow)
        df["rsi"] = rsi(df["close"], self.rsi_period)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        cross = crossed_above(df["ema_fast"], df["ema_slow"])
        df["enter_long"] = (cross & (df["rsi"] < self.rsi_max)).astype(int)
        df["enter_tag"] = "ema_cross"
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = crossed_below(df["ema_fast"], df["ema_slow"]).astype(int)
        df["exit_tag"] = "ema_cross_down"
        return df
