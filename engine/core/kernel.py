"""The decision kernel: signal filters, risk, paper fills and accounting for one closed candle.

This is the one body of decision code, called two ways: ``step`` once per candle by the live loop
(through ``TradingCore.on_candle``), and ``run_series`` over a whole series by the backtest, which
calls the very same ``step`` for every candle. Nothing here reads a clock or does I/O: time is the
candle's timestamp.

The source is plain Python over float64 arrays. When numba is installed it is compiled (machine
code, IEEE arithmetic, no fast-math), which is what makes backtests fast: ``run_series`` ahead of time
(``python -m engine.kernel_aot``), the rest at its first call; with ``TRADING_AGENT_JIT=0`` (the worker's
default: numba's LLVM costs about 115 MB of memory) CPython runs the same source. The test suite proves
both give identical results. How it is compiled: ``engine.core.kernel_jit``; every compiled function and
constant stays in this one file (numba's cache is keyed by it), but live trading's, uncached (``kernel_live``).

State lives in three float64 arrays so that numba can compile it and so that it serialises
trivially: ``g`` (portfolio-wide scalars), ``s`` (one row per symbol) and ``p`` (parameters).
Timestamps are integer milliseconds stored in float64, which is exact below 2**53.

A symbol's exchange rules (``MarketRules``) sit in its row of ``s``, all zero for none (every number as before
rules). Fills go to the step and the tick; one below a minimum does not happen (``H_DROP``), an order below
one at the mark is not placed (``O_BELOW_MIN``), and a sell leaving less closes the position: the rest is
dust (``DUST``: in equity at the mark, part of the next buy).

Order of work on a closed candle of one symbol (``step``):
  1. roll the UTC day (day-start equity; REDUCING ends at a new day);
  2. fill that symbol's pending market order at this candle's open (fee and slippage in bps);
  3. check stop-loss, trailing stop and take-profit within the candle (the worse one first when
     both sides are touched; a gap through a level fills at the open);
  4. mark to the close and update the risk state (daily loss -> REDUCING, drawdown -> HALTED);
  5. turn the model's wish into at most one market order for the next candle's open, after the
     signal filters (confidence, cooldown) and the entry checks (pause, stale feed, risk state).
With external fills (``p[EXTERNAL_FILLS]``, live) ``step`` skips 2 and 3: see ``engine.core.kernel_live``.
"""

from __future__ import annotations

import math

import numpy as np

from engine.core.kernel_jit import _SOURCES as _SOURCES
from engine.core.kernel_jit import AOT_SIGNATURE as AOT_SIGNATURE
from engine.core.kernel_jit import COMPILED_AHEAD as COMPILED_AHEAD
from engine.core.kernel_jit import JITTED as JITTED
from engine.core.kernel_jit import aot_module_name as aot_module_name
from engine.core.kernel_jit import borrowed, jit
from engine.core.kernel_jit import compiled as compiled
from engine.core.kernel_jit import series_runner as series_runner

# ---- g: portfolio-wide scalars
CASH, FEES, REALIZED, PEAK, DAY, DAY_START, STATE, PAUSED = range(8)
NG = 8
# ---- s: one row per symbol (the market's rules last: set from ``MarketRules``, all zero for none)
(QTY, AVG, ENTRY_TS, ENTRY_FEE, STOP, TARGET, TRAIL, HIGH_WATER, MARK, COOL_UNTIL, STALE, LAST_TS,
 P_SIDE, P_KIND, P_AMOUNT, P_TS, P_REASON, DUST, DUST_AVG, DUST_FEE, AMOUNT_STEP, PRICE_TICK, MIN_AMOUNT,
 MIN_NOTIONAL) = range(24)
NS = 24
# ---- p: parameters
(POS_FRAC, MAX_POS, MAX_EXPOSURE, STOP_PCT, TP_PCT, TRAIL_PCT, MAX_DAILY, MAX_DD, FEE_RATE, SLIP_RATE,
 MIN_CONF, COOLDOWN_MS, EXTERNAL_FILLS) = range(13)
NP = 13

