"""The core's saved state: a JSON document with named fields and a version, and the reading of older ones.

The kernel keeps its state in float64 arrays indexed by position (``g`` portfolio-wide, ``s`` one row per
symbol; see ``engine.core.kernel``). Saved positionally, a reordered or added kernel field would restore
silently into the wrong slot. So the saved document names every field, says its version, and ``read``
checks the version before anything is restored:

* version 4 (written now)::

      {"version": 4, "starting_cash": 10000.0, "state_reason": "",
       "portfolio": {"cash": ..., "fees": ..., "realized": ..., "peak": ..., "day": ..., "day_start": ...,
                     "state": 0, "paused": 0},
       "symbols": [{"symbol": "BTCUSDT", "quantity": ..., "avg_price": ..., ...}, ...],   # in row order
       "limits": {...}, "pending": {"BTCUSDT": {order}}}

  NaN is written as null. ``symbols`` is a list because its order is the kernel's row order (a JSON
  object's key order is not kept by PostgreSQL's JSONB). Each symbol carries its dust (``dust``,
  ``dust_avg_price``, ``dust_fee``) and the exchange's rules it traded under (``amount_step``,
  ``price_tick``, ``min_amount``, ``min_notional``): written for the record, while the rules that apply
  after a restore are the ones the exchange gives at this start (``TradingCore.restore`` applies them).
  Optional: ``"entry_tags": {"BTCUSDT": "golden"}`` (the strategy's enter_tag of each open position, written
  only when there is one; absent reads as none) and a pending order's ``"tag"``.
* version 3 (the same without dust and rules): migrated on read, no dust and no rules.
* version 2 (the positional format, ``"g"`` and ``"s"`` lists): migrated on read, field by field.
* anything else (no version, an unknown or newer one, a malformed document): ``SnapshotUnreadable``, one
  line saying what was found and what to do; nothing is restored.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core import kernel as K
from engine.errors import SnapshotUnreadable

SNAPSHOT_VERSION = 4

PORTFOLIO_FIELDS: dict[str, int] = {
    "cash": K.CASH, "fees": K.FEES, "realized": K.REALIZED, "peak": K.PEAK, "day": K.DAY, "day_start": K.DAY_START,
    "state": K.STATE, "paused": K.PAUSED,
}  # fmt: skip
"""Name -> index in the kernel's ``g`` array."""

V3_SYMBOL_FIELDS: dict[str, int] = {
    "quantity": K.QTY, "avg_price": K.AVG, "entry_ts": K.ENTRY_TS, "entry_fee": K.ENTRY_FEE, "stop": K.STOP,
    "target": K.TARGET, "trail": K.TRAIL, "high_water": K.HIGH_WATER, "mark": K.MARK, "cooldown_until": K.COOL_UNTIL,
    "stale": K.STALE, "last_candle_ts": K.LAST_TS, "pending_side": K.P_SIDE, "pending_kind": K.P_KIND,
    "pending_amount": K.P_AMOUNT, "pending_ts": K.P_TS, "pending_reason": K.P_REASON,
}  # fmt: skip
"""The symbol fields of versions 2 and 3: name -> column (version 2's positional order is this order)."""

SYMBOL_FIELDS: dict[str, int] = {
    **V3_SYMBOL_FIELDS, "dust": K.DUST, "dust_avg_price": K.DUST_AVG, "dust_fee": K.DUST_FEE,
    "amount_step": K.AMOUNT_STEP, "price_tick": K.PRICE_TICK, "min_amount": K.MIN_AMOUNT,
    "min_notional": K.MIN_NOTIONAL,
}  # fmt: skip
"""Name -> column in the kernel's ``s`` array (one row per symbol)."""

WHAT_TO_DO = "start this version on an empty database, or run the version that wrote it"


@dataclass(frozen=True, slots=True)
class CoreState:
    """What ``TradingCore`` saves and restores, in the kernel's own shapes."""

    symbols: tuple[str, ...]
    g: np.ndarray
    s: np.ndarray
    limits: dict[str, float]
    state_reason: str
    pending: dict[str, dict[str, Any]]
    starting_cash: float
    entry_tags: dict[str, str] = field(default_factory=dict)  # symbol -> its open position's enter_tag


def write(state: CoreState) -> dict[str, Any]:
    """The version-4 document for ``state`` (JSON-able; NaN as null)."""
    return {
        "version": SNAPSHOT_VERSION,
        "starting_cash": state.starting_cash,
        "state_reason": state.state_reason,
        "portfolio": _named(state.g, PORTFOLIO_FIELDS),
        "symbols": [{"symbol": symbol, **_named(row, SYMBOL_FIELDS)} for symbol, row in zip(state.symbols, state.s,
                                                                                          strict=True)],
        "limits": dict(state.limits),
        "pending": {symbol: dict(order) for symbol, order in state.pending.items()},
        **({"entry_tags": dict(state.entry_tags)} if state.entry_tags else {}),
    }


