"""The strategy file a user writes from the docs (the README's interface, the template's imports): one text, used
by the loader's tests and the paper-live parity test, so both prove the same file."""

from __future__ import annotations

USER_STRATEGY = '''\
"""A user's strategy, written as the template teaches."""
from engine.strategy import IntParam, Strategy, ema, rsi


class EmaRsi(Strategy):
    timeframe = "5m"
    startup_candles = 50
    stoploss = -0.05
    fast = IntParam(5, 50, default=12)
    slow = IntParam(20, 200, default=26)

    def populate_indicators(self, df):
        df["ema_fast"] = ema(df["close"], self.fast)
        df["ema_slow"] = ema(df["close"], self.slow)
        df["rsi"] = rsi(df["close"], 14)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = ((df["ema_fast"] > df["ema_slow"]) & (df["rsi"] < 70)).astype(int)
        df["enter_tag"] = "ema_up"
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)
        return df
'''
