"""The one table of entry and exit rules: the kernel's outcome codes, typed, with their data and their words.

The kernel's ``_decide`` (engine/core/kernel.py) is the only code that decides whether a signal becomes
an order. Everything else that asks "may this trade happen now?" asks the kernel too, through
``decide`` (on copies of the state, so nothing changes): the signal record of every candle (live and
backtest alike), an operator's buy or sell, a close, and ``/signal``'s "would trade now". An operator
is not bound by the pause, the cooldown or the confidence filter, and may add to a position: those
are set aside in the copy the kernel is asked about (``TradingCore.would``), not re-implemented.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from engine.core import kernel as K
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

    @property
    def orders(self) -> bool:
        """An order is placed for the next candle's open."""
        return self in (Outcome.ENTRY_ORDER, Outcome.EXIT_ORDER)


# outcome -> the refusal code an operator's request gets for it (None: not a refusal)
REFUSAL_CODES: dict[Outcome, str | None] = {
    Outcome.HOLD: None, Outcome.LOW_CONFIDENCE: None, Outcome.PENDING: "pending", Outcome.NO_POSITION: "no_position",
    Outcome.EXIT_ORDER: None, Outcome.IN_POSITION: None, Outcome.PAUSED: "paused", Outcome.RISK_STATE: "risk_state",
    Outcome.STALE: "feed_stale", Outcome.COOLDOWN: "cooldown", Outcome.ENTRY_ORDER: None,
}
ENTRY_GATES = (Outcome.PAUSED, Outcome.RISK_STATE, Outcome.STALE, Outcome.COOLDOWN)  # they stop entries only


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome with the data its words need."""

    outcome: Outcome
    symbol: str
    confidence: float = math.nan
    min_confidence: float = 0.0
    risk_state: RiskState = RiskState.ACTIVE

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
        return f"{s} is cooling down after its last exit"  # COOLDOWN, the last outcome with a refusal code

    def record_text(self) -> str:
        """The signal record's words (``SignalRecord.outcome``, the signals table, ``/signal``'s last signal)."""
        o = self.outcome
        if o is Outcome.LOW_CONFIDENCE:
            return f"filtered: confidence {self.confidence:.2f} below {self.min_confidence:.2f}"
        if o in ENTRY_GATES:
            return f"refused: {self._reason('')}"
        return FIXED_WORDS[o]


# the record's words of the outcomes that need no data (looked up by the kernel's int code on every candle)
FIXED_WORDS: dict[int, str] = {Outcome.HOLD: "hold", Outcome.ENTRY_ORDER: "order", Outcome.EXIT_ORDER: "order",
                               Outcome.PENDING: "nothing to do: an order is already pending",
                               Outcome.NO_POSITION: "nothing to do: no position",
                               Outcome.IN_POSITION: "nothing to do: already in position"}


def decide(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, action: int,
           confidence: float) -> Outcome:
    """The kernel's outcome for ``action`` on symbol row ``i`` now, on copies of the state: nothing changes."""
    return Outcome(int(K._decide(g.copy(), s.copy(), p, i, float(ts), int(action), float(confidence))))
