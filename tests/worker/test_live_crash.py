"""kill -9 at random moments while trading LIVE: a real ``python -m bot`` (TRADING_MODE=live) trading two symbols
against the fake exchange over HTTP (signed Binance requests through the real ccxt; 1m candles at 240x) is
SIGKILLed at a random time after it was spawned (importing, migrating, loading the markets, resolving the last
run's orders, trading, sending), then started again: 50 times on SQLite and 10 on PostgreSQL. The moment is drawn
from spawn to four seconds past the first start's time to ready, so on any machine about half the kills land in
the start-up and half while trading. Some kills land
while an order's create request hangs after the exchange accepted it (a ``hang_after_accept`` fault injected for
the next order): the order's row is SUBMITTING at the kill.

After every kill: no client order id twice on the exchange, every exchange order a ``live_orders`` row, no intent
with two orders, and no order booked beyond what the exchange filled of it. At the end clean runs (stopped by
SIGTERM) until no order is left unresolved: each order the exchange filled is booked exactly once, the hung ones
included, and the books equal the exchange (per base asset the net filled quantity; the cash its USDT).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.conftest import check_url
from tests.worker.rig import (
    SYMBOLS,
    FakeExchangeProc,
    Worker,
    ledger_checks,
    rows,
    worker_env,
    write_market,
)
from tests.worker.test_live_trading import FUNDS, KEY, LIVE, QUOTE, SECRET, control, exchange_state, live_toml

SPEED = 240.0  # 4 candles a second: an SMA(3, 8) cross on the wavy market every few seconds per symbol
HANG_EVERY = 5  # every 5th trial: the next order's create hangs after the exchange accepted it
EPS = 1e-9


def trials_for(db: str | None) -> int:
    return 50 if db is None else 10


def base_of(symbol: str) -> str:
    return symbol[:-len(QUOTE)]


async def exchange_fills(url: str) -> dict[str, tuple[float, float]]:
    """Per client order id: (the base quantity the account received or gave, the quote commission)."""
    orders = await control(url, "GET", "/control/orders", api_key=KEY)
    trades = await control(url, "GET", "/control/trades", api_key=KEY)
    by_id = {o["orderId"]: o for o in orders}
    out: dict[str, tuple[float, float]] = {o["clientOrderId"]: (0.0, 0.0) for o in orders}
    for t in trades:
        order = by_id[t["orderId"]]
        qty, fee = out[order["clientOrderId"]]
        qty += float(t["qty"])
        if t["commissionAsset"] == base_of(order["symbol"]):
            qty -= float(t["commission"])
        elif t["commissionAsset"] == QUOTE:
            fee += float(t["commission"])
        out[order["clientOrderId"]] = (qty, fee)
    return out


async def duplicates(url: str, exchange_url: str) -> int:
    """Orders beyond one per client id on the exchange, exchange orders without a ``live_orders`` row, and intents
    with more than one row: 0 when every order was sent once."""
    _, orders = await exchange_state(exchange_url)
    sent = Counter(o["clientOrderId"] for o in orders)
    ours = await rows(url, "SELECT client_id, intent_id FROM live_orders")
    intents = Counter(intent for _, intent in ours)
    extra = sum(n - 1 for n in sent.values()) + sum(n - 1 for n in intents.values())
    return extra + len(set(sent) - {c for c, _ in ours})


async def overbooked(url: str, exchange_url: str) -> list[tuple[str, float, float]]:
    """Orders whose booked quantity exceeds what the exchange filled of them (net of a base-asset commission)."""
    filled = await exchange_fills(exchange_url)
    booked = await rows(url, "SELECT l.client_id, sum(f.quantity) FROM live_orders l JOIN fills f "
                             "ON f.order_id = l.intent_id GROUP BY l.client_id")
    return [(c, q, filled.get(c, (0.0, 0.0))[0]) for c, q in booked
            if q > filled.get(c, (0.0, 0.0))[0] + EPS * max(1.0, q)]


async def books_difference(url: str, exchange_url: str) -> tuple[float, dict[str, tuple[float, float]]]:
    """The largest difference between the books and the exchange: per base asset the net filled quantity against
    the account's total, the books' cash against its USDT; and each asset's (books, exchange)."""
    balances, _ = await exchange_state(exchange_url)
    net = {base_of(s): 0.0 for s in SYMBOLS}
    for symbol, side, qty in await rows(url, "SELECT symbol, side, quantity FROM fills"):
        net[base_of(symbol)] += float(qty) if side.upper() == "BUY" else -float(qty)
    last = await rows(url, "SELECT balance_after FROM cash_ledger ORDER BY id DESC LIMIT 1")
    figures = {base: (held, balances.get(base, 0.0)) for base, held in net.items()}
    figures[QUOTE] = (float(last[0][0]) if last else FUNDS, balances[QUOTE])
    return max(abs(a - b) for a, b in figures.values()), figures