def read(data: Mapping[str, Any]) -> CoreState:
    """The state in ``data``, a document of this version or an older one it migrates; ``SnapshotUnreadable``
    (one line: what was found, what to do) for anything else."""
    version = data.get("version")
    if version == SNAPSHOT_VERSION:
        return _guarded(_read_v4, data)
    if version == 3:
        return _guarded(_read_v3, data)
    if version == 2:
        return _guarded(_read_v2, data)
    if version is None:
        raise SnapshotUnreadable(f"the saved engine state has no version (a format older than version 2); "
                                 f"{WHAT_TO_DO}")
    if isinstance(version, int) and not isinstance(version, bool) and version > SNAPSHOT_VERSION:
        raise SnapshotUnreadable(f"the saved engine state is version {version}, newer than this agent reads "
                                 f"(up to {SNAPSHOT_VERSION}); {WHAT_TO_DO}")
    raise SnapshotUnreadable(f"the saved engine state has an unknown version {version!r} (this agent reads 2 to "
                             f"{SNAPSHOT_VERSION}); {WHAT_TO_DO}")


def _guarded(reader: Callable[[Mapping[str, Any]], CoreState], data: Mapping[str, Any]) -> CoreState:
    try:
        state = reader(data)
    except SnapshotUnreadable:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        what = f"field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise SnapshotUnreadable(f"the saved engine state (version {data.get('version')}) is malformed: "
                                 f"{what.splitlines()[0] if what else type(exc).__name__}; {WHAT_TO_DO}") from None
    return state


def _read_v4(data: Mapping[str, Any]) -> CoreState:
    return _read_named(data, SYMBOL_FIELDS)


def _read_v3(data: Mapping[str, Any]) -> CoreState:
    """Version 3 named the same fields but dust and rules: none of either."""
    return _read_named(data, V3_SYMBOL_FIELDS)


def _read_named(data: Mapping[str, Any], fields: Mapping[str, int]) -> CoreState:
    rows = list(data["symbols"])
    s = np.array([_positional(row, fields, K.NS) for row in rows], dtype=np.float64).reshape(len(rows), K.NS)
    return CoreState(tuple(str(row["symbol"]) for row in rows), _positional(data["portfolio"], PORTFOLIO_FIELDS, K.NG),
                     s, _limits(data), str(data.get("state_reason", "")), _pending(data), float(data["starting_cash"]),
                     _entry_tags(data))


def _read_v2(data: Mapping[str, Any]) -> CoreState:
    """Version 2 kept ``g`` and ``s`` as positional lists in the kernel's order of that time, which is the
    order ``PORTFOLIO_FIELDS`` and ``V3_SYMBOL_FIELDS`` name (no dust, no rules)."""
    symbols = tuple(str(symbol) for symbol in data["symbols"])
    g = _floats(data["g"])
    rows = [_floats(row) for row in data["s"]]
    width = len(V3_SYMBOL_FIELDS)
    if len(g) != K.NG or len(rows) != len(symbols) or any(len(row) != width for row in rows):
        raise ValueError(f"expected {K.NG} portfolio values and {len(symbols)} symbol rows of {width}, got "
                         f"{len(g)} and {[len(row) for row in rows]}")
    s = np.zeros((len(symbols), K.NS))
    for index in V3_SYMBOL_FIELDS.values():
        s[:, index] = [row[index] for row in rows]
    return CoreState(symbols, g, s, _limits(data), str(data.get("state_reason", "")), _pending(data),
                     float(data["starting_cash"]))


def _named(values: np.ndarray, fields: Mapping[str, int]) -> dict[str, float | None]:
    plain: list[float] = values.tolist()  # one conversion per row: this runs with every step
    return {name: None if math.isnan(plain[index]) else plain[index] for name, index in fields.items()}


def _positional(named: Mapping[str, Any], fields: Mapping[str, int], size: int) -> np.ndarray:
    """The named values at their indexes; 0 for an index ``fields`` does not name (a field added since)."""
    out = np.zeros(size)
    for name, index in fields.items():
        value = named[name]
        out[index] = np.nan if value is None else float(value)
    return out


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _limits(data: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(data["limits"]).items()}


def _pending(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(symbol): dict(order) for symbol, order in dict(data["pending"]).items()}


def _entry_tags(data: Mapping[str, Any]) -> dict[str, str]:
    """The open positions' enter_tags: an optional field of version 4 (absent: no tags, as before tags existed)."""
    return {str(symbol): str(tag) for symbol, tag in dict(data.get("entry_tags") or {}).items()}
