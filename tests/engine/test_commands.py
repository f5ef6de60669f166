"""Every operator intent driven through the engine alone (no bot, no facade): a real live engine on the fake
exchange over 127.0.0.1 and a real database. Each intent's event reaches the bus and the outbox, and what it
changed is committed: a second connection to the database reads it back."""

from __future__ import annotations

from typing import Any

from engine.core import kernel as K
from engine.core.events import DailySummary, EngineEvent, OrderCancelled, RiskStateChanged, TradingPaused
from engine.core.model import SmaCrossModel, signal_source
from engine.core.types import OrderRequest, OrderStatus, Refusal, RiskState, Side
from engine.store.repo import Store
from tests.engine.helpers import real_candles
from tests.engine.test_restart import SYMBOL, Rig, rig_factory, sql_scalar

__all__ = ["rig_factory"]


async def committed_state(db_url: str) -> dict[str, Any]:
    """The engine's state as the database holds it, read through a connection of its own."""
    store = await Store.open(db_url)
    try:
        state = await store.load_core_state()
    finally:
        await store.close()
    assert state is not None
    return state


async def in_outbox(db_url: str, event_type: str) -> int:
    return int(str(await sql_scalar(db_url, f"SELECT count(*) FROM outbox WHERE event_type = '{event_type}'")))


async def free_candle(rig: Rig) -> None:
    """Step candles until the strategy has no order pending and no position is open."""
    assert rig.engine is not None
    core = rig.engine.core
    while core.pending.get(SYMBOL) or SYMBOL in core.portfolio.positions:
        if SYMBOL in core.portfolio.positions and not core.pending.get(SYMBOL):
            await rig.engine.commands.close_position(SYMBOL)
        await rig.close_candle(rig.stepped_upto)