async def saved_state(url: str) -> dict[str, Any]:
    found = await rows(url, "SELECT core_state FROM engine_state")
    if not found or found[0][0] is None:
        return {}
    state = found[0][0]
    return dict(json.loads(state) if isinstance(state, str) else state)


async def saved_sent(url: str) -> dict[str, Any]:
    """The trader's ``sent`` table in the saved engine state (orders the books committed to and not done)."""
    return dict(((await saved_state(url)).get("live") or {}).get("sent") or {})


async def live_consistency(url: str) -> dict[str, int]:
    """The ledger's invariants (as ``rig.consistency``), the positions plus the dust (what a sale of the whole
    position left under the amount step, kept in the saved state) equal to the net fills, and no duplicate
    orders, fills, decisions or deliveries; a few counts."""
    await ledger_checks(url)
    net: dict[str, float] = {}
    for symbol, side, qty in await rows(url, "SELECT symbol, side, quantity FROM fills"):
        net[symbol] = net.get(symbol, 0.0) + (float(qty) if side.upper() == "BUY" else -float(qty))
    held = {str(s): float(q) for s, q in await rows(url, "SELECT symbol, quantity FROM positions")}
    for row in (await saved_state(url)).get("symbols") or []:
        held[row["symbol"]] = held.get(row["symbol"], 0.0) + float(row.get("dust") or 0.0)
    for symbol in set(net) | set(held):
        ours, theirs = net.get(symbol, 0.0), held.get(symbol, 0.0)
        assert abs(ours - theirs) < 1e-9 * max(1.0, abs(ours)), (symbol, ours, theirs)
    for query in ("SELECT order_id FROM fills GROUP BY order_id HAVING count(*) > 1",
                  "SELECT symbol, candle_ts FROM decisions GROUP BY symbol, candle_ts HAVING count(*) > 1",
                  "SELECT outbox_id, chat_id FROM deliveries GROUP BY outbox_id, chat_id HAVING count(*) > 1",
                  "SELECT client_id FROM live_orders GROUP BY client_id HAVING count(*) > 1"):
        assert await rows(url, query) == [], query
    (fills,), = await rows(url, "SELECT count(*) FROM fills")
    (decisions,), = await rows(url, "SELECT count(*) FROM decisions")
    return {"fills": int(fills), "decisions": int(decisions)}


async def settled(url: str) -> bool:
    """No order unresolved or unbooked: every ``live_orders`` row final and the books' ``sent`` table empty."""
    open_rows = await rows(url, "SELECT count(*) FROM live_orders WHERE state NOT IN "
                                "('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'NOT_PLACED')")
    return open_rows[0][0] == 0 and not await saved_sent(url)


