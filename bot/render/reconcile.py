"""/reconcile's text: the books against the exchange, and the accept prompt."""

from __future__ import annotations

from datetime import tzinfo

from bot.render.values import esc, when
from engine.core.rules import plain
from engine.views import ReconcileView


def reconciliation(v: ReconcileView, tz: tzinfo) -> str:
    icon = "✅" if not v.mismatches and v.at_ms is not None and "could not" not in v.summary else "⚠️"
    lines = [f"{icon} <b>Books vs {esc(v.exchange)}</b>: {esc(v.summary)}"]
    lines += [f"• {esc(line)}" for line in v.mismatches]
    if v.checks:
        lines.append("Compared (books / exchange):")
        lines += [f"{'✓' if agrees else '✗'} {esc(asset)}: {esc(plain(ours, 10))} / {esc(plain(theirs, 10))}"
                  for asset, ours, theirs, agrees in v.checks]
    lines += [f"<i>{esc(note)}</i>" for note in (*v.deferred, *v.notes)]
    if v.paused:
        lines.append(f"New entries paused: {esc(', '.join(v.paused))} "
                     "(/reconcile accept adopts the exchange's figures)")
    if v.at_ms is not None:
        lines.append(f"<i>As of {when(v.at_ms, tz)}</i>")
    return "\n".join(lines)


def accept_prompt(v: ReconcileView) -> str:
    return ("Adopt the exchange's figures as the agent's books? No order is sent; the books will say:\n"
            + "\n".join(f"• {esc(line)} → the exchange's figure" for line in v.mismatches)
            + "\nOrders that disagree are not settled by this (they are asked about until final).")
