"""The public strategy module: what a strategy file imports.

```python
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
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)
        return df
```

``Strategy.signals(candles)`` turns candles into the decision kernel's inputs (``Signals``: action per candle,
confidence, tags); ``engine.strategy.loader.load_strategy`` finds a strategy by name, file or module;
``engine.strategy.lookahead.check_lookahead`` proves its output causal. See ``engine.strategy.base`` for the
rules (the tie rule: a candle with both ``enter_long`` and ``exit_long`` is an EXIT).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.strategy.base import ENTER, EXIT, HOLD, Signals, Strategy
    from engine.strategy.indicators import bollinger, crossed_above, crossed_below, ema, rsi, sma
    from engine.strategy.params import CategoricalParam, FloatParam, IntParam, Param, StrategyError

# the public names, each from its module, imported on first use (PEP 562): a module of this package that needs no
# pandas (params, the sma-cross declaration) is importable without paying for pandas (~60 MB) through this file
_WHERE = {
    **dict.fromkeys(("ENTER", "EXIT", "HOLD", "Signals", "Strategy"), "engine.strategy.base"),
    **dict.fromkeys(("bollinger", "crossed_above", "crossed_below", "ema", "rsi", "sma"), "engine.strategy.indicators"),
    **dict.fromkeys(("CategoricalParam", "FloatParam", "IntParam", "Param", "StrategyError"), "engine.strategy.params"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.strategy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "ENTER",
    "EXIT",
    "HOLD",
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Param",
    "Signals",
    "Strategy",
    "StrategyError",
    "bollinger",
    "crossed_above",
    "crossed_below",
    "ema",
    "rsi",
    "sma",
]
