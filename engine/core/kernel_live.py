"""The kernel's external fills (live trading): the exchange fills the pending order, and the ticker's prices trigger
the protective exits, while the accounting and the exit rules stay the kernel's own (``engine.core.kernel``).

With ``p[EXTERNAL_FILLS]`` set, ``kernel.step`` decides and queues the pending order as ever but neither fills it
at the next open nor checks the candle's low and high. Instead:

* ``book_fill`` books each fill the exchange reports through paper's accounting (``kernel._book``), after the
  day roll ``step`` makes. An order sized to be sent (``SENT``) counts down from its quantity, so partial fills add
  up to it; the last frees the slot. A sell's rest below the minimums becomes dust only when the order is done.
* ``exit_order`` checks one price against the position's stop, trailing stop and target: the kernel's own candle
  check (``kernel._protective``) of a candle of that one price, on a copy of the state; the exit it would sell is
  queued in the pending slot, sized as the kernel sizes it (the high-water mark follows the prices).

Compiled with the kernel (``engine.core.kernel_jit``) but outside numba's on-disk cache, which is keyed by this
file alone and would not see a change of kernel.py's functions it inlines.
"""

from __future__ import annotations

import numpy as np

from engine.core.kernel import (
    AMOUNT_STEP,
    AVG,
    BUY,
    F_LEVEL,
    F_OPENED,
    F_PRICE,
    F_QTY,
    F_REASON,
    H_DROP,
    H_EQUITY,
    H_NCHANGES,
    H_NFILLS,
    H_PENDING_DONE,
    HIGH_WATER,
    MARK,
    NF,
    NH,
    P_AMOUNT,
    P_KIND,
    P_REASON,
    P_SIDE,
    P_TS,
    QTY,
    RULE_OK,
    SELL,
    _book,
    _on_grid,
    _protective,
    _roll_day,
    _set_levels,
    equity,
)
from engine.core.kernel_jit import jit

NO_EXIT = -1  # ``exit_order``: no protective exit triggered
# the pending order's sizing kind once it is sent (``kernel.BY_*`` before): ``P_AMOUNT`` is what is still unfilled,
# in base units; ``OPENING``: its first fill opened the position (its later fills restate the stop and target)
SENT, OPENING = 3.0, 4.0


@jit
def book_fill(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, side: float, qty: float, price: float,
              fee: float, ts: float, reason: int, ours: bool, head: np.ndarray, fills: np.ndarray) -> None:
    """Book a fill the exchange reported (``fee`` in the quote currency) through paper's own accounting (``_book``),
    after rolling the UTC day as ``step`` does. ``ours``: it fills row ``i``'s pending order; one ``SENT`` (sized)
    counts down from what it was sent with and frees the slot when nothing is left (``H_PENDING_DONE``); later
    fills of an ``OPENING`` buy restate the stop and target from the average entry. The fill's price marks the
    symbol. Results go to ``head`` and ``fills`` (one row) as ``step``'s do."""
    head[H_NFILLS] = 0.0
    head[H_PENDING_DONE] = 0.0
    head[H_NCHANGES] = 0.0
    head[H_DROP] = RULE_OK
    _roll_day(g, s, ts, head)
    counted = ours and s[i, P_KIND] >= SENT
    adds_to_opening = counted and side == BUY and s[i, P_KIND] == OPENING and s[i, QTY] > 0.0
    rest = 0.0
    if counted:
        rest = _on_grid(s[i, P_AMOUNT] - qty, s[i, AMOUNT_STEP])
        if rest <= s[i, P_AMOUNT] * 1e-9:
            rest = 0.0
    _book(g, s, p, i, side, qty, price, fee, ts, reason, np.nan, 1.0 if ours else 0.0, rest == 0.0, head, fills)
    if adds_to_opening:
        _set_levels(s, p, i, s[i, AVG])
        if price > s[i, HIGH_WATER]:
            s[i, HIGH_WATER] = price
    if counted:
        if fills[0, F_OPENED] != 0.0:
            s[i, P_KIND] = OPENING
        s[i, P_AMOUNT] = rest
        if rest == 0.0:
            s[i, P_SIDE] = 0.0
            head[H_PENDING_DONE] = 1.0
    s[i, MARK] = price
    head[H_EQUITY] = equity(g, s)


@jit
def exit_order(g: np.ndarray, s: np.ndarray, p: np.ndarray, i: int, price: float,
               ts: float) -> tuple[int, float, float, float]:
    """(reason, level, quantity, expected price) of the protective exit one price triggers on row ``i``'s position:
    the kernel's candle check (``_protective``) of a candle whose open, high and low are all ``price``, made on a
    copy of the state, its sell read back and queued in the pending slot (a ``SENT`` sell of that quantity).
    Nothing triggered: (``NO_EXIT``, nan, 0, ``price``), and the high-water mark has followed the price as the check
    moves it. Nothing either while an order is pending or nothing is held, or when the sell breaks a minimum."""
    if s[i, QTY] <= 0.0 or s[i, P_SIDE] != 0.0:
        return NO_EXIT, np.nan, 0.0, price
    g_copy, s_copy = g.copy(), s.copy()
    head, fills = np.zeros(NH), np.zeros((2, NF))
    _protective(g_copy, s_copy, p, i, ts, price, price, price, head, fills)
    if head[H_NFILLS] == 0.0:
        s[i, HIGH_WATER] = s_copy[i, HIGH_WATER]
        return NO_EXIT, np.nan, 0.0, price
    sell = fills[0]
    s[i, P_SIDE] = SELL
    s[i, P_KIND] = SENT
    s[i, P_AMOUNT] = sell[F_QTY]
    s[i, P_TS] = ts
    s[i, P_REASON] = sell[F_REASON]
    return int(sell[F_REASON]), sell[F_LEVEL], sell[F_QTY], sell[F_PRICE]
