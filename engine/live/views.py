"""What the front ends show of live trading (the facade's live part): the books against the exchange."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.core.types import Refusal
from engine.views import ReconcileView

if TYPE_CHECKING:
    from engine.live.reconcile import Reconciliation
    from engine.live.trader import LiveTrader

PAPER = Refusal("paper", "paper trading: there is no exchange account to reconcile with")


def status(trader: LiveTrader | None) -> tuple[str, str, tuple[str, ...]]:
    """``StatusView``'s live fields: the exchange's name, the latest reconciliation in a line, what disagrees."""
    if trader is None:
        return "", "", ()
    last = trader.last
    return (trader.venue.name, last.summary() if last else "not reconciled yet",
            last.lines() if last and last.reconciled else ())


def balances(trader: LiveTrader | None) -> tuple[str, int | None, tuple[tuple[str, float, float], ...]]:
    """``BalanceView``'s live fields: the exchange's name, when its balances were read (the latest reconciliation)
    and, per asset compared, the books' figure beside the exchange's."""
    if trader is None:
        return "", None, ()
    last = trader.last
    if last is None or not last.reconciled:
        return trader.venue.name, None, ()
    return trader.venue.name, last.at, tuple((c.asset, c.ours, c.theirs) for c in last.checks)


def reconcile_view(trader: LiveTrader, result: Reconciliation | None) -> ReconcileView:
    paused = tuple(sorted(trader.state.paused))
    if result is None:
        return ReconcileView(trader.venue.name, None, "not reconciled yet", (), (), (), (), paused)
    checks = tuple((c.asset, c.ours, c.theirs, c.agrees) for c in result.checks)
    return ReconcileView(trader.venue.name, result.at, result.summary(), result.lines(), checks,
                         tuple(result.deferred), tuple(result.notes), paused)


async def reconcile(trader: LiveTrader | None) -> ReconcileView | Refusal:
    """The books against the exchange now; paper: a refusal saying there is nothing to reconcile with."""
    if trader is None:
        return PAPER
    return reconcile_view(trader, await trader.reconcile())


async def accept(trader: LiveTrader | None, by: str) -> ReconcileView | Refusal:
    """The exchange's figures adopted for every balance that disagrees (no order is sent), then reconciled again;
    or why not (nothing disagrees, the exchange did not answer, the books moved meanwhile)."""
    if trader is None:
        return PAPER
    done = await trader.accept(by)
    if isinstance(done, Refusal):
        return done
    return reconcile_view(trader, await trader.reconcile())
