"""What a trial maximises, read from the backtest's own metrics (``engine.backtest.compute_metrics``).

- ``sharpe``, ``sortino``: annualised from per-candle returns, as the backtest reports them;
- ``calmar``: CAGR over the maximum drawdown, the drawdown floored at ``CALMAR_FLOOR`` (a run that never drew down
  would divide by zero);
- ``return``: the total return of the window;
- ``profit-factor``: gross profit over gross loss, capped at ``PROFIT_FACTOR_CAP`` (no losing trade is infinite).

A value that is not a number (a CAGR of a run that lost everything) scores ``WORST``. ``comparable`` is the form
compared between an in-sample and an out-of-sample window of other lengths: the same, except ``return`` whose
annual rate (CAGR) is compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

OBJECTIVES = ("sharpe", "sortino", "calmar", "return", "profit-factor")
LABELS = {"sharpe": "Sharpe", "sortino": "Sortino", "calmar": "Calmar", "return": "return",
          "profit-factor": "profit factor"}
CALMAR_FLOOR = 0.01
PROFIT_FACTOR_CAP = 100.0
WORST = -1e9


def _finite(value: float) -> float:
    if math.isnan(value):
        return WORST
    return max(min(value, -WORST), WORST)


def score(objective: str, metrics: Mapping[str, float]) -> float:
    """The objective's value of one backtest's metrics (module docstring)."""
    if objective == "calmar":
        return _finite(metrics["cagr"] / max(metrics["max_drawdown"], CALMAR_FLOOR))
    if objective == "return":
        return _finite(metrics["total_return"])
    if objective == "profit-factor":
        return _finite(min(metrics["profit_factor"], PROFIT_FACTOR_CAP))
    return _finite(metrics[objective])


def comparable(objective: str, metrics: Mapping[str, float]) -> float:
    """The objective in a form that does not grow with the window's length (module docstring)."""
    return _finite(metrics["cagr"]) if objective == "return" else score(objective, metrics)