# risk states
ACTIVE, REDUCING, HALTED = 0, 1, 2
# actions
EXIT, HOLD, ENTER = -1, 0, 1
# pending order side / sizing kind
BUY, SELL = 1.0, -1.0
BY_FRACTION, BY_NOTIONAL, BY_QUANTITY = 0.0, 1.0, 2.0  # (and ``kernel_live.SENT``, ``OPENING``)
# fill reasons
R_SIGNAL, R_MANUAL, R_STOP, R_TARGET, R_TRAIL = 0, 1, 2, 3, 4
# signal outcomes
(O_HOLD, O_LOW_CONF, O_PENDING, O_NO_POSITION, O_EXIT_ORDER, O_IN_POSITION, O_PAUSED, O_RISK_STATE, O_STALE,
 O_COOLDOWN, O_ENTRY_ORDER, O_BELOW_MIN, O_PRECISION) = range(13)
# which exchange rule an order breaks (``H_DROP`` of a dropped fill; the words of ``O_BELOW_MIN``)
RULE_OK, RULE_MIN_AMOUNT, RULE_MIN_NOTIONAL = 0, 1, 2
# an order's size: the strategy's own (an entry of ``POS_FRAC`` of equity, an exit of the whole position)
OWN_SIZE = -1.0
# state-change causes
C_NEW_DAY, C_DRAWDOWN, C_DAILY_LOSS = 1, 2, 3

# ---- step output: head (H_DROP: the rule that stopped the pending order's fill, with its quantity and price)
(H_NFILLS, H_PENDING_DONE, H_OUTCOME, H_EQUITY, H_NCHANGES, H_C1_OLD, H_C1_NEW, H_C1_CAUSE, H_C1_EQ, H_C1_REF,
 H_C2_OLD, H_C2_NEW, H_C2_CAUSE, H_C2_EQ, H_C2_REF, H_DROP, H_DROP_QTY, H_DROP_PRICE) = range(18)
NH = 18
# ---- step output: one row per fill (at most two: the pending order, then a protective exit)
(F_SIDE, F_QTY, F_PRICE, F_FEE, F_REASON, F_OPENED, F_CLOSED, F_T_ENTRY_TS, F_T_ENTRY_PRICE, F_T_FEE, F_T_PNL,
 F_LEVEL, F_FROM_PENDING, F_STOP, F_TARGET) = range(15)
NF = 15
# ---- trade records written by run_series
(T_ENTRY_TS, T_EXIT_TS, T_ENTRY_PRICE, T_EXIT_PRICE, T_QTY, T_FEE, T_PNL, T_REASON) = range(8)
NT = 8

DAY_MS = 86_400_000.0


@jit
def equity(g: np.ndarray, s: np.ndarray) -> float:
    """Cash, plus every position and every symbol's dust at its mark."""
    total: float = g[CASH]
    for i in range(s.shape[0]):
        if s[i, QTY] > 0.0:
            total += s[i, QTY] * s[i, MARK]
        elif s[i, DUST] > 0.0:  # a symbol holds dust only while it has no position
            total += s[i, DUST] * s[i, MARK]
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


# ---- the exchange's rules (a step or tick of 0: none)

@jit
def _times(n: float, step: float) -> float:
    """``n`` steps: ``n / k`` for a step of ``1 / k`` (the float nearest the decimal), else ``n * step``."""
    inv = np.floor(1.0 / step + 0.5)
    return float(n / inv) if inv >= 1.0 and abs(inv * step - 1.0) < 1e-9 else float(n * step)


@jit
def to_step(x: float, step: float) -> float:
    """``x`` floored to whole steps (1e-12 of slack: whole steps but for the last bits count as such)."""
    out: float = x if step <= 0.0 else _times(np.floor(x / step * (1.0 + 1e-12)), step)
    return out


@jit
def _on_grid(x: float, step: float) -> float:
    """A sum or difference of whole steps as the whole steps it is, without the float arithmetic's last bits."""
    if step > 0.0 and abs(_times(np.floor(x / step + 0.5), step) - x) <= x * 1e-12:
        return float(_times(np.floor(x / step + 0.5), step))
    return x


