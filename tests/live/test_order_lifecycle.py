"""The live order lifecycle against the fake exchange over HTTP with real ccxt and a real database (SQLite and
PostgreSQL): fills and fees, limit timeouts, refusals, every way an answer can be lost, restarts mid-submit,
partial fills and fees in another asset. "Exactly one order on the exchange" is counted through its control API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from decimal import ROUND_UP, Decimal

import pytest

from engine.core.types import Side
from engine.live.ids import CLIENT_ID, is_ours
from engine.live.types import OrderState, OrderType
from sim.exchange import Fault
from tests.engine.helpers import wait_until
from tests.live.rig import DECIDED, KEY, SECRET, SETTINGS, SYMBOL, Rig, intent, live_rig

S = OrderState


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with live_rig(db_url) as made:
        yield made


def fee(value: float) -> float:
    return float((Decimal(str(value)) * Decimal("0.001")).quantize(Decimal("0.00000001"), rounding=ROUND_UP))


async def test_a_market_buy_fills_and_its_fee_is_recorded(rig: Rig) -> None:
    price = rig.price()
    done = await rig.manager.submit(intent(amount=0.01))
    order = done.order
    assert done.sent and order.state is S.FILLED and CLIENT_ID.match(order.client_id) and is_ours(order.client_id)
    assert order.filled == 0.01 and order.average == price and order.fees == {"BTC": 0.00001}
    assert order.exchange_id is not None and order.last_error is None and order.attempts == 1  # fills came with it
    assert [(u.previous, u.state) for u in done.updates] == [(None, S.SUBMITTING), (S.SUBMITTING, S.FILLED)]
    fill = done.updates[-1].fill
    assert fill is not None and fill.amount == 0.01 and fill.fees == {"BTC": 0.00001}
    assert fill.cost == pytest.approx(0.01 * price)
    assert await rig.store.live_order(order.client_id) == order  # what it returned is what is committed
    [on_exchange] = await rig.exchange_orders(order.client_id)
    assert on_exchange["status"] == "FILLED" and str(on_exchange["orderId"]) == order.exchange_id


async def test_the_same_intent_is_never_sent_twice(rig: Rig) -> None:
    first = await rig.manager.submit(intent(amount=0.01))
    again = await rig.manager.submit(intent(amount=0.02))  # the same decision, recomputed: the same order
    assert not again.sent and again.order == first.order and again.updates == ()
    other = await rig.manager.submit(intent(amount=0.01, seq=1))  # a deliberate second attempt is another order
    assert other.sent and other.order.client_id != first.order.client_id
    assert len(await rig.exchange_orders()) == 2


async def test_a_limit_order_open_past_its_timeout_is_cancelled(rig: Rig) -> None:
    low = round(rig.price() * 0.9, 2)
    done = await rig.manager.submit(intent(type_=OrderType.LIMIT, price=low))
    assert done.order.state is S.OPEN and done.order.expires_at == DECIDED + 60_000
    assert rig.fake.balances()["USDT"].locked > 0
    rig.clock.advance(59_000)
    assert await rig.manager.poll() == []  # still open, not yet due
    rig.clock.advance(1_000)
    updates = await rig.manager.poll()
    assert [(u.previous, u.state) for u in updates] == [(S.OPEN, S.CANCELED)] and updates[0].fill is None
    [on_exchange] = await rig.exchange_orders(done.order.client_id)
    assert on_exchange["status"] == "CANCELED" and rig.fake.balances()["USDT"].locked == 0
    assert await rig.manager.poll() == []  # final: never asked about again


async def test_a_refusal_is_rejected_with_its_reason_and_never_retried(rig: Rig) -> None:
    rig.fake.inject(Fault.REJECT, endpoint="order")
    done = await rig.manager.submit(intent())
    assert done.sent and done.order.state is S.REJECTED
    assert done.order.last_error == "InvalidOrder: binance -2010 New order rejected."
    rig.fake.set_rules(SYMBOL, min_notional=1e6)  # behind ccxt's back: only the exchange refuses
    notional = await rig.manager.submit(intent(reason="manual"))
    assert notional.order.state is S.REJECTED and "NOTIONAL" in (notional.order.last_error or "")
    requests = len(rig.fake.request_log)
    rig.clock.advance(3_600_000)
    assert await rig.manager.poll() == [] and len(rig.fake.request_log) == requests  # final: nothing asked
    assert await rig.manager.submit(intent()) == type(done)(done.order, sent=False)
    assert await rig.exchange_orders() == []


async def test_a_refused_signature_is_rejected_without_the_secret_in_the_reason(
        rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.fake.book.accounts[KEY].secret = "rotated-by-a-person"  # our key's secret no longer signs
    done = await rig.manager.submit(intent())
    assert done.order.state is S.REJECTED and (done.order.last_error or "").startswith("AuthenticationError: ")
    assert "-1022" in (done.order.last_error or "")
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err + (done.order.last_error or "") and "signature=" not in out.out
    assert await rig.exchange_orders() == []


async def test_the_markets_rules_refuse_before_anything_is_sent(rig: Rig) -> None:
    requests = len(rig.fake.request_log)
    tiny = await rig.manager.submit(intent(amount=0.000001))
    cheap = await rig.manager.submit(intent(type_=OrderType.LIMIT, amount=0.00001, price=1.0, reason="cheap"))
    assert tiny.order.state is cheap.order.state is S.REJECTED and not tiny.sent and not cheap.sent
    assert (tiny.order.last_error or "").startswith("refused before sending: ")
    assert "below the minimum 5 USDT" in (cheap.order.last_error or "")
    assert len(rig.fake.request_log) == requests and await rig.exchange_orders() == []


@pytest.mark.parametrize("fault", [Fault.HANG_AFTER_ACCEPT, Fault.ERROR_AFTER_ACCEPT])
async def test_a_lost_answer_is_unknown_then_resolved_by_client_id_to_the_one_order(rig: Rig, fault: Fault) -> None:
    rig.fake.inject(fault, endpoint="order")
    done = await rig.manager.submit(intent())
    assert done.order.state is S.UNKNOWN and done.order.exchange_id is None
    assert (done.order.last_error or "").split(":")[0] in ("RequestTimeout", "ExchangeNotAvailable")
    assert len(await rig.exchange_orders(done.order.client_id)) == 1  # it was made
    [update] = await rig.manager.resolve(done.order.client_id)
    assert (update.previous, update.state) == (S.UNKNOWN, S.FILLED)
    assert update.fill is not None and update.fill.amount == 0.01 and update.fill.fees == {"BTC": 0.00001}
    assert update.order.exchange_id is not None and update.order.last_error is None
    assert len(await rig.exchange_orders()) == 1  # exactly one order: nothing was ever resent


async def test_a_limit_order_whose_answer_was_lost_is_found_open_then_times_out(rig: Rig) -> None:
    rig.fake.inject(Fault.ERROR_AFTER_ACCEPT, endpoint="order")
    done = await rig.manager.submit(intent(type_=OrderType.LIMIT, price=round(rig.price() * 0.9, 2)))
    assert done.order.state is S.UNKNOWN
    assert [(u.previous, u.state) for u in await rig.manager.poll()] == [(S.UNKNOWN, S.OPEN)]
    rig.clock.advance(60_000)
    assert [(u.previous, u.state) for u in await rig.manager.poll()] == [(S.OPEN, S.CANCELED)]
    assert [o["status"] for o in await rig.exchange_orders()] == ["CANCELED"]


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.TIMEOUT])
async def test_an_order_the_exchange_never_made_is_not_placed_only_after_the_grace_period(rig: Rig,
                                                                                         fault: Fault) -> None:
    rig.fake.inject(fault, endpoint="order")  # a 500, or a hang, before the order is made
    done = await rig.manager.submit(intent())
    assert done.order.state is S.UNKNOWN and await rig.exchange_orders() == []
    assert [u.state for u in await rig.manager.poll()] == []  # not found, within the grace period: UNKNOWN
    rig.clock.advance(int(SETTINGS.grace_s * 1000) - 1)
    await rig.manager.poll()
    unknown = await rig.store.live_order(done.order.client_id)
    assert unknown is not None and unknown.state is S.UNKNOWN and "grace" in (unknown.last_error or "")
    rig.clock.advance(1)
    [update] = await rig.manager.poll()
    assert (update.previous, update.state) == (S.UNKNOWN, S.NOT_PLACED) and update.fill is None
    assert "30 s after sending" in (update.order.last_error or "")
    assert await rig.exchange_orders() == []


async def test_connection_refused_is_unknown_and_only_the_exchanges_answer_makes_it_not_placed(rig: Rig) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cut_off = await rig.manager_on(rig.url)
    cut_off.venue.exchange.urls["api"] = {k: v.replace(rig.url, dead) if isinstance(v, str) else v
                                          for k, v in cut_off.venue.exchange.urls["api"].items()}
    done = await cut_off.submit(intent())
    assert done.order.state is S.UNKNOWN and (done.order.last_error or "").startswith("ExchangeNotAvailable: ")
    assert dead not in (done.order.last_error or "")  # no hosts in the error text
    rig.clock.advance(60_000)
    assert await cut_off.poll() == []  # the exchange cannot be asked: no answer is not "it does not exist"
    still = await rig.store.live_order(done.order.client_id)
    assert still is not None and still.state is S.UNKNOWN and still.attempts == 2
    [update] = await rig.manager.poll()  # a manager that reaches the exchange: it says no such order
    assert update.state is S.NOT_PLACED and await rig.exchange_orders() == []


async def test_a_restart_in_the_middle_of_a_submit_ends_with_exactly_the_exchanges_orders(rig: Rig) -> None:
    rig.fake.inject(Fault.HANG_AFTER_ACCEPT, endpoint="order")
    slow = await rig.manager_on(timeout_s=10.0)
    task = asyncio.create_task(slow.submit(intent()))
    await wait_until(lambda: len(rig.fake.orders()) == 1)  # made on the exchange, the answer not back yet
    task.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = await rig.store.live_orders()
    assert row.state is S.SUBMITTING
    restarted = await rig.restart()
    [update] = await restarted.startup()
    assert (update.previous, update.state) == (S.SUBMITTING, S.FILLED) and update.order.filled == 0.01
    assert not (await restarted.submit(intent())).sent  # the loop deciding again after the restart
    assert len(await rig.exchange_orders()) == 1


async def test_a_restart_before_the_exchange_made_the_order_ends_with_none(rig: Rig) -> None:
    rig.fake.inject(Fault.TIMEOUT, endpoint="order")  # the request hangs before the order is made
    slow = await rig.manager_on(timeout_s=10.0)
    task = asyncio.create_task(slow.submit(intent()))
    await wait_until(lambda: any(path == "/api/v3/order" for path, _ in rig.fake.request_log))
    task.cancel()  # the process dies; its connection with it, so the exchange never makes the order
    with pytest.raises(asyncio.CancelledError):
        await task
    restarted = await rig.restart()
    assert [(u.previous, u.state) for u in await restarted.startup()] == [(S.SUBMITTING, S.UNKNOWN)]
    rig.clock.advance(30_000)
    assert [u.state for u in await restarted.poll()] == [S.NOT_PLACED]
    assert await rig.exchange_orders() == []


async def test_partial_fills_and_fees_in_bnb_arrive_as_deltas_that_add_up(rig: Rig) -> None:
    rig.fake.book.fill_fraction = 0.4
    rig.fake.book.fee_asset, rig.fake.book.fee_asset_price = "BNB", Decimal("600")
    rig.fake.set_balance("BNB", "1")
    limit = round(rig.price() * 1.002, 2)  # above the market: 40 % at once, the rest as the price comes back
    done = await rig.manager.submit(intent(type_=OrderType.LIMIT, price=limit, timeout_s=3600))
    assert done.order.state is S.PARTIALLY_FILLED and done.order.filled == 0.004
    assert set(done.order.fees) == {"BNB"}
    fills = [done.updates[-1].fill]
    for _ in range(50):
        rig.market_clock.advance(30_000)
        updates = await rig.manager.poll()
        fills += [u.fill for u in updates if u.fill is not None]
        if updates and updates[-1].state is S.FILLED:
            break
    final = await rig.store.live_order(done.order.client_id)
    assert final is not None and final.state is S.FILLED
    assert [f.amount for f in fills if f] == pytest.approx([0.004, 0.004, 0.002])
    trades = await rig.exchange_trades()
    paid = sum(float(t["commission"]) for t in trades)
    assert {t["commissionAsset"] for t in trades} == {"BNB"}
    assert sum(f.fees["BNB"] for f in fills if f) == pytest.approx(paid) == pytest.approx(final.fees["BNB"])
    assert final.cost == pytest.approx(sum(float(t["quoteQty"]) for t in trades))
    assert final.average == pytest.approx(final.cost / final.filled)


async def test_cancelling_a_partly_filled_order_keeps_what_filled(rig: Rig) -> None:
    rig.fake.book.fill_fraction = 0.5
    done = await rig.manager.submit(intent(type_=OrderType.LIMIT, price=round(rig.price() * 1.002, 2)))
    assert done.order.state is S.PARTIALLY_FILLED
    [update] = await rig.manager.cancel(done.order.client_id, why="operator")
    assert (update.previous, update.state) == (S.PARTIALLY_FILLED, S.CANCELED)
    assert update.order.filled == 0.005 and update.fill is None  # nothing more filled
    assert rig.fake.balances()["USDT"].locked == 0


async def test_sell_side_and_a_person_s_own_orders_are_told_apart(rig: Rig) -> None:
    rig.fake.set_balance("BTC", "0.05")
    done = await rig.manager.submit(intent(side=Side.SELL, amount=0.02, reason="exit"))
    assert done.order.state is S.FILLED and set(done.order.fees) == {"USDT"}
    await rig.manager.venue.exchange.create_order("BTC/USDT", "market", "sell", 0.01)  # a person's own
    ours = [o for o in await rig.exchange_orders() if is_ours(o["clientOrderId"])]
    assert [o["clientOrderId"] for o in ours] == [done.order.client_id] and len(await rig.exchange_orders()) == 2
    assert fee(0.02 * float(done.order.average or 0)) == pytest.approx(done.order.fees["USDT"])
