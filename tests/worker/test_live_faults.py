"""Faults of the order path in the real live worker (``python -m bot``, TRADING_MODE=live) against the fake exchange
over HTTP: each fault the exchange injects into a create request leaves exactly the orders the exchange made, each
booked once (a create that hangs after the exchange accepted it included); a buy below the market's minimum order
value is refused without a request; and the API key and secret appear nowhere in the worker's output at
LOG_LEVEL=DEBUG nor in any chat message, while it trades and answers the live commands."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.conftest import sqlite_url
from tests.worker.rig import ADMIN, SYMBOLS, FakeExchangeProc, Worker, rows, worker_env, write_market
from tests.worker.test_live_crash import books_difference, duplicates, exchange_fills, settled
from tests.worker.test_live_trading import FUNDS, KEY, LIVE, QUOTE, SECRET, control, exchange_state, live_toml, stop
from tests.worker.test_sigterm import say

SPEED = 240.0
EXCHANGE_ARGS = ["--account", f"{KEY}:{SECRET}", "--balance", f"{QUOTE}={FUNDS}"]


def new_events(worker: Worker, event: str, since: int) -> list[dict[str, Any]]:
    return [e for e in worker.events[since:] if e.get("event") == event]


async def first_event(worker: Worker, event: str, since: int, timeout: float, **fields: Any) -> dict[str, Any]:
    """The first ``event`` logged after line ``since`` whose fields include ``fields``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in new_events(worker, event, since) if all(e.get(k) == v for k, v in fields.items())]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {event} {fields} within {timeout} s: {worker.text()[-3000:]}")


async def row_state(url: str, client_id: str, states: tuple[str, ...], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await rows(url, f"SELECT state FROM live_orders WHERE client_id = '{client_id}'")
        if found and found[0][0] in states:
            return str(found[0][0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{client_id} never reached {states}: {found}")


async def fill_of(url: str, client_id: str) -> list[tuple[Any, ...]]:
    return await rows(url, "SELECT f.side, f.quantity FROM live_orders l JOIN fills f ON f.order_id = l.intent_id "
                           f"WHERE l.client_id = '{client_id}'")


async def inject(exchange_url: str, fault: str, **extra: Any) -> None:
    await control(exchange_url, "POST", "/control/faults", fault=fault, endpoint="order", times=1, **extra)


@pytest.mark.timeout(300)
async def test_each_create_fault_leaves_exactly_the_orders_the_exchange_made_each_booked_once(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    """hang after accept (ccxt times out: UNKNOWN, then found by its client id), error after accept (a 503: the
    same), delay (the answer comes late: booked on arrival), reject (no order made: REJECTED, nothing booked)."""
    url = sqlite_url(tmp_path)
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 3000), speed=SPEED, extra=EXCHANGE_ARGS)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=live_toml(tmp_path / "trading.toml"), **LIVE)
    seen: dict[str, str] = {}
    try:
        worker = await Worker.start(env, tmp_path)
        await worker.wait_for("ready", 60)
        await worker.wait_for("reconciled", 60)

        # a create that hangs after the exchange accepted it: the order exists once and its fill is booked once
        since = len(worker.events)
        await inject(exchange.base_url, "hang_after_accept")
        failed = await first_event(worker, "live_order.send_failed", since, 90, state="UNKNOWN")
        hung = seen["hang_after_accept"] = failed["client_id"]
        assert await row_state(url, hung, ("FILLED",), 30) == "FILLED"
        await first_event(worker, "live_order.state", since, 5, client_id=hung, before="UNKNOWN", after="FILLED")

        # the exchange made the order, then answered 503
        since = len(worker.events)
        await inject(exchange.base_url, "error_after_accept")
        failed = await first_event(worker, "live_order.send_failed", since, 90, state="UNKNOWN")
        errored = seen["error_after_accept"] = failed["client_id"]
        assert "503" in failed["error"] or "unavailable" in failed["error"].lower(), failed
        assert await row_state(url, errored, ("FILLED",), 30) == "FILLED"

        # the answer comes two seconds late
        since = len(worker.events)
        await inject(exchange.base_url, "delay", delay_s=2.0)
        deadline = time.monotonic() + 90
        while not (slow := [e for e in new_events(worker, "live_order.latency", since) if e["round_trip_ms"] >= 1900]):
            assert time.monotonic() < deadline, "no delayed order"
            await asyncio.sleep(0.1)
        ((delayed,),) = await rows(url, f"SELECT client_id FROM live_orders WHERE intent_id = '{slow[0]['order_id']}'")
        seen["delay"] = delayed
        assert await row_state(url, delayed, ("FILLED",), 10) == "FILLED"

        # refused by the exchange: no order made, nothing booked, the decision's slot freed
        since = len(worker.events)
        await inject(exchange.base_url, "reject")
        failed = await first_event(worker, "live_order.send_failed", since, 90, state="REJECTED")
        rejected = seen["reject"] = failed["client_id"]
        assert await row_state(url, rejected, ("REJECTED",), 5) == "REJECTED"
        await asyncio.sleep(1.0)
        await stop(worker)
        for _ in range(3):  # an order a stop caught mid-submit: the next run resolves it
            if await settled(url):
                break
            again = await Worker.start(env, tmp_path)
            await again.wait_for("reconciled", 60)
            await stop(again)
        dup = await duplicates(url, exchange.base_url)
        difference, figures = await books_difference(url, exchange.base_url)
        filled = await exchange_fills(exchange.base_url)
        _, orders = await exchange_state(exchange.base_url)
        fills = {name: await fill_of(url, client_id) for name, client_id in seen.items()}
    finally:
        await exchange.stop()

    on_exchange = [o["clientOrderId"] for o in orders]
    for name in ("hang_after_accept", "error_after_accept", "delay"):
        client_id = seen[name]
        assert on_exchange.count(client_id) == 1, (name, client_id)
        ((_, qty),) = fills[name]  # booked once
        assert qty == pytest.approx(filled[client_id][0], rel=1e-12), name
    assert seen["reject"] not in on_exchange and fills["reject"] == []
    assert dup == 0
    for asset, (ours, theirs) in figures.items():
        assert ours == pytest.approx(theirs, abs=1e-6 if asset == QUOTE else 1e-8), (asset, ours, theirs)
    print(f"\nfaults: {len(orders)} exchange orders, {dup} duplicates, books-exchange difference {difference:.3g}")


async def test_a_buy_below_the_minimum_order_value_is_refused_without_reaching_the_exchange(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    """The exchange's clock held (no candle closes, so the strategy sends nothing): an admin's ``/buy BTCUSDT 1``
    (1 USDT, under the market's 5 USDT minimum) gets one line saying why, and the exchange's orders stay as they
    were."""
    url = sqlite_url(tmp_path)
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 3000), speed=SPEED,
                                            extra=["--hold", *EXCHANGE_ARGS])
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=live_toml(tmp_path / "trading.toml", symbols=SYMBOLS[:1]), **LIVE)
    try:
        worker = await Worker.start(env, tmp_path)
        await worker.wait_for("ready", 60)
        await say(emu, "/start")
        await worker.wait_for("reconciled", 30)
        await asyncio.sleep(1.0)  # the first decision's order, if any, is done
        _, before = await exchange_state(exchange.base_url)
        rows_before = await rows(url, "SELECT count(*) FROM live_orders")
        since = len(emu.transcript(ADMIN))
        await say(emu, "/buy BTCUSDT 1", press=True)
        await asyncio.sleep(2.0)
        texts = [m.text or "" for m in emu.transcript(ADMIN)[since:]]
        _, after = await exchange_state(exchange.base_url)
        rows_after = await rows(url, "SELECT count(*) FROM live_orders")
        requests = [e for e in worker.events if e.get("event") in ("live_order.submitted", "live_order.send_failed")]
        await stop(worker)
    finally:
        await exchange.stop()
    assert after == before, "an order reached the exchange"
    assert rows_after == rows_before  # (a row is committed before any create request)
    assert requests == [], requests  # the fake would refuse it too (-1013): no request was made at all
    refusals = [t for t in texts if "minimum" in t.lower()]
    assert len(refusals) == 1, texts
    assert len(refusals[0].strip().splitlines()) == 1, refusals[0]
    assert "5" in refusals[0] and "USDT" in refusals[0], refusals[0]
    print(f"\n/buy BTCUSDT 1 (live): {refusals[0]!r}; exchange orders {len(before)} before, {len(after)} after")


