"""The decision kernel: signal filters, risk, paper fills and accounting for one closed candle.

This is the one body of decision code, called two ways: ``step`` once per candle by the live loop
(through ``TradingCore.on_candle``), and ``run_series`` over a whole series by the backtest, which
calls the very same ``step`` for every candle. Nothing here reads a clock or does I/O: time is the
candle's timestamp.

The source is plain Python over float64 arrays. When numba is installed it is compiled (machine
code, IEEE arithmetic, no fast-math), which is what makes backtests fast: ``run_series`` ahead of time
when ``python -m engine.kernel_aot`` has built it for this very source (no numba import at run time),
everything else by numba at its first call (from numba's on-disk cache after the first time); with
``TRADING_AGENT_JIT=0`` (the worker's default: numba's LLVM costs about 115 MB of memory) CPython
runs the same source. The test suite runs both and proves they give identical results.

State lives in three float64 arrays so that numba can compile it and so that it serialises
trivially: ``g`` (portfolio-wide scalars), ``s`` (one row per symbol) and ``p`` (parameters).
Timestamps are integer milliseconds stored in float64, which is exact below 2**53.

Order of work on a closed candle of one symbol (``step``):
  1. roll the UTC day (day-start equity; REDUCING ends at a new day);
  2. fill that symbol's pending market order at this candle's open (fee and slippage in bps);
  3. check stop-loss, trailing stop and take-profit within the candle (the worse one first when
     both sides are touched; a gap through a level fills at the open);
  4. mark to the close and update the risk state (daily loss -> REDUCING, drawdown -> HALTED);
  5. turn the model's wish into at most one market order for the next candle's open, after the
     signal filters (confidence, cooldown) and the entry checks (pause, stale feed, risk state).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np


def _numba_wanted() -> bool:
    """Compile unless ``TRADING_AGENT_JIT=0`` or numba is missing (found without importing it: ~0.2 s)."""
    return os.environ.get("TRADING_AGENT_JIT", "1") != "0" and importlib.util.find_spec("numba") is not None


JITTED = _numba_wanted()
_SOURCES: dict[str, Callable[..., Any]] = {}


class _Deferred:
    """A kernel function before numba has compiled it: its first call compiles the whole kernel (from
    numba's on-disk cache after the first time), so importing the kernel never imports numba."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.py_func = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any) -> Any:
        return compiled(self.__name__)(*args)


_COMPILED: dict[str, Any] = {}


def compiled(name: str) -> Any:
    """numba's dispatcher of the kernel function ``name``, the whole kernel compiled at the first ask."""
    if not _COMPILED:
        from numba import njit

        # all bound before any compiles, so callees resolve to dispatchers; inlined into their callers in
        # numba's IR (the same operations in the same order: results to the last bit, 1.3-1.7x faster)
        for fn_name, fn in _SOURCES.items():
            _COMPILED[fn_name] = globals()[fn_name] = njit(cache=True, inline="always")(fn)
    return _COMPILED[name]


def jit(fn: Callable[..., Any]) -> Any:
    """Mark a kernel function for numba (compiled at first use); under CPython, the function itself."""
    if not JITTED:
        return fn
    _SOURCES[fn.__name__] = fn
    return _Deferred(fn)

# ---- g: portfolio-wide scalars
CASH, FEES, REALIZED, PEAK, DAY, DAY_START, STATE, PAUSED = range(8)
NG = 8
# ---- s: one row per symbol
(QTY, AVG, ENTRY_TS, ENTRY_FEE, STOP, TARGET, TRAIL, HIGH_WATER, MARK, COOL_UNTIL, STALE, LAST_TS,
 P_SIDE, P_KIND, P_AMOUNT, P_TS, P_REASON) = range(17)
NS = 17
# ---- p: parameters
(POS_FRAC, MAX_POS, MAX_EXPOSURE, STOP_PCT, TP_PCT, TRAIL_PCT, MAX_DAILY, MAX_DD, FEE_RATE, SLIP_RATE,
 MIN_CONF, COOLDOWN_MS) = range(12)
NP = 12

# risk states
ACTIVE, REDUCING, HALTED = 0, 1, 2
# actions
EXIT, HOLD, ENTER = -1, 0, 1
# pending order side / sizing kind
BUY, SELL = 1.0, -1.0
BY_FRACTION, BY_NOTIONAL, BY_QUANTITY = 0.0, 1.0, 2.0
# fill reasons
R_SIGNAL, R_MANUAL, R_STOP, R_TARGET, R_TRAIL = 0, 1, 2, 3, 4
# signal outcomes
(O_HOLD, O_LOW_CONF, O_PENDING, O_NO_POSITION, O_EXIT_ORDER, O_IN_POSITION, O_PAUSED, O_RISK_STATE, O_STALE,
 O_COOLDOWN, O_ENTRY_ORDER) = range(11)
# state-change causes
C_NEW_DAY, C_DRAWDOWN, C_DAILY_LOSS = 1, 2, 3

# ---- step output: head
(H_NFILLS, H_PENDING_DONE, H_OUTCOME, H_EQUITY, H_NCHANGES, H_C1_OLD, H_C1_NEW, H_C1_CAUSE, H_C1_EQ, H_C1_REF,
 H_C2_OLD, H_C2_NEW, H_C2_CAUSE, H_C2_EQ, H_C2_REF) = range(15)
NH = 15
# ---- step output: one row per fill (at most two: the pending order, then a protective exit)
(F_SIDE, F_QTY, F_PRICE, F_FEE, F_REASON, F_OPENED, F_CLOSED, F_T_ENTRY_TS, F_T_ENTRY_PRICE, F_T_FEE, F_T_PNL,
 F_LEVEL, F_FROM_PENDING, F_STOP, F_TARGET) = range(15)
NF = 15
# ---- trade records written by run_series
(T_ENTRY_TS, T_EXIT_TS, T_ENTRY_PRICE, T_EXIT_PRICE, T_QTY, T_FEE, T_PNL, T_REASON) = range(8)
NT = 8

DAY_MS = 86_400_000.0


def new_state(starting_cash: float, n_symbols: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.zeros(NG)
    g[CASH] = starting_cash
    g[PEAK] = starting_cash
    g[DAY] = -1.0
    g[DAY_START] = starting_cash
    return g, new_symbol_rows(n_symbols)


def new_symbol_rows(n: int) -> np.ndarray:
    s = np.zeros((n, NS))
    s[:, STOP] = np.nan
    s[:, TARGET] = np.nan
    s[:, LAST_TS] = np.nan
    s[:, COOL_UNTIL] = np.nan
    return s


@jit
def equity(g: np.ndarray, s: np.ndarray) -> float:
    total: float = g[CASH]
    for i in range(s.shape[0]):
        if s[i, QTY] > 0.0:
            total += s[i, QTY] * s[i, MARK]
    return total


@jit
def exposure(s: np.ndarray) -> float:
    total: float = 0.0
    for i in range(s.shape[0]):
        if s[i, QTY] > 0.0:
            total += s[i, QTY] * s[i, MARK]
    return total


@jit
def buy_budget(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, wanted: float) -> float:
    """The quote amount (fee included) a buy may spend: capped by position, exposure and cash."""
    eq = equity(g, s)
    pos_value = s[i, QTY] * s[i, MARK] if s[i, QTY] > 0.0 else 0.0
    room: float = min(wanted, p[MAX_POS] * eq - pos_value, p[MAX_EXPOSURE] * eq - exposure(s), g[CASH])
    return max(0.0, room)


@jit
def _set_state(g: np.ndarray, new: int, cause: int, eq: float, ref: float, head: np.ndarray) -> None:
    old = int(g[STATE])
    if old == new:
        return
    k = int(head[H_NCHANGES])
    base = H_C1_OLD if k == 0 else H_C2_OLD
    head[base] = old
    head[base + 1] = new
    head[base + 2] = cause
    head[base + 3] = eq
    head[base + 4] = ref
    head[H_NCHANGES] = k + 1
    g[STATE] = new


@jit
def _book(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, side: float, qty: float, price: float, ts: float,
          reason: int, level: float, from_pending: float, head: np.ndarray, fills: np.ndarray) -> None:
    fee = qty * price * p[FEE_RATE]
    k = int(head[H_NFILLS])
    row = fills[k]
    row[:] = 0.0
    row[F_SIDE] = side
    row[F_QTY] = qty
    row[F_PRICE] = price
    row[F_FEE] = fee
    row[F_REASON] = reason
    row[F_LEVEL] = level
    row[F_FROM_PENDING] = from_pending
    head[H_NFILLS] = k + 1
    g[FEES] += fee
    if side == BUY:
        g[CASH] -= qty * price + fee
        if s[i, QTY] <= 0.0:
            s[i, QTY] = qty
            s[i, AVG] = price
            s[i, ENTRY_TS] = ts
            s[i, ENTRY_FEE] = fee
            s[i, HIGH_WATER] = price
            s[i, STOP] = price * (1.0 - p[STOP_PCT]) if p[STOP_PCT] > 0.0 else np.nan
            s[i, TARGET] = price * (1.0 + p[TP_PCT]) if p[TP_PCT] > 0.0 else np.nan
            s[i, TRAIL] = p[TRAIL_PCT]
            row[F_OPENED] = 1.0
            row[F_STOP] = s[i, STOP]
            row[F_TARGET] = s[i, TARGET]
        else:
            total = s[i, QTY] + qty
            s[i, AVG] = (s[i, AVG] * s[i, QTY] + price * qty) / total
            s[i, QTY] = total
            s[i, ENTRY_FEE] += fee
        return
    g[CASH] += qty * price - fee
    held = s[i, QTY]
    entry_fee = s[i, ENTRY_FEE] * (qty / held)
    pnl = (price - s[i, AVG]) * qty - entry_fee - fee
    g[REALIZED] += pnl
    row[F_T_ENTRY_TS] = s[i, ENTRY_TS]
    row[F_T_ENTRY_PRICE] = s[i, AVG]
    row[F_T_FEE] = entry_fee + fee
    row[F_T_PNL] = pnl
    remaining = held - qty
    if remaining <= held * 1e-12:
        s[i, QTY] = 0.0
        s[i, AVG] = 0.0
        s[i, ENTRY_FEE] = 0.0
        s[i, STOP] = np.nan
        s[i, TARGET] = np.nan
        s[i, TRAIL] = 0.0
        s[i, HIGH_WATER] = 0.0
        row[F_CLOSED] = 1.0
        if p[COOLDOWN_MS] > 0.0:
            s[i, COOL_UNTIL] = ts + p[COOLDOWN_MS]
    else:
        s[i, QTY] = remaining
        s[i, ENTRY_FEE] -= entry_fee


@jit
def _fill_pending(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, o: float, ts: float, head: np.ndarray,
                  fills: np.ndarray) -> None:
    side = s[i, P_SIDE]
    kind = s[i, P_KIND]
    amount = s[i, P_AMOUNT]
    reason = int(s[i, P_REASON])
    s[i, P_SIDE] = 0.0
    head[H_PENDING_DONE] = 1.0
    s[i, MARK] = o
    if side == BUY:
        price = o * (1.0 + p[SLIP_RATE])
        if kind == BY_FRACTION:
            wanted = amount * equity(g, s)
        elif kind == BY_NOTIONAL:
            wanted = amount
        else:
            wanted = amount * price * (1.0 + p[FEE_RATE])
        spend = buy_budget(g, s, p, i, wanted)
        qty = spend / (price * (1.0 + p[FEE_RATE]))
        while qty > 0.0 and qty * price + qty * price * p[FEE_RATE] > g[CASH]:
            qty *= 1.0 - 1e-12  # float rounding must never take cash below zero
        if qty > 0.0:
            _book(g, s, p, i, BUY, qty, price, ts, reason, np.nan, 1.0, head, fills)
        return
    held = s[i, QTY]
    if held <= 0.0:
        return
    price = o * (1.0 - p[SLIP_RATE])
    if kind == BY_NOTIONAL:
        qty = min(held, amount / price)
    elif kind == BY_QUANTITY:
        qty = min(held, amount)
    else:
        qty = held
    if qty > 0.0:
        _book(g, s, p, i, SELL, qty, price, ts, reason, np.nan, 1.0, head, fills)


@jit
def _protective(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, o: float, h: float, low: float,
                head: np.ndarray, fills: np.ndarray) -> None:
    if s[i, QTY] <= 0.0:
        return
    stop = s[i, STOP]
    trail = s[i, HIGH_WATER] * (1.0 - s[i, TRAIL]) if s[i, TRAIL] > 0.0 else np.nan
    level = np.nan
    reason = R_STOP
    if not math.isnan(stop):
        level = stop
    if not math.isnan(trail) and (math.isnan(level) or trail > level):
        level = trail
        reason = R_TRAIL
    if not math.isnan(level) and low <= level:
        price = min(o, level) * (1.0 - p[SLIP_RATE])
        _book(g, s, p, i, SELL, s[i, QTY], price, ts, reason, level, 0.0, head, fills)
        return
    target = s[i, TARGET]
    if not math.isnan(target) and h >= target:
        price = max(o, target) * (1.0 - p[SLIP_RATE])
        _book(g, s, p, i, SELL, s[i, QTY], price, ts, R_TARGET, target, 0.0, head, fills)
        return
    if h > s[i, HIGH_WATER]:
        s[i, HIGH_WATER] = h


@jit
def _decide(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, action: int, confidence: float) -> int:
    if action == HOLD:
        return O_HOLD
    if confidence < p[MIN_CONF]:
        return O_LOW_CONF
    if s[i, P_SIDE] != 0.0:
        return O_PENDING
    holding = s[i, QTY] > 0.0
    if action == EXIT:
        if not holding:
            return O_NO_POSITION
        s[i, P_SIDE] = SELL
        s[i, P_KIND] = BY_QUANTITY
        s[i, P_AMOUNT] = s[i, QTY]
        s[i, P_TS] = ts
        s[i, P_REASON] = R_SIGNAL
        return O_EXIT_ORDER
    if holding:
        return O_IN_POSITION
    if g[PAUSED] != 0.0:
        return O_PAUSED
    if g[STATE] != ACTIVE:
        return O_RISK_STATE
    if s[i, STALE] != 0.0:
        return O_STALE
    if not math.isnan(s[i, COOL_UNTIL]) and ts < s[i, COOL_UNTIL]:
        return O_COOLDOWN
    s[i, P_SIDE] = BUY
    s[i, P_KIND] = BY_FRACTION
    s[i, P_AMOUNT] = p[POS_FRAC]
    s[i, P_TS] = ts
    s[i, P_REASON] = R_SIGNAL
    return O_ENTRY_ORDER


@jit
def step(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, o: float, h: float, low: float, c: float,
         action: int, confidence: float, head: np.ndarray, fills: np.ndarray) -> None:
    """Apply one closed candle of symbol row ``i``; results go to ``head`` and ``fills``.

    Only the counters of ``head`` are reset: the rows they count are written before they are read."""
    head[H_NFILLS] = 0.0
    head[H_PENDING_DONE] = 0.0
    head[H_NCHANGES] = 0.0
    day = math.floor(ts / DAY_MS)
    if day != g[DAY]:
        if g[DAY] >= 0.0:
            g[DAY_START] = equity(g, s)
        g[DAY] = day
        if g[STATE] == REDUCING:
            _set_state(g, ACTIVE, C_NEW_DAY, 0.0, 0.0, head)
    if s[i, P_SIDE] != 0.0:
        _fill_pending(g, s, p, i, o, ts, head, fills)
    _protective(g, s, p, i, ts, o, h, low, head, fills)
    s[i, MARK] = c
    eq = equity(g, s)
    if eq > g[PEAK]:
        g[PEAK] = eq
    if g[STATE] != HALTED and p[MAX_DD] > 0.0 and eq <= g[PEAK] * (1.0 - p[MAX_DD]):
        _set_state(g, HALTED, C_DRAWDOWN, eq, g[PEAK], head)
    elif g[STATE] == ACTIVE and p[MAX_DAILY] > 0.0 and eq <= g[DAY_START] * (1.0 - p[MAX_DAILY]):
        _set_state(g, REDUCING, C_DAILY_LOSS, eq, g[DAY_START], head)
    head[H_EQUITY] = eq
    head[H_OUTCOME] = _decide(g, s, p, i, ts, action, confidence)
    s[i, LAST_TS] = ts


@jit
def _run_series(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: np.ndarray, o: np.ndarray,
                h: np.ndarray, low: np.ndarray, c: np.ndarray, action: np.ndarray, confidence: np.ndarray,
                equity_out: np.ndarray, held_out: np.ndarray, trades: np.ndarray) -> int:
    """``step`` over every candle of one symbol (the backtest); returns the number of trades written."""
    head = np.zeros(NH)
    fills = np.zeros((2, NF))
    n_trades = 0
    for k in range(ts.shape[0]):
        step(g, s, p, i, float(ts[k]), o[k], h[k], low[k], c[k], int(action[k]), confidence[k], head, fills)
        for f in range(int(head[H_NFILLS])):
            if fills[f, F_SIDE] == SELL:
                if n_trades == trades.shape[0]:
                    return -1  # caller grows the buffer and reruns
                t = trades[n_trades]
                t[T_ENTRY_TS] = fills[f, F_T_ENTRY_TS]
                t[T_EXIT_TS] = ts[k]
                t[T_ENTRY_PRICE] = fills[f, F_T_ENTRY_PRICE]
                t[T_EXIT_PRICE] = fills[f, F_PRICE]
                t[T_QTY] = fills[f, F_QTY]
                t[T_FEE] = fills[f, F_T_FEE]
                t[T_PNL] = fills[f, F_T_PNL]
                t[T_REASON] = fills[f, F_REASON]
                n_trades += 1
        equity_out[k] = head[H_EQUITY]
        held_out[k] = s[i, QTY] > 0.0
    return n_trades


# ---- ahead-of-time compiled run_series (``python -m engine.kernel_aot``, run by ``make install``)
# The same source compiled by numba's AOT compiler into an extension module named after the hash of this
# file, so a module built from another version of the kernel is never found. Loading it takes
# milliseconds and no numba (against ~0.7 s and ~115 MB for importing numba and loading its cache),
# which is most of a backtest's start-up. Arguments of other types or layouts go to numba as before.
AOT_SIGNATURE = ("i8(f8[::1], f8[:, ::1], f8[::1], i8, i8[::1], f8[::1], f8[::1], f8[::1], f8[::1], i8[::1], "
                 "f8[::1], f8[::1], b1[::1], f8[:, ::1])")
_AOT_DTYPES = (np.float64, np.float64, np.float64, None, np.int64, np.float64, np.float64, np.float64, np.float64,
               np.int64, np.float64, np.float64, np.bool_, np.float64)


def aot_module_name() -> str:
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return f"_kernel_aot_{digest}"


def _load_aot() -> Callable[..., int] | None:
    name = f"{__package__}.{aot_module_name()}"
    if not JITTED or importlib.util.find_spec(name) is None:
        return None
    fn: Callable[..., int] = importlib.import_module(name).run_series
    return fn


_AOT_RUN_SERIES = _load_aot()
COMPILED_AHEAD = _AOT_RUN_SERIES is not None


def series_runner(*args: Any) -> Callable[..., int]:
    """``_run_series`` for these arguments: compiled ahead of time when built and they fit its signature, else
    numba's JIT (or CPython under ``TRADING_AGENT_JIT=0``)."""
    if _AOT_RUN_SERIES is not None and all(
            want is None or (isinstance(a, np.ndarray) and a.dtype == want and a.flags.c_contiguous)
            for a, want in zip(args, _AOT_DTYPES, strict=True)):
        return _AOT_RUN_SERIES
    runner: Callable[..., int] = _run_series
    return runner


def run_series(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: np.ndarray, o: np.ndarray,
               h: np.ndarray, low: np.ndarray, c: np.ndarray, action: np.ndarray, confidence: np.ndarray,
               equity_out: np.ndarray, held_out: np.ndarray, trades: np.ndarray) -> int:
    """``step`` over every candle of one symbol (the backtest); returns the number of trades written, or -1
    when ``trades`` is full (the caller grows it and runs again)."""
    args = (g, s, p, i, ts, o, h, low, c, action, confidence, equity_out, held_out, trades)
    return int(series_runner(*args)(*args))
