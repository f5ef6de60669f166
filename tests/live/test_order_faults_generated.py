"""Generated fault sequences (Hypothesis): any mix of faults on the create request (refused, delayed, lost after
the order was made, a 5xx or a hang before it was made), processes killed at a random moment of a submit,
restarts and the same decision submitted again — and afterwards, once everything is resolved, never two exchange
orders for one intent, and every record agrees with the exchange (filled what it filled, NOT_PLACED and REJECTED
only where it has nothing). Against the fake exchange over HTTP, real ccxt, a real database."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.live.ids import is_ours
from engine.live.orders import OrderManager
from engine.live.types import OrderState, OrderType
from sim.exchange import Fault
from tests.live.rig import DECIDED, Rig, intent, live_rig

FAULTS = [None, Fault.REJECT, Fault.DELAY, Fault.HANG_AFTER_ACCEPT, Fault.ERROR_AFTER_ACCEPT, Fault.SERVER_ERROR,
          Fault.TIMEOUT]
EXCHANGE_STATE = {"FILLED": OrderState.FILLED, "CANCELED": OrderState.CANCELED}
EXAMPLES = itertools.count()  # Hypothesis reuses the test's database: each example decides at its own times


@dataclass(frozen=True)
class Step:
    fault: Fault | None
    limit: bool  # a limit order far below the market (it rests until its timeout), else a market buy
    kill_after_s: float | None  # the submitting process dies this long after it started (None: it does not)
    again: bool  # the same decision is submitted once more afterwards
    restart: bool  # the process restarts afterwards (startup() over the same database)


steps = st.builds(Step, st.sampled_from(FAULTS), st.booleans(),
                  st.one_of(st.none(), st.floats(0.0, 0.08)), st.booleans(), st.booleans())


async def run_step(rig: Rig, manager: OrderManager, step: Step, decided_ts: int) -> OrderManager:
    wanted = (intent(type_=OrderType.LIMIT, price=round(rig.price() * 0.8, 2), decided_ts=decided_ts)
              if step.limit else intent(decided_ts=decided_ts))
    if step.fault is not None:
        rig.fake.inject(step.fault, endpoint="order", delay_s=0.05)
    if step.kill_after_s is None:
        await manager.submit(wanted)
    else:
        task = asyncio.create_task(manager.submit(wanted))
        await asyncio.sleep(step.kill_after_s)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if step.restart or step.kill_after_s is not None:  # a killed process comes back as a new one
        manager = await rig.restart()
        await manager.startup()
    if step.again:
        await manager.submit(wanted)
    return manager


async def check_against_the_exchange(rig: Rig, first_ts: int) -> None:
    rows = {o.client_id: o for o in await rig.store.live_orders() if o.decided_ts >= first_ts}
    on_exchange = await rig.exchange_orders()
    ids = [o["clientOrderId"] for o in on_exchange]
    assert all(is_ours(i) for i in ids)
    assert len(ids) == len(set(ids)), "two exchange orders for one intent"
    assert set(ids) <= set(rows), "an exchange order the agent has no record of"
    for order in rows.values():
        assert order.state.final, order
        made = [o for o in on_exchange if o["clientOrderId"] == order.client_id]
        if order.state in (OrderState.REJECTED, OrderState.NOT_PLACED):
            assert made == [], order
            continue
        [exchange] = made
        assert EXCHANGE_STATE[exchange["status"]] is order.state and str(exchange["orderId"]) == order.exchange_id
        assert order.filled == float(exchange["executedQty"])
        if order.filled:
            assert order.fees == {"BTC": pytest.approx(order.filled * 0.001)}  # buys: paid in the base asset


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(steps, min_size=1, max_size=5))
async def test_generated_faults_never_make_two_orders_for_one_intent(db_url: str, plan: list[Step]) -> None:
    first_ts = DECIDED + next(EXAMPLES) * 1000
    async with live_rig(db_url) as rig:  # a fresh exchange per example
        manager = rig.manager
        for k, step in enumerate(plan):
            manager = await run_step(rig, manager, step, first_ts + k)
        rig.fake.clear_faults()
        rig.clock.advance(3_600_000)  # past every grace period and limit timeout
        for _ in range(3):
            await manager.poll()
        await check_against_the_exchange(rig, first_ts)
