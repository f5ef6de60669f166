"""Accounting: cash, positions, marks, fees. Long only, spot: cash never goes negative.

Invariant (checked by property tests): equity == cash + sum(quantity * mark) for every position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.core.types import Fill, PositionView, Side, Trade


@dataclass(slots=True)
class Position:
    symbol: str
    quantity: float
    avg_price: float
    entry_ts: int
    entry_fee: float  # fees paid to build what is still held
    stop_price: float | None = None
    target_price: float | None = None
    trail_pct: float = 0.0
    high_water: float = 0.0  # highest price since entry, candles before the current one

    def trail_price(self) -> float | None:
        return self.high_water * (1.0 - self.trail_pct) if self.trail_pct > 0 else None


@dataclass(slots=True)
class Portfolio:
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    fees_paid: float = 0.0
    realized_pnl: float = 0.0

    def equity(self) -> float:
        total = self.cash
        for symbol, pos in self.positions.items():
            total += pos.quantity * self.marks.get(symbol, pos.avg_price)
        return total

    def exposure(self) -> float:
        return sum(p.quantity * self.marks.get(s, p.avg_price) for s, p in self.positions.items())

    def position_value(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        return 0.0 if pos is None else pos.quantity * self.marks.get(symbol, pos.avg_price)

    def apply(self, fill: Fill) -> Trade | None:
        """Book a fill: cash, fees, position; a sell returns the (partial) round trip it closes."""
        self.fees_paid += fill.fee
        if fill.side is Side.BUY:
            self._buy(fill)
            return None
        return self._sell(fill)

    def _buy(self, fill: Fill) -> None:
        self.cash -= fill.quantity * fill.price + fill.fee
        pos = self.positions.get(fill.symbol)
        if pos is None:
            self.positions[fill.symbol] = Position(fill.symbol, fill.quantity, fill.price, fill.ts, fill.fee,
                                                   high_water=fill.price)
            return
        total = pos.quantity + fill.quantity
        pos.avg_price = (pos.avg_price * pos.quantity + fill.price * fill.quantity) / total
        pos.quantity = total
        pos.entry_fee += fill.fee

    def _sell(self, fill: Fill) -> Trade:
        pos = self.positions[fill.symbol]
        self.cash += fill.quantity * fill.price - fill.fee
        share = fill.quantity / pos.quantity
        entry_fee = pos.entry_fee * share
        pnl = (fill.price - pos.avg_price) * fill.quantity - entry_fee - fill.fee
        self.realized_pnl += pnl
        trade = Trade(fill.symbol, "long", pos.entry_ts, fill.ts, pos.avg_price, fill.price, fill.quantity,
                      entry_fee + fill.fee, pnl, fill.reason)
        remaining = pos.quantity - fill.quantity
        if remaining <= pos.quantity * 1e-12:
            del self.positions[fill.symbol]
        else:
            pos.quantity = remaining
            pos.entry_fee -= entry_fee
        return trade

    def views(self) -> tuple[PositionView, ...]:
        out = []
        for symbol, p in sorted(self.positions.items()):
            mark = self.marks.get(symbol, p.avg_price)
            out.append(PositionView(symbol, p.quantity, p.avg_price, p.entry_ts, mark,
                                    (mark - p.avg_price) * p.quantity - p.entry_fee,
                                    p.stop_price, p.target_price, p.trail_price()))
        return tuple(out)

    def snapshot(self) -> dict[str, Any]:
        return {"cash": self.cash, "fees_paid": self.fees_paid, "realized_pnl": self.realized_pnl,
                "marks": dict(self.marks), "positions": [asdict(p) for p in self.positions.values()]}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Portfolio:
        positions = {p["symbol"]: Position(**p) for p in data["positions"]}
        return cls(float(data["cash"]), positions, {k: float(v) for k, v in data["marks"].items()},
                   float(data["fees_paid"]), float(data["realized_pnl"]))