@jit
def fill_size(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, side: float, kind: float, amount: float,
              o: float) -> tuple[float, float, float]:
    """(quantity before the step, quantity, price) of an order (``side``, ``kind``, ``amount``) at an open and mark
    ``o``: within risk limits and cash, or what is held; floored to the step, the price ticked against the trader."""
    step, tick = s[i, AMOUNT_STEP], s[i, PRICE_TICK]
    if side == BUY:
        price = o * (1.0 + p[SLIP_RATE])
        if tick > 0.0:  # up to the tick
            price = _times(np.ceil(price / tick * (1.0 - 1e-12)), tick)
        if kind == BY_FRACTION:
            wanted = amount * equity(g, s)
        elif kind == BY_NOTIONAL:
            wanted = amount
        else:
            wanted = amount * price * (1.0 + p[FEE_RATE])
        spend = buy_budget(g, s, p, i, wanted)
        raw = spend / (price * (1.0 + p[FEE_RATE]))
        while raw > 0.0 and raw * price + raw * price * p[FEE_RATE] > g[CASH]:
            raw *= 1.0 - 1e-12  # float rounding must never take cash below zero
        if step <= 0.0:
            return raw, raw, price
        n = np.floor(raw / step * (1.0 + 1e-12))
        while n > 0.0 and _times(n, step) * price * (1.0 + p[FEE_RATE]) > g[CASH]:
            n -= 1.0
        return raw, _times(n, step), price
    price = to_step(o * (1.0 - p[SLIP_RATE]), tick)
    held = s[i, QTY]
    if kind == BY_NOTIONAL:
        raw = min(held, amount / price) if price > 0.0 else 0.0  # (a price below one tick rounds to none)
    elif kind >= BY_QUANTITY:  # (a sent order's rest is a quantity too)
        raw = min(held, amount)
    else:
        raw = held
    return raw, min(held, to_step(raw, step)), price


@jit
def rule_break(s: np.ndarray, i: int, raw: float, qty: float, price: float) -> int:
    """The minimum a fill of ``qty`` (``raw`` unstepped; 0: no fill at all) at ``price`` breaks, or RULE_OK."""
    if raw <= 0.0:
        return RULE_OK
    if qty <= 0.0 or qty < s[i, MIN_AMOUNT]:
        return RULE_MIN_AMOUNT
    return RULE_MIN_NOTIONAL if qty * price < s[i, MIN_NOTIONAL] else RULE_OK


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
def _set_levels(s: np.ndarray, p: np.ndarray, i: int, entry: float) -> None:
    """The stop, target and trailing stop of row ``i``'s position entered at ``entry``."""
    s[i, STOP] = entry * (1.0 - p[STOP_PCT]) if p[STOP_PCT] > 0.0 else np.nan
    s[i, TARGET] = entry * (1.0 + p[TP_PCT]) if p[TP_PCT] > 0.0 else np.nan
    s[i, TRAIL] = p[TRAIL_PCT]


