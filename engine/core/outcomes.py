"""The one table of entry and exit rules: the kernel's outcome codes, typed, with their data and their words.

The kernel's ``_decide`` (engine/core/kernel.py) is the only code that decides whether a signal becomes
an order. Everything else that asks "may this trade happen now?" asks the kernel too, through
``decide`` (on copies of the state, so nothing changes): the signal record of every candle (live and
backtest alike), an operator's buy or sell, a close, and ``/signal``'s "would trade now". An operator
is not bound by the pause, the cooldown or the confidence filter: those are set aside in the copy the
kernel is asked about (``TradingCore.would``), not re-implemented. An operator's order is asked about
with its own size (``kind``, ``amount``), which the kernel checks against the exchange's rules as it
checks the strategy's own (and an order of the operator's own size may add to a position).

The exchange's rules give two outcomes: ``BELOW_MIN`` (the order would fill below the minimum amount or
notional at the current mark) and ``PRECISION`` (an operator's quantity with more decimals than the
amount step). Their words name the rule and the numbers (``Sizing``, from the kernel's ``fill_size``);
``rule_words`` says the same of an order the kernel dropped at its fill.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from engine.core import kernel as K
from engine.core.rules import MarketRules, plain
from engine.core.types import Refusal, RiskState


class Outcome(enum.IntEnum):
    """What the kernel concluded on a signal, one member per kernel code (``kernel.O_*``)."""

    HOLD = K.O_HOLD
    LOW_CONFIDENCE = K.O_LOW_CONF
    PENDING = K.O_PENDING
    NO_POSITION = K.O_NO_POSITION
    EXIT_ORDER = K.O_EXIT_ORDER
    IN_POSITION = K.O_IN_POSITION
    PAUSED = K.O_PAUSED
    RISK_STATE = K.O_RISK_STATE
    STALE = K.O_STALE
    COOLDOWN = K.O_COOLDOWN
    ENTRY_ORDER = K.O_ENTRY_ORDER
    BELOW_MIN = K.O_BELOW_MIN
    PRECISION = K.O_PRECISION

    @property
    def orders(self) -> bool:
        """An order is placed for the next candle's open."""
        return self in (Outcome.ENTRY_ORDER, Outcome.EXIT_ORDER)


# outcome -> the refusal code an operator's request gets for it (None: not a refusal)
REFUSAL_CODES: dict[Outcome, str | None] = {
    Outcome.HOLD: None, Outcome.LOW_CONFIDENCE: None, Outcome.PENDING: "pending", Outcome.NO_POSITION: "no_position",
    Outcome.EXIT_ORDER: None, Outcome.IN_POSITION: None, Outcome.PAUSED: "paused", Outcome.RISK_STATE: "risk_state",
    Outcome.STALE: "feed_stale", Outcome.COOLDOWN: "cooldown", Outcome.ENTRY_ORDER: None,
    Outcome.BELOW_MIN: "below_minimum", Outcome.PRECISION: "precision",
}
ENTRY_GATES = (Outcome.PAUSED, Outcome.RISK_STATE, Outcome.STALE, Outcome.COOLDOWN)  # they stop entries only
RULE_OUTCOMES = (Outcome.BELOW_MIN, Outcome.PRECISION)  # the exchange's rules: they stop entries and exits


@dataclass(frozen=True, slots=True)
class Sizing:
    """What an order would fill, for the words of a broken exchange rule: its size as asked (``kind`` one of the
    kernel's ``BY_*``, ``amount`` in its unit), the quantity and price of its fill, the rule (``kernel.RULE_*``)."""

    rules: MarketRules
    kind: float
    amount: float
    quantity: float
    price: float
    rule: int


def sizing(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, side: float, kind: float, amount: float,
           rules: MarketRules) -> Sizing:
    """The kernel's fill of an order at the mark of row ``i`` (``kernel.fill_size``, ``kernel.rule_break``): nothing
    changes. ``OWN_SIZE``: the strategy's own order on that side."""
    if kind == K.OWN_SIZE:
        kind, amount = (K.BY_FRACTION, float(p[K.POS_FRAC])) if side == K.BUY else (K.BY_QUANTITY, float(s[i, K.QTY]))
    raw, qty, price = K.fill_size(g, s, p, i, side, kind, amount, float(s[i, K.MARK]))
    rule = int(K.rule_break(s, i, raw, qty, price))
    return Sizing(rules, kind, amount, float(qty if qty > 0.0 else raw), float(price), rule)


