"""Read-only views of the accounting state held in the kernel's arrays, and those arrays fresh (``new_state``).

Invariant (checked by property tests): equity == cash + sum(quantity * mark) for every position, plus
sum(dust * mark) for every symbol's dust (what a sell left below the exchange's minimums: not a position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.core import kernel as K
from engine.core.types import PositionView


def new_state(starting_cash: float, n_symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's arrays ``g`` and ``s`` of a fresh portfolio: all cash, ``n_symbols`` empty rows."""
    g = np.zeros(K.NG)
    g[K.CASH] = starting_cash
    g[K.PEAK] = starting_cash
    g[K.DAY] = -1.0
    g[K.DAY_START] = starting_cash
    return g, new_symbol_rows(n_symbols)


def new_symbol_rows(n: int) -> np.ndarray:
    """``n`` empty symbol rows of ``s``: no position, no levels, no candle yet."""
    s = np.zeros((n, K.NS))
    s[:, K.STOP] = np.nan
    s[:, K.TARGET] = np.nan
    s[:, K.LAST_TS] = np.nan
    s[:, K.COOL_UNTIL] = np.nan
    return s


class KernelArrays(Protocol):
    """What the portfolio reads: the kernel's state arrays and the symbol -> row index (``TradingCore``)."""

    @property
    def g(self) -> np.ndarray: ...

    @property
    def s(self) -> np.ndarray: ...

    @property
    def index(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: float
    avg_price: float
    entry_ts: int
    entry_fee: float  # fees paid to build what is still held
    stop_price: float | None
    target_price: float | None
    trail_pct: float
    high_water: float  # highest price since entry, candles before the current one

    def trail_price(self) -> float | None:
        return self.high_water * (1.0 - self.trail_pct) if self.trail_pct > 0 else None


@dataclass(frozen=True, slots=True)
class Dust:
    """What a sell left of a symbol below the exchange's minimums: unsellable on its own, valued at the mark,
    and part of the position the next buy of the symbol opens."""

    symbol: str
    quantity: float
    avg_price: float  # what it cost, per unit (fees apart)
    fee: float  # the entry fees of what it is
    mark_price: float

    @property
    def value(self) -> float:
        return self.quantity * self.mark_price


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


class Portfolio:
    """Cash, positions and marks of a ``TradingCore``, read from its arrays on every access."""

    def __init__(self, core: KernelArrays) -> None:
        self._core = core

    @property
    def cash(self) -> float:
        return float(self._core.g[K.CASH])

    @property
    def fees_paid(self) -> float:
        return float(self._core.g[K.FEES])

    @property
    def realized_pnl(self) -> float:
        return float(self._core.g[K.REALIZED])

    @property
    def positions(self) -> dict[str, Position]:
        s = self._core.s
        out = {}
        for symbol, i in self._core.index.items():
            if s[i, K.QTY] > 0.0:
                out[symbol] = Position(symbol, float(s[i, K.QTY]), float(s[i, K.AVG]), int(s[i, K.ENTRY_TS]),
                                       float(s[i, K.ENTRY_FEE]), _opt(s[i, K.STOP]), _opt(s[i, K.TARGET]),
                                       float(s[i, K.TRAIL]), float(s[i, K.HIGH_WATER]))
        return out

    @property
    def dust(self) -> dict[str, Dust]:
        s = self._core.s
        return {symbol: Dust(symbol, float(s[i, K.DUST]), float(s[i, K.DUST_AVG]), float(s[i, K.DUST_FEE]),
                             float(s[i, K.MARK]))
                for symbol, i in self._core.index.items() if s[i, K.DUST] > 0.0}

    @property
    def marks(self) -> dict[str, float]:
        s = self._core.s
        return {sym: float(s[i, K.MARK]) for sym, i in self._core.index.items() if s[i, K.MARK] > 0.0}

    def equity(self) -> float:
        return float(K.equity(self._core.g, self._core.s))

    def exposure(self) -> float:
        return float(K.exposure(self._core.s))

    def position_value(self, symbol: str) -> float:
        i = self._core.index.get(symbol)
        if i is None or self._core.s[i, K.QTY] <= 0.0:
            return 0.0
        return float(self._core.s[i, K.QTY] * self._core.s[i, K.MARK])

    def views(self) -> tuple[PositionView, ...]:
        out = []
        s = self._core.s
        for symbol, pos in sorted(self.positions.items()):
            mark = float(s[self._core.index[symbol], K.MARK])
            out.append(PositionView(symbol, pos.quantity, pos.avg_price, pos.entry_ts, mark,
                                    (mark - pos.avg_price) * pos.quantity - pos.entry_fee,
                                    pos.stop_price, pos.target_price, pos.trail_price()))
        return tuple(out)