@jit
def _book(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, side: float, qty: float, price: float, fee: float,
          ts: float, reason: int, level: float, from_pending: float, final: bool, head: np.ndarray,
          fills: np.ndarray) -> None:
    """Book one fill, paper's or the exchange's; ``final``: none of the order is left to fill (else no dust yet)."""
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
            held_dust = s[i, DUST]
            if held_dust > 0.0:  # the symbol's dust becomes part of the new position, at its own cost
                s[i, QTY] = _on_grid(held_dust + qty, s[i, AMOUNT_STEP])
                s[i, AVG] = (s[i, DUST_AVG] * held_dust + price * qty) / (held_dust + qty)
                s[i, ENTRY_FEE] = s[i, DUST_FEE] + fee
                s[i, DUST:DUST_FEE + 1] = 0.0
            else:
                s[i, QTY] = qty
                s[i, AVG] = price
                s[i, ENTRY_FEE] = fee
            s[i, ENTRY_TS] = ts
            s[i, HIGH_WATER] = price
            _set_levels(s, p, i, price)
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
    remaining = _on_grid(held - qty, s[i, AMOUNT_STEP])
    gone = remaining <= held * 1e-12
    # what remains below the exchange's minimums cannot be sold: dust, and the position is closed
    to_dust = not gone and final and (remaining < s[i, MIN_AMOUNT] or remaining < s[i, AMOUNT_STEP]
                                      or remaining * price < s[i, MIN_NOTIONAL])
    if gone or to_dust:
        if to_dust:
            s[i, DUST] = remaining
            s[i, DUST_AVG] = s[i, AVG]
            s[i, DUST_FEE] = s[i, ENTRY_FEE] - entry_fee
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
    """Fill the pending order at the open ``o``; not one that breaks a minimum (``H_DROP`` says which)."""
    side = s[i, P_SIDE]
    reason = int(s[i, P_REASON])
    s[i, P_SIDE] = 0.0
    head[H_PENDING_DONE] = 1.0
    s[i, MARK] = o
    if side != BUY and s[i, QTY] <= 0.0:
        return
    raw, qty, price = fill_size(g, s, p, i, side, s[i, P_KIND], s[i, P_AMOUNT], o)
    rule = rule_break(s, i, raw, qty, price)
    if rule != RULE_OK:
        head[H_DROP] = rule
        head[H_DROP_QTY] = qty if qty > 0.0 else raw
        head[H_DROP_PRICE] = price
    elif qty > 0.0:
        _book(g, s, p, i, side, qty, price, qty * price * p[FEE_RATE], ts, reason, np.nan, 1.0, True, head, fills)


@jit
def _protective_sell(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, price: float, ts: float, reason: int,
                     level: float, head: np.ndarray, fills: np.ndarray) -> None:
    """Sell all the amount step allows of the position; nothing below a minimum (it stays, as on the exchange)."""
    price = to_step(price, s[i, PRICE_TICK])
    held = s[i, QTY]
    qty = min(held, to_step(held, s[i, AMOUNT_STEP]))
    if rule_break(s, i, held, qty, price) == RULE_OK:
        _book(g, s, p, i, SELL, qty, price, qty * price * p[FEE_RATE], ts, reason, level, 0.0, True, head, fills)


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
        _protective_sell(g, s, p, i, min(o, level) * (1.0 - p[SLIP_RATE]), ts, reason, level, head, fills)
        return
    target = s[i, TARGET]
    if not math.isnan(target) and h >= target:
        _protective_sell(g, s, p, i, max(o, target) * (1.0 - p[SLIP_RATE]), ts, R_TARGET, target, head, fills)
        return
    if h > s[i, HIGH_WATER]:
        s[i, HIGH_WATER] = h


@jit
def _within_rules(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, outcome: int) -> int:
    """``outcome`` if the order just queued in row ``i`` fills within the exchange's rules at the mark; else it is
    withdrawn: ``O_PRECISION`` (a quantity with more decimals than the step: an operator's), ``O_BELOW_MIN``."""
    if s[i, MARK] <= 0.0 or not (s[i, AMOUNT_STEP] > 0.0 or s[i, MIN_AMOUNT] > 0.0 or s[i, MIN_NOTIONAL] > 0.0):
        return outcome  # no rules (the tick moves prices only), or no price yet to size the order at
    side, kind, amount = s[i, P_SIDE], s[i, P_KIND], s[i, P_AMOUNT]
    s[i, P_SIDE] = 0.0
    if (kind == BY_QUANTITY and not (side == SELL and amount >= s[i, QTY])
            and abs(to_step(amount, s[i, AMOUNT_STEP]) - amount) > amount * 1e-9):
        return O_PRECISION
    raw, qty, price = fill_size(g, s, p, i, side, kind, amount, s[i, MARK])
    if rule_break(s, i, raw, qty, price) != RULE_OK:
        return O_BELOW_MIN
    s[i, P_SIDE] = side
    return outcome


