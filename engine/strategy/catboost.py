"""The CatBoost model as a strategy: ``CatBoostStrategy`` (``engine.strategy.catboost:CatBoostStrategy``).

A trained model directory (``trading-agent train``) is the strategy's one parameter, ``model``::

    trading-agent backtest --strategy engine.strategy.catboost:CatBoostStrategy --param model=models/eth-btc

``populate_indicators`` computes the model's features (``engine.models.features``, each row from its own
trailing window) and its (down, flat, up) probabilities into the columns ``p_down``, ``p_flat``, ``p_up``;
the entry is where the model says up, the exit where it says down, read exactly as the engine reads a model
(``signals_from_proba``: the most likely class, down on a tie), with the most likely class's probability as
``confidence`` (the ``min_confidence`` filter's input). So the strategy trades exactly as the model does when
the backtest or the live loop runs the model itself (tests/strategy/test_catboost_strategy.py).

CatBoost is imported when a model is loaded (``configure``), never when this module or ``engine.strategy`` is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.core.model import CandleArrays
from engine.strategy.base import ENTER, EXIT, Strategy
from engine.strategy.params import Param, StrategyError

if TYPE_CHECKING:
    from engine.models.catboost_model import CatBoostTradingModel

PROBA_COLUMNS: tuple[str, str, str] = ("p_down", "p_flat", "p_up")  # engine.core.model's DOWN, FLAT, UP order


class ModelDirParam(Param[str]):
    """A trained model's directory (text; "" = none given). Not tunable: the optimiser leaves it as given."""

    def __init__(self, *, default: str = "") -> None:
        self.default = default

    def convert(self, value: Any, owner: str = "strategy") -> str:
        if isinstance(value, Path):
            return str(value)
        if not isinstance(value, str):
            raise self._error(owner, value, "is not a directory path (text)")
        return value.strip()

    def describe(self) -> str:
        return "a trained model directory"

    def __repr__(self) -> str:
        return f"ModelDirParam(default={self.default!r})"


class CatBoostStrategy(Strategy):
    """Long where a trained CatBoost model says up, out where it says down (see the module docstring).

    No stop of its own: the risk limits' stops apply, as they do to the model run directly."""

    strategy_name = "catboost"
    model = ModelDirParam()

    def configure(self) -> None:
        from engine.errors import ModelLoadError
        from engine.models.catboost_model import CatBoostTradingModel

        if not self.model:
            raise StrategyError("catboost: no model given; pass a trained model's directory: --param model=DIR "
                                "(or model = \"DIR\" under [strategy.params])")
        try:
            self._model: CatBoostTradingModel = CatBoostTradingModel.load(Path(self.model))
        except ModelLoadError as exc:
            raise StrategyError(f"catboost: {exc}") from None
        # rows before the widest feature's window are flat anyway (NaN features); the live window covers it
        self.startup_candles = max(0, self._model.lookback - 1)

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        candles = CandleArrays(_ms(df["date"]), _floats(df["open"]), _floats(df["high"]), _floats(df["low"]),
                               _floats(df["close"]), _floats(df["volume"]))
        proba = self._model.predict_proba(self._model.features(candles))
        for k, name in enumerate(PROBA_COLUMNS):
            df[name] = proba[:, k]
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        action, confidence = _read(df)
        df["enter_long"] = (action == ENTER).astype(int)
        df["confidence"] = confidence
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        action, _ = _read(df)
        df["exit_long"] = (action == EXIT).astype(int)
        return df

    def metadata(self) -> dict[str, Any]:
        meta = super().metadata()
        meta["model_name"] = self._model.name
        return meta


def _read(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(action, confidence) per row from the probability columns, as the engine reads a model's output."""
    from engine.core.codes import signals_from_proba

    proba = np.column_stack([df[name].to_numpy(dtype=np.float64) for name in PROBA_COLUMNS])
    return signals_from_proba(proba)


def _floats(series: pd.Series) -> np.ndarray:
    return np.ascontiguousarray(series.to_numpy(dtype=np.float64))


def _ms(dates: pd.Series) -> np.ndarray:
    """UTC datetimes as integer milliseconds since the epoch (the candles' ``ts``)."""
    return np.ascontiguousarray(dates.dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").astype(np.int64))
