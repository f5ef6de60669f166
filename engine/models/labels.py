"""Training labels: the next-``horizon``-candle return, net of the round-trip fee, as three classes.

For candle t (the decision is taken when t closes) the label looks at the log return from the close
of t to the close of t + horizon:

    r_t = ln(close[t + horizon] / close[t])

and compares it with a threshold equal to the round-trip trading cost (``fee_bps`` per side, so
``2 * fee_bps`` basis points) plus an optional ``margin_bps``:

* 2 = up:   r_t >  threshold  (a long opened now would have paid its fees)
* 0 = down: r_t < -threshold  (holding a long would have lost more than the fees)
* 1 = flat: otherwise          (the move does not pay for a round trip)

The label of t depends on candles t+1 .. t+horizon, which are in the future of t: the last
``horizon`` rows of a series have no label (``NO_LABEL`` = -1) and are dropped from training. Because
the label window of row t spans [t, t + horizon], a training row t must be purged when t + horizon
reaches into a test fold (see ``engine.models.validation``).

This is a fixed-horizon label, not a triple-barrier one: it ignores the path between t and
t + horizon (a stop-loss hit on the way is not seen).
"""

from __future__ import annotations

import numpy as np

DOWN, FLAT, UP = 0, 1, 2
NO_LABEL = -1


def label_threshold(fee_bps: float, margin_bps: float = 0.0) -> float:
    """Log-return threshold of the up/down classes: round-trip fee plus margin (bps -> log return)."""
    return float(np.log1p((2.0 * fee_bps + margin_bps) / 10_000.0))


def make_labels(close: np.ndarray, horizon: int, fee_bps: float = 10.0,
                margin_bps: float = 0.0) -> np.ndarray:
    """int64 class per row (0 down, 1 flat, 2 up); the last ``horizon`` rows are ``NO_LABEL``."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    n = close.shape[0]
    labels = np.full(n, NO_LABEL, dtype=np.int64)
    if n <= horizon:
        return labels
    fwd = np.log(close[horizon:] / close[:-horizon])
    thr = label_threshold(fee_bps, margin_bps)
    lab = np.full(fwd.shape[0], FLAT, dtype=np.int64)
    lab[fwd > thr] = UP
    lab[fwd < -thr] = DOWN
    labels[: n - horizon] = lab
    return labels