@jit
def _decide(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, action: int, confidence: float,
            kind: float, amount: float) -> int:
    """The signal's outcome, queueing its order in row ``i``: sized by (``kind``, ``amount``), an operator's (free to
    add to a position), or ``OWN_SIZE``, the strategy's own (an entry of ``POS_FRAC`` of equity, an exit of all)."""
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
        s[i, P_KIND] = BY_QUANTITY if kind == OWN_SIZE else kind
        s[i, P_AMOUNT] = s[i, QTY] if kind == OWN_SIZE else amount
        s[i, P_TS] = ts
        s[i, P_REASON] = R_SIGNAL
        exit_outcome: int = _within_rules(g, s, p, i, O_EXIT_ORDER)
        return exit_outcome
    if holding and kind == OWN_SIZE:
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
    s[i, P_KIND] = BY_FRACTION if kind == OWN_SIZE else kind
    s[i, P_AMOUNT] = p[POS_FRAC] if kind == OWN_SIZE else amount
    s[i, P_TS] = ts
    s[i, P_REASON] = R_SIGNAL
    entry_outcome: int = _within_rules(g, s, p, i, O_ENTRY_ORDER)
    return entry_outcome


@jit
def _roll_day(g: np.ndarray, s: np.ndarray, ts: float, head: np.ndarray) -> None:
    """At the first event of a new UTC day: the day-start equity (at the marks before it), and REDUCING ends."""
    day = math.floor(ts / DAY_MS)
    if day != g[DAY]:
        if g[DAY] >= 0.0:
            g[DAY_START] = equity(g, s)
        g[DAY] = day
        if g[STATE] == REDUCING:
            _set_state(g, ACTIVE, C_NEW_DAY, 0.0, 0.0, head)


@jit
def step(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: float, o: float, h: float, low: float, c: float,
         action: int, confidence: float, head: np.ndarray, fills: np.ndarray) -> None:
    """Apply one closed candle of symbol row ``i``; results go to ``head`` and ``fills``."""
    head[H_NFILLS] = 0.0  # only the counters and flags: the rows they count are written before they are read
    head[H_PENDING_DONE] = 0.0
    head[H_NCHANGES] = 0.0
    head[H_DROP] = RULE_OK
    if math.floor(ts / DAY_MS) != g[DAY]:  # (only the check inline: a call on every candle cost run_series 25 %)
        _roll_day(g, s, ts, head)
    if p[EXTERNAL_FILLS] == 0.0:  # paper: the kernel fills; else the exchange does (``book_fill``, ``exit_order``)
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
    head[H_OUTCOME] = _decide(g, s, p, i, ts, action, confidence, OWN_SIZE, 0.0)
    s[i, LAST_TS] = ts


@jit
def _run_series(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: np.ndarray, o: np.ndarray,
                h: np.ndarray, low: np.ndarray, c: np.ndarray, action: np.ndarray, confidence: np.ndarray,
                equity_out: np.ndarray, held_out: np.ndarray, trades: np.ndarray, head: np.ndarray,
                fills: np.ndarray) -> int:
    """``step`` over every candle of one symbol (the backtest); returns the number of trades written. ``head`` and
    ``fills``: ``step``'s output, zeros of (NH,) and (2, NF) (``run_series`` makes them)."""
    # the arrays ``step`` is handed, without numba's reference counts (see ``borrowed``): the caller holds them all
    g, s, p, head, fills = borrowed(g), borrowed(s), borrowed(p), borrowed(head), borrowed(fills)
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


def run_series(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, ts: np.ndarray, o: np.ndarray,
               h: np.ndarray, low: np.ndarray, c: np.ndarray, action: np.ndarray, confidence: np.ndarray,
               equity_out: np.ndarray, held_out: np.ndarray, trades: np.ndarray) -> int:
    """``step`` over every candle of one symbol (the backtest); returns the number of trades written, or -1
    when ``trades`` is full (the caller grows it and runs again). Compiled ahead of time when built and the
    arguments fit its signature, else numba's JIT (or CPython under ``TRADING_AGENT_JIT=0``)."""
    args = (g, s, p, i, ts, o, h, low, c, action, confidence, equity_out, held_out, trades, np.zeros(NH),
            np.zeros((2, NF)))
    return int(series_runner(*args)(*args))
