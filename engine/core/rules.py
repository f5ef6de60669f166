"""An exchange's trading rules for one market, as the paper broker (and later the live one) applies them.

Built from the exchange's market description (``engine.exchange.venue.rules_from_market``, from ccxt's
``load_markets``); ``MarketRules.none(symbol)`` is "no rules" (a backtest on a CSV, the synthetic market),
under which everything behaves as before markets were known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MarketRules:
    """``amount_step``: quantities are whole multiples of it (0: any); ``price_tick``: prices are whole multiples
    of it (0: any); ``min_amount``: the smallest quantity, in the base asset; ``min_notional``: the smallest
    order value, quantity times price, in the quote asset (0: none)."""

    symbol: str
    amount_step: float = 0.0
    price_tick: float = 0.0
    min_amount: float = 0.0
    min_notional: float = 0.0
    base: str = ""
    quote: str = ""

    @classmethod
    def none(cls, symbol: str) -> MarketRules:
        return cls(symbol)

    @property
    def any(self) -> bool:
        """Whether any rule applies."""
        return bool(self.amount_step or self.price_tick or self.min_amount or self.min_notional)

    @property
    def min_quantity(self) -> float:
        """The smallest quantity an order may have: the minimum amount, and at least one step."""
        return max(self.min_amount, self.amount_step)

    def __post_init__(self) -> None:
        for name in ("amount_step", "price_tick", "min_amount", "min_notional"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{self.symbol}: {name} must be a finite number >= 0, not {value!r}")


def plain(x: float, digits: int = 6) -> str:
    """A number as the engine's words show an amount, a quantity or a rule: ``digits`` significant digits, no
    exponent, no trailing zeros (``5``, ``0.0000001``, ``4.995``, ``25000``)."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