@pytest.mark.timeout(240)
async def test_the_api_key_and_secret_appear_nowhere_at_debug_nor_in_any_chat(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    url = sqlite_url(tmp_path)
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 3000), speed=SPEED, extra=EXCHANGE_ARGS)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=live_toml(tmp_path / "trading.toml"), LOG_LEVEL="DEBUG", **LIVE)
    try:
        worker = await Worker.start(env, tmp_path)
        await worker.wait_for("ready", 60)
        await say(emu, "/start")
        # errors from the exchange on the way: a refused order (its reason is announced) and a 5xx after accept
        await inject(exchange.base_url, "reject")
        await inject(exchange.base_url, "error_after_accept")
        deadline = time.monotonic() + 120
        while len(await rows(url, "SELECT order_id FROM fills WHERE side = 'sell'")) < 2:
            assert time.monotonic() < deadline, "no trades"
            await asyncio.sleep(0.5)
        for command in ("/status", "/balance", "/orders", "/positions", "/reconcile", "/trades"):
            await say(emu, command)
        await asyncio.sleep(1.0)
        await stop(worker)
        output = worker.text() + await worker.stderr()
    finally:
        await exchange.stop()
    chat = emu.transcript(ADMIN)
    texts = [t for m in chat for t in (m.text, m.raw_text, *(r.raw_text for r in m.revisions)) if t]
    assert any("LIVE" in t for t in texts), texts[:5]
    assert len(texts) >= 7
    for secret in (KEY, SECRET):
        assert secret not in output, f"{secret!r} leaked: ...{output[max(0, output.find(secret) - 300):][:600]}"
        leaked = [t for t in texts if secret in t]
        assert not leaked, leaked
    # the scan is meaningful: the signed requests were logged at DEBUG, their key header redacted
    assert "X-MBX-APIKEY" in output, "ccxt's requests were not logged"
    assert "'X-MBX-APIKEY': '***'" in output, output[output.find("X-MBX-APIKEY") - 200:][:400]
    assert "New order rejected" in output