async def test_every_intent_through_the_engine_commits_its_state_and_emits_its_event(rig_factory,
                                                                                       db_url: str) -> None:
    rig: Rig = await rig_factory(real_candles("ETH_BTC-5m.csv").slice(0, 90))
    engine = await rig.open()
    commands, core = engine.commands, engine.core
    seen: list[EngineEvent] = []
    rig.bus.subscribe(seen.append)
    await rig.run_to(30)
    await free_candle(rig)

    # ---- submit_order: queued in the broker, committed as a pending order in the state and the orders table
    order = await commands.submit_order(SYMBOL.lower(), "buy", 500.0)
    assert isinstance(order, OrderRequest) and (order.symbol, order.side, order.notional) == (SYMBOL, Side.BUY, 500.0)
    assert engine.broker.open_orders() == (order,)
    assert (await committed_state(rig.db_url))["pending"][SYMBOL]["order_id"] == order.order_id
    assert await engine.store.order_status(order.order_id) == OrderStatus.PENDING
    assert await commands.submit_order(SYMBOL, "buy", 10.0) == Refusal("pending",
                                                                         f"an order for {SYMBOL} is already pending")

    # ---- cancel_order: withdrawn, OrderCancelled on the bus and in the outbox, marked cancelled
    cancelled = await commands.cancel_order(order.order_id.upper(), by="test")
    assert cancelled == order and engine.broker.open_orders() == ()
    assert await in_outbox(rig.db_url, "OrderCancelled") == 1
    assert seen[-1] == OrderCancelled(ts=engine.clock.now_ms(), order_id=order.order_id, symbol=SYMBOL, side="buy",
                                      by="test", paper=True)
    assert await engine.store.order_status(order.order_id) == OrderStatus.CANCELLED
    assert (await committed_state(rig.db_url))["pending"] == {}
    assert (await commands.cancel_order(order.order_id)).code == "cancelled"  # type: ignore[union-attr]

    # ---- a buy that fills, then close_position: a pending sell of the whole position
    order = await commands.submit_order(SYMBOL, "buy", 500.0)
    assert isinstance(order, OrderRequest)
    await rig.close_candle(rig.stepped_upto)
    assert await engine.store.order_status(order.order_id) == OrderStatus.FILLED
    held = core.portfolio.positions[SYMBOL].quantity
    if core.pending.get(SYMBOL):  # the strategy decided an exit on that candle: let it fill and buy again
        await free_candle(rig)
        order = await commands.submit_order(SYMBOL, "buy", 500.0)
        await rig.close_candle(rig.stepped_upto)
        held = core.portfolio.positions[SYMBOL].quantity
    closes = await commands.close_position(SYMBOL)
    assert isinstance(closes, tuple) and len(closes) == 1
    (close,) = closes
    assert (close.side, close.quantity, close.reason) == (Side.SELL, held, "manual")
    assert (await committed_state(rig.db_url))["pending"][SYMBOL]["order_id"] == close.order_id
    assert await commands.close_position(SYMBOL) == Refusal("pending", f"an order for {SYMBOL} is already pending")

    # ---- pause / resume: the flag committed, TradingPaused on the bus and in the outbox
    assert await commands.pause(by="test") and not await commands.pause(by="test")
    assert seen[-1:] == [TradingPaused(ts=engine.clock.now_ms(), paused=True, by="test")]
    assert await in_outbox(rig.db_url, "TradingPaused") == 1
    assert (await committed_state(rig.db_url))["paused"] is True
    assert await commands.resume(by="test") and not await commands.resume(by="test")
    assert seen[-1:] == [TradingPaused(ts=engine.clock.now_ms(), paused=False, by="test")]
    assert (await committed_state(rig.db_url))["paused"] is False

    # ---- resume out of HALTED: RiskStateChanged, and the state committed ACTIVE
    core.g[K.STATE] = K.HALTED  # as a drawdown beyond the limit leaves it
    assert core.state is RiskState.HALTED
    assert await commands.resume(by="test")
    assert isinstance(seen[-1], RiskStateChanged) and (seen[-1].old, seen[-1].new) == ("HALTED", "ACTIVE")
    assert (await committed_state(rig.db_url))["risk_state"] == "ACTIVE"
    assert await in_outbox(rig.db_url, "RiskStateChanged") >= 1

    # ---- set_risk: the new limits committed; a bad value refused and nothing changed
    limits = await commands.set_risk("stop_loss_pct", 0.03)
    assert not isinstance(limits, Refusal) and limits.stop_loss_pct == 0.03 == core.limits.stop_loss_pct
    assert (await committed_state(rig.db_url))["limits"]["stop_loss_pct"] == 0.03
    refused = await commands.set_risk("stop_loss_pct", 5.0)
    assert isinstance(refused, Refusal) and refused.code == "bad_risk_value" and core.limits.stop_loss_pct == 0.03
    # the limits together: an entry never above what one symbol may hold, from either side (any front end)
    cap, entry = core.limits.max_position_fraction, core.limits.position_fraction
    too_big = await commands.set_risk("position_fraction", cap + 0.1)
    assert isinstance(too_big, Refusal) and "above max_position_fraction" in too_big.reason
    too_small = await commands.set_risk("max_position_fraction", entry / 2)
    assert isinstance(too_small, Refusal) and "below position_fraction" in too_small.reason
    assert (core.limits.max_position_fraction, core.limits.position_fraction) == (cap, entry)
    assert (await committed_state(rig.db_url))["limits"]["position_fraction"] == entry
    assert commands.check_risk("position_fraction", cap) is None

    # ---- swap_model: the symbol's strategy and the source named in its fills change together
    model = SmaCrossModel(3, 9)
    await commands.swap_model(SYMBOL.lower(), model)
    assert engine.symbols[SYMBOL].model is model and core.sources[SYMBOL] == signal_source(model)

    # ---- record: an event that changes no trading state, committed to the outbox and published
    summary = DailySummary(ts=engine.clock.now_ms(), day="2023-01-01", equity=core.portfolio.equity(), pnl=0.0,
                           pnl_pct=0.0, trades=0, fees=0.0)
    await commands.record(summary)
    assert seen[-1:] == [summary] and await in_outbox(rig.db_url, "DailySummary") == 1

    await rig.stop()