async def wait_new_order(exchange_url: str, known: set[str], timeout: float) -> str | None:
    """The client id of the first exchange order not in ``known`` (None if none came within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, orders = await exchange_state(exchange_url)
        new = sorted((o["orderId"], o["clientOrderId"]) for o in orders if o["clientOrderId"] not in known)
        if new:
            return str(new[0][1])
        await asyncio.sleep(0.05)
    return None


@pytest.mark.timeout(900)
async def test_live_kill_9_at_random_moments_sends_each_order_once_and_books_what_the_exchange_filled(
        tmp_path: Path, emu: BotApiEmulator, worker_db: str | None) -> None:
    url = check_url(worker_db, tmp_path)
    trials = trials_for(worker_db)
    rng = random.Random(20261202 + trials)
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 3000), speed=SPEED,
                                            extra=["--account", f"{KEY}:{SECRET}", "--balance", f"{QUOTE}={FUNDS}"])
    config = live_toml(tmp_path / "trading.toml", extra="unknown_grace = 5\n")
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=worker_db,
                     trading_config=config, **LIVE)
    hung: dict[str, str] = {}  # client id -> its row's state at the kill
    worst_dup = 0
    kills = 0
    trading = 0  # kills after the worker was ready (trading), the others while it was starting
    started = time.monotonic()
    try:
        first = await Worker.start(env, tmp_path)  # the tables exist from here on
        await first.wait_for("ready", 90)
        ready_s = time.monotonic() - started
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        first.kill()
        await first.finish()
        kills += 1
        for trial in range(trials):
            hang = trial % HANG_EVERY == HANG_EVERY - 1
            if hang:
                await control(exchange.base_url, "POST", "/control/faults", fault="hang_after_accept",
                              endpoint="order", times=1)
                known = {o["clientOrderId"] for o in (await exchange_state(exchange.base_url))[1]}
            worker = await Worker.start(env, tmp_path)
            if hang:
                client_id = await wait_new_order(exchange.base_url, known, 60)
                assert client_id is not None, "no order was sent within a minute"
                await asyncio.sleep(rng.uniform(0.0, 2.0))  # the create request hangs (ccxt gives up after 10 s)
            else:  # from spawn to well after ready (the start-up takes seconds on a busy machine): about half the
                await asyncio.sleep(rng.uniform(0.3, ready_s + 4.0))  # kills land in the start-up, half in trading
            if worker.proc.returncode is not None:
                raise AssertionError(f"worker exited by itself: {worker.text()[-2000:]}{await worker.stderr()}")
            worker.proc.send_signal(signal.SIGKILL)
            await worker.finish()
            kills += 1
            trading += bool(worker.logged("ready"))
            if hang:
                state = await rows(url, f"SELECT state FROM live_orders WHERE client_id = '{client_id}'")
                hung[str(client_id)] = state[0][0] if state else "no row"
            await live_consistency(url)
            dup = await duplicates(url, exchange.base_url)
            worst_dup = max(worst_dup, dup)
            assert dup == 0, f"trial {trial}: {dup} duplicate orders"
            assert await overbooked(url, exchange.base_url) == [], f"trial {trial}: booked beyond the fills"
        took = time.monotonic() - started

        # clean runs until every order is resolved and booked, each stopped by SIGTERM (a stop may leave an order
        # mid-submit: the next run resolves it)
        clean_runs = 0
        for clean_runs in range(1, 6):  # noqa: B007
            final = await Worker.start(env, tmp_path)
            await final.wait_for("ready", 90)
            await final.wait_for("reconciled", 60)
            await asyncio.sleep(2.0)
            final.proc.send_signal(signal.SIGTERM)
            assert await final.finish(30) == 0, await final.stderr()
            if await settled(url):
                break
        else:
            raise AssertionError("orders still unresolved after five clean runs")
        counts = await live_consistency(url)
        dup = await duplicates(url, exchange.base_url)
        difference, figures = await books_difference(url, exchange.base_url)
        filled = await exchange_fills(exchange.base_url)
        booked = dict(await rows(url, "SELECT l.client_id, sum(f.quantity) FROM live_orders l JOIN fills f "
                                      "ON f.order_id = l.intent_id GROUP BY l.client_id"))
        states = dict(await rows(url, "SELECT client_id, state FROM live_orders"))
        _, orders = await exchange_state(exchange.base_url)
    finally:
        await exchange.stop()

    mid_submit = [c for c, s in hung.items() if s == "SUBMITTING"]
    print(f"\nlive: {kills} kill -9 trials in {took:.1f} s on {'sqlite' if worker_db is None else 'postgresql'}: "
          f"{len(orders)} exchange orders ({len(filled) - len([q for q, _ in filled.values() if q == 0])} filled), "
          f"{counts['fills']} fills booked; {trading} kills while trading, {len(mid_submit)} of them mid-submit "
          f"(hang after accept, of {len(hung)}); "
          f"{dup} duplicate orders, max books-exchange difference {difference:.3g} "
          f"({', '.join(f'{a} {o:.8f}/{t:.8f}' for a, (o, t) in sorted(figures.items()))}), "
          f"{clean_runs} clean run(s) to settle; the first start took {ready_s:.1f} s to ready")
    assert dup == 0
    for client_id, (qty, _) in filled.items():  # every fill booked, exactly once
        assert booked.get(client_id, 0.0) == pytest.approx(qty, rel=1e-12, abs=1e-12), client_id
    assert set(booked) <= set(filled)
    assert len(mid_submit) >= max(1, len(hung) // 2), f"the hang kills did not land mid-submit: {hung}"
    for client_id in hung:  # found by its client id after the restart, and booked once
        assert states[client_id] == "FILLED" and client_id in booked, (client_id, states.get(client_id))
    for asset, (ours, theirs) in figures.items():
        assert ours == pytest.approx(theirs, abs=1e-6 if asset == QUOTE else 1e-8), (asset, ours, theirs)
    assert len(orders) >= trials // 2, f"too few orders while being killed: {len(orders)}"