def _units(x: float, unit: str) -> str:
    return f"{plain(x)} {unit}" if unit else plain(x)


def rule_words(symbol: str, size: Sizing) -> str:
    """Which exchange rule an order breaks, with the numbers: ``1 USDT is below the exchange's minimum order of 5
    USDT``; ``0.0004 BTC is below the exchange's minimum amount of 0.001 BTC``."""
    r = size.rules
    least = f"the exchange's minimum order of {_units(r.min_notional, r.quote)}"
    asked = size.kind == K.BY_NOTIONAL  # an amount of the quote currency: the words start from it
    if asked and size.amount < r.min_notional:
        return f"{_units(size.amount, r.quote)} is below {least}"
    if size.rule == K.RULE_MIN_AMOUNT:
        least_amount = f"the exchange's minimum amount of {_units(r.min_quantity, r.base)}"
        if asked:
            return f"{_units(size.amount, r.quote)} fills only {_units(size.quantity, r.base)}, below {least_amount}"
        return f"{_units(size.quantity, r.base)} is below {least_amount}"
    value = _units(size.quantity * size.price, r.quote)
    if asked:
        return (f"{_units(size.amount, r.quote)} fills only {_units(size.quantity, r.base)} at {plain(size.price)} "
                f"({value}), below {least}")
    return f"{_units(size.quantity, r.base)} at {plain(size.price)} is {value}, below {least}"


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome with the data its words need."""

    outcome: Outcome
    symbol: str
    confidence: float = math.nan
    min_confidence: float = 0.0
    risk_state: RiskState = RiskState.ACTIVE
    size: Sizing | None = None  # for BELOW_MIN and PRECISION: the order and what it would fill

    def refusal(self, verb: str = "sell") -> Refusal | None:
        """The refusal an operator's request meets (``verb``: what a missing position stops), or None."""
        code = REFUSAL_CODES[self.outcome]
        return None if code is None else Refusal(code, self._reason(verb))

    def _reason(self, verb: str) -> str:
        o, s = self.outcome, self.symbol
        if o is Outcome.PENDING:
            return f"an order for {s} is already pending"
        if o is Outcome.NO_POSITION:
            return f"no {s} position to {verb}"
        if o is Outcome.PAUSED:
            return "trading is paused"
        if o is Outcome.RISK_STATE:
            return f"risk state is {self.risk_state.value}: no new entries"
        if o is Outcome.STALE:
            return f"the {s} feed is stale: no new entries"
        if o in RULE_OUTCOMES:
            return self._rule_reason()
        return f"{s} is cooling down after its last exit"  # COOLDOWN, the last outcome with a refusal code

    def _rule_reason(self) -> str:
        size = self.size
        if size is None:
            return f"the order breaks {self.symbol}'s exchange rules"
        if self.outcome is Outcome.PRECISION:
            r = size.rules
            return (f"{_units(size.amount, r.base)} has more decimals than {self.symbol} allows "
                    f"(step {plain(r.amount_step)})")
        return rule_words(self.symbol, size)

    def record_text(self) -> str:
        """The signal record's words (``SignalRecord.outcome``, the signals table, ``/signal``'s last signal)."""
        o = self.outcome
        if o is Outcome.LOW_CONFIDENCE:
            return f"filtered: confidence {self.confidence:.2f} below {self.min_confidence:.2f}"
        if o in ENTRY_GATES or o in RULE_OUTCOMES:
            return f"refused: {self._reason('')}"
        return FIXED_WORDS[o]


# the record's words of the outcomes that need no data (looked up by the kernel's int code on every candle)
FIXED_WORDS: dict[int, str] = {Outcome.HOLD: "hold", Outcome.ENTRY_ORDER: "order", Outcome.EXIT_ORDER: "order",
                               Outcome.PENDING: "nothing to do: an order is already pending",
                               Outcome.NO_POSITION: "nothing to do: no position",
                               Outcome.IN_POSITION: "nothing to do: already in position"}


def decide(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, action: int, confidence: float,
           kind: float = K.OWN_SIZE, amount: float = 0.0) -> Outcome:
    """The kernel's outcome for ``action`` on symbol row ``i`` now, on copies of the state: nothing changes. ``kind``
    and ``amount`` size an operator's order; the default is the strategy's own."""
    return Outcome(int(K._decide(g.copy(), s.copy(), p, i, float(ts), int(action), float(confidence), float(kind),
                                 float(amount))))
