"""A ``Strategy`` behind the engine's model face (``engine.core.model.GenericTradingModel``), so the live loop and
the backtest run a user's strategy through the one decision kernel, unchanged.

``features`` runs the strategy's populate methods over the candles it is given (the whole series in a backtest,
the trailing ``lookback`` window live) and returns, per candle, the strategy's action and confidence;
``predict_proba`` encodes them as (down, flat, up) rows whose most likely class is the action and whose maximum is
the confidence, which is exactly what ``signals_from_proba`` (the loop's and the backtest's reading of a model)
turns back into (action, confidence). The tags of the candles ``features`` last saw are kept beside
(``last_tags``): the backtest gives them to the trades, the live loop the newest one to the order it makes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from engine.core.model import DOWN, FLAT, UP, CandleArrays
from engine.core.risk import RiskLimits
from engine.strategy.base import ENTER, EXIT, Strategy

_BELOW = 1e-9  # how far under the confidence the other classes sit, so that a confidence of 0 still decides


class StrategyModel:
    """``strategy`` as a model: features = (action, confidence) per candle."""

    feature_names: tuple[str, ...] = ("action", "confidence")

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.name: str = strategy.name
        self.lookback: int = strategy.lookback
        # (enter_tag, exit_tag) per candle of the last ``features`` call (object arrays, or None without tags)
        self.last_tags: tuple[np.ndarray | None, np.ndarray | None] = (None, None)

    def features(self, candles: CandleArrays) -> np.ndarray:
        signals = self.strategy.signals(candles)
        self.last_tags = (signals.enter_tag, signals.exit_tag)
        out = np.empty((len(signals), 2))
        out[:, 0] = signals.action
        out[:, 1] = signals.confidence
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        action, confidence = x[:, 0], x[:, 1]
        proba = np.zeros((x.shape[0], 3))
        proba[:, FLAT] = 1.0  # HOLD
        for wanted, column in ((ENTER, UP), (EXIT, DOWN)):
            rows = action == wanted
            proba[rows] = (confidence[rows] / 2 - _BELOW)[:, None]  # the other two classes, just below
            proba[rows, column] = confidence[rows]
        return proba

    def latest_tag(self, action: int) -> str | None:
        """The tag of the newest candle of the last ``features`` call for ``action`` (ENTER: its enter_tag, EXIT:
        its exit_tag): what the live loop hands to the order that signal makes."""
        enter, exit_ = self.last_tags
        tags = enter if action == ENTER else exit_ if action == EXIT else None
        if tags is None or not len(tags):
            return None
        tag = tags[-1]
        return None if tag is None else str(tag)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "strategy", "class": type(self.strategy).__name__,
                "params": dict(self.strategy.params()), "feature_names": list(self.feature_names)}


def strategy_limits(strategy: Strategy, limits: RiskLimits) -> RiskLimits:
    """The risk limits a run of ``strategy`` uses: the config's, with each stop the strategy declares
    (``stoploss``, ``take_profit``, ``trailing_stop``; not None) in place of the config's value. A strategy that
    declares none (sma-cross) trades under the config's stops, as before strategies existed."""
    declared = {"stop_loss_pct": strategy.stoploss, "take_profit_pct": strategy.take_profit,
                "trailing_stop_pct": strategy.trailing_stop}
    exits = strategy.protective_exits()
    return replace(limits, **{key: exits[key] for key, value in declared.items() if value is not None})
