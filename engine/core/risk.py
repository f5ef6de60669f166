"""Risk: position sizing, exposure limits, protective exits, and the ACTIVE / REDUCING / HALTED state.

Every check returns a ``Refusal`` value (code + reason) or None; nothing here raises for a refused
order. State changes are returned as ``RiskStateChanged`` events by the trading core. Whether an
entry or exit may happen now is the kernel's decision, asked through ``engine.core.outcomes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

# Names an operator may change at run time (/risk key value), with their bounds.
RISK_BOUNDS: dict[str, tuple[float, float]] = {
    "position_fraction": (0.0, 1.0),
    "max_position_fraction": (0.0, 1.0),
    "max_total_exposure": (0.0, 1.0),
    "stop_loss_pct": (0.0, 0.99),
    "take_profit_pct": (0.0, 10.0),
    "trailing_stop_pct": (0.0, 0.99),
    "max_daily_loss_pct": (0.0, 1.0),
    "max_drawdown_pct": (0.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Fractions, not percents: 0.05 is 5 %. A protective limit of 0 is off."""

    position_fraction: float = 0.2  # size of a new entry, fraction of equity at fill time
    max_position_fraction: float = 0.25  # per symbol, fraction of equity
    max_total_exposure: float = 1.0  # all positions together, fraction of equity
    stop_loss_pct: float = 0.05
    take_profit_pct: float = 0.0
    trailing_stop_pct: float = 0.0
    max_daily_loss_pct: float = 0.05  # entries stop (REDUCING) until the next UTC day
    max_drawdown_pct: float = 0.20  # entries stop (HALTED) until an operator resumes

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            problem = check_limit(f.name, value)
            if problem:
                raise ValueError(problem)

    def with_value(self, key: str, value: float) -> RiskLimits:
        return replace(self, **{key: value})

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskLimits:
        return cls(**{k: float(v) for k, v in data.items() if k in RISK_BOUNDS})


def check_limit(key: str, value: float) -> str | None:
    """Why ``value`` is not acceptable for risk parameter ``key``, or None."""
    if key not in RISK_BOUNDS:
        return f"unknown risk parameter {key!r}; known: {', '.join(RISK_BOUNDS)}"
    low, high = RISK_BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{key} must be a finite number, got {value!r}"
    if not low <= value <= high:
        return f"{key} must be between {low:g} and {high:g}, got {value:g}"
    return None


def check_change(limits: RiskLimits, key: str, value: float) -> str | None:
    """Why setting ``key`` to ``value`` in ``limits`` is not acceptable, or None: the value's own bounds, then the
    limits together (an entry of ``position_fraction`` never above the ``max_position_fraction`` one symbol
    may hold: it would be cut to the cap on every entry, which is rarely what a person means)."""
    problem = check_limit(key, value)
    if problem is not None:
        return problem
    entry = float(value) if key == "position_fraction" else limits.position_fraction
    cap = float(value) if key == "max_position_fraction" else limits.max_position_fraction
    if entry <= cap:
        return None
    if key == "position_fraction":
        return (f"position_fraction {entry:g} is above max_position_fraction {cap:g}, the most one symbol may hold; "
                f"choose at most {cap:g}, or raise max_position_fraction first")
    if key == "max_position_fraction":
        return (f"max_position_fraction {cap:g} is below position_fraction {entry:g}, the size of each entry; "
                f"lower position_fraction first")
    return None


@dataclass(frozen=True, slots=True)
class Costs:
    fee_bps: float = 10.0
    slippage_bps: float = 0.0

    @property
    def fee_rate(self) -> float:
        return self.fee_bps / 10_000.0

    @property
    def slip_rate(self) -> float:
        return self.slippage_bps / 10_000.0


@dataclass(frozen=True, slots=True)
class SignalFilters:
    min_confidence: float = 0.60
    cooldown_ms: int = 0  # after a position closes, no new entry on that symbol for this long
