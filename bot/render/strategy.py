"""/strategy replies: the active strategy (parameters and where each came from, stops, timeframe, warm-up), the
confirmation of a switch (naming the open positions it keeps) and its result."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo

from bot.render.values import esc, pct, qty, when
from engine.core.types import PositionView
from engine.strategy_choice import StopInfo, StrategySwitch, StrategyView

STOP_NAMES = {"stop_loss_pct": "stop-loss", "take_profit_pct": "take-profit", "trailing_stop_pct": "trailing stop"}


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _stop(s: StopInfo) -> str:
    level = pct(s.value, sign=False) if s.value else "off"
    return f"{STOP_NAMES.get(s.name, s.name)} {level} ({esc(s.source)})"


def _lines(v: StrategyView) -> list[str]:
    lines = [f"<b>{esc(v.name)}</b> ({esc(v.kind)}{', ' + esc(v.spec) if v.kind in ('file', 'module') else ''})"]
    if v.params:
        lines.append("Parameters:")
        lines += [f"• {esc(p.name)} = <code>{esc(_value(p.value))}</code> ({esc(p.allowed)}), from {esc(p.source)}"
                  for p in v.params]
    elif v.kind != "model":
        lines.append("Parameters: none")
    lines.append("Stops: " + ", ".join(_stop(s) for s in v.stops))
    if v.kind != "model":
        lines.append(f"Timeframe: {esc(v.timeframe or 'any')} · warm-up {v.startup_candles} candles")
    if v.lookahead:
        lines.append(f"Look-ahead check: {esc(v.lookahead)}")
    if v.study:
        lines.append(f"Parameters from optimiser study {esc(v.study)}")
    return lines


def strategy(v: StrategyView | None, names: Sequence[str], tz: tzinfo = UTC) -> str:
    """The active strategy, who chose it, and the names ``/strategy set`` takes."""
    if v is None:
        return "This agent cannot report its strategy."
    chosen = "the config file" if v.chosen_by == "config" else f"{esc(v.chosen_by)} at {when(v.chosen_ts, tz)}"
    lines = ["Strategy", *_lines(v), f"Chosen by {chosen}"]
    if names:
        lines.append(f"Admins can switch: /strategy set NAME [key=value ...], NAME one of "
                     f"{esc(', '.join(names))}")
    return "\n".join(lines)


def kept_positions(positions: Sequence[PositionView]) -> str:
    """The open positions a switch keeps, named, or that there are none."""
    if not positions:
        return "No position is open."
    held = "; ".join(f"{esc(p.symbol)} {qty(p.quantity)}" for p in positions)
    return (f"Open positions are kept: {held}. From now on the new strategy's exit signals manage them, with the "
            "stop levels they were opened with.")


def switch_prompt(current: StrategyView | None, new: StrategyView, positions: Sequence[PositionView]) -> str:
    old = esc(current.name) if current is not None else "?"
    return "\n".join([f"Switch the strategy of every symbol from <b>{old}</b> to:", *_lines(new),
                      kept_positions(positions)])


def switched(s: StrategySwitch, positions: Sequence[PositionView]) -> str:
    return (f"Strategy switched: <b>{esc(s.old.name)}</b> → <b>{esc(s.new.name)}</b>.\n"
            f"{kept_positions([p for p in positions if p.symbol in s.kept])}")
