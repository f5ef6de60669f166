"""PNG charts (matplotlib, Agg backend): equity with drawdown (one curve, or several to compare), and price with
entries and exits.

Pure functions from numbers to PNG bytes; callers on an event loop run them in a worker thread.
Axis labels are matplotlib's unless the caller hands in its formatters (the bot passes its own
``money``, ``price`` and ``pct``, so a chart shows numbers as the messages do).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from engine.core.types import Trade

MAX_POINTS = 4000


def _date_format() -> mdates.DateFormatter:
    return mdates.DateFormatter("%m-%d %H:%M")  # type: ignore[no-untyped-call]  # untyped in matplotlib's stubs


def _times(ts: Sequence[int]) -> np.ndarray:
    return np.array(list(ts), dtype="datetime64[ms]")


def _thin(ts: Sequence[int], values: Sequence[float]) -> tuple[list[int], list[float]]:
    if len(ts) <= MAX_POINTS:
        return list(ts), list(values)
    idx = np.linspace(0, len(ts) - 1, MAX_POINTS).astype(int)
    return [ts[i] for i in idx], [values[i] for i in idx]


Format = Callable[[float], str]


def _label_y(ax: Axes, fmt: Format | None, scale: float = 1.0) -> None:
    """Tick labels of the y axis written by ``fmt`` (of the value divided by ``scale``)."""
    if fmt is not None:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v / scale)))


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def equity_png(ts: Sequence[int], equity: Sequence[float], *, title: str = "Equity", money: Format | None = None,
               percent: Format | None = None) -> bytes:
    """Equity curve over drawdown (percent below the running peak); ``money`` and ``percent`` (of a fraction)
    write the axes' numbers."""
    ts, equity = _thin(ts, equity)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(3, 1))
    if ts:
        times = _times(ts)
        eq = np.asarray(equity, dtype=float)
        dd = (eq / np.maximum.accumulate(eq) - 1.0) * 100.0
        ax1.plot(times, eq, color="#1f6feb", linewidth=1.2)
        ax2.fill_between(times, dd, 0, color="#d1242f", alpha=0.4, linewidth=0)
        ax2.xaxis.set_major_formatter(_date_format())
    else:
        ax1.text(0.5, 0.5, "no equity history yet", ha="center", va="center", transform=ax1.transAxes)
    ax1.set_title(title)
    ax1.set_ylabel("equity")
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("drawdown" if percent else "drawdown %")
    ax2.grid(alpha=0.3)
    _label_y(ax1, money)
    _label_y(ax2, percent, 100.0)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


def equity_curves_png(ts: Sequence[int], curves: Sequence[tuple[str, Sequence[float]]], *,
                      title: str = "Equity") -> bytes:
    """Several equity curves over the same candles (``curves``: label and equity per candle), one line each with a
    legend, over each one's drawdown (percent below its running peak)."""
    idx = np.linspace(0, len(ts) - 1, MAX_POINTS).astype(int) if len(ts) > MAX_POINTS else np.arange(len(ts))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(3, 1))
    if len(ts) and curves:
        times = _times([ts[i] for i in idx])
        for label, equity in curves:
            eq = np.asarray(equity, dtype=float)[idx]
            dd = (eq / np.maximum.accumulate(eq) - 1.0) * 100.0
            (line,) = ax1.plot(times, eq, linewidth=1.2, label=label)
            ax2.plot(times, dd, linewidth=0.9, color=line.get_color())
        ax1.legend(loc="best", fontsize="small")
        ax2.xaxis.set_major_formatter(_date_format())
    else:
        ax1.text(0.5, 0.5, "no equity history yet", ha="center", va="center", transform=ax1.transAxes)
    ax1.set_title(title)
    ax1.set_ylabel("equity")
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("drawdown %")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


def price_png(ts: Sequence[int], close: Sequence[float], trades: Sequence[Trade], *, title: str,
              open_entry: tuple[int, float] | None = None, price: Format | None = None) -> bytes:
    """Close prices with entries (green ^) and exits (red v) marked; ``price`` writes the axis' numbers."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if ts:
        ax.plot(_times(ts), close, color="#444", linewidth=1.0)
        first = ts[0]
        entries = [(t.entry_time, t.entry_price) for t in trades if t.entry_time >= first]
        if open_entry and open_entry[0] >= first:
            entries.append(open_entry)
        exits = [(t.exit_time, t.exit_price) for t in trades if t.exit_time >= first]
        if entries:
            ax.scatter(_times([e[0] for e in entries]), [e[1] for e in entries], marker="^", color="#1a7f37",
                       s=60, zorder=3, label="entry")
        if exits:
            ax.scatter(_times([e[0] for e in exits]), [e[1] for e in exits], marker="v", color="#d1242f", s=60,
                       zorder=3, label="exit")
        if entries or exits:
            ax.legend(loc="best")
        ax.xaxis.set_major_formatter(_date_format())
    else:
        ax.text(0.5, 0.5, "no candles yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _label_y(ax, price)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)
