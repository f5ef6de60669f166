"""TRADING_MODE=live in the real worker (``python -m bot``) against the fake exchange over HTTP (signed Binance
requests through the real ccxt): the orders the strategy decides reach the exchange once each, the books hold what
the exchange filled, and paper and live make the same trades from the same candles."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sim.botapi import BotApiEmulator
from tests.worker.conftest import check_url, sqlite_url
from tests.worker.rig import (
    ADMIN,
    SYMBOLS,
    TOKEN,
    FakeExchangeProc,
    Worker,
    rows,
    trading_toml,
    worker_env,
    write_market,
)
from tests.worker.test_sigterm import say, wait_texts

KEY, SECRET = "AK-live-worker-5e1f", "SK-live-worker-9c0a7b"
LIVE = {"TRADING_MODE": "live", "EXCHANGE_API_KEY": KEY, "EXCHANGE_API_SECRET": SECRET}
QUOTE = "USDT"
FUNDS = 10_000.0
# the parity run: 45 candles a minute (a worker's decision reaches the exchange well within its candle, even on a
# busy machine), from candle 428 of the market, five candles before its first SMA(3, 8) cross
PARITY_SPEED, PARITY_START = 45.0, 428


def live_toml(path: Path, *, extra: str = "", symbols: tuple[str, ...] = SYMBOLS) -> Path:
    trading_toml(path, symbols=symbols)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "[live]\nmax_order_notional = 5000\nmax_daily_notional = 1000000\n" + extra,
                    encoding="utf-8")
    return path


async def control(url: str, method: str, path: str, **params: Any) -> Any:
    async with aiohttp.ClientSession() as session:
        call = session.get(url + path, params=params) if method == "GET" else session.post(url + path, json=params)
        async with call as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def exchange_state(url: str) -> tuple[dict[str, float], list[dict[str, Any]]]:
    balances = (await control(url, "GET", "/control/balances", api_key=KEY))["balances"]
    orders = await control(url, "GET", "/control/orders", api_key=KEY)
    totals = {asset: float(b["free"]) + float(b["locked"]) for asset, b in balances.items()}
    return totals, orders


@contextlib.asynccontextmanager
async def second_emulator() -> AsyncIterator[BotApiEmulator]:
    """A Bot API emulator of its own (two bots polling one would take each other's updates)."""
    emulator = BotApiEmulator(token=TOKEN)
    async with emulator.run():
        yield emulator


def paused_refusals(worker: Worker) -> list[dict[str, Any]]:
    return [e for e in worker.logged("live_order.refused") if "paused" in e.get("reason", "")]


async def exchange_buys(url: str) -> int:
    return sum(1 for o in (await exchange_state(url))[1] if o["side"] == "BUY")


async def stop(worker: Worker) -> None:
    if worker.proc.returncode is None:
        worker.proc.send_signal(signal.SIGTERM)
    assert await worker.finish(30) == 0, await worker.stderr()


async def wait_rows(url: str, query: str, least: int, timeout: float) -> list[tuple[Any, ...]]:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(Exception):  # the worker may not have created its tables yet
                found = await rows(url, query)
                if len(found) >= least:
                    return found
            await asyncio.sleep(0.2)


async def test_live_worker_sends_each_order_once_and_its_books_equal_the_exchange(
        tmp_path: Path, emu: BotApiEmulator, worker_db: str | None) -> None:
    url = check_url(worker_db, tmp_path)
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 3000), speed=240.0,
                                            extra=["--account", f"{KEY}:{SECRET}", "--balance", f"{QUOTE}={FUNDS}"])
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=worker_db,
                     trading_config=live_toml(tmp_path / "trading.toml"), **LIVE)
    worker: Worker | None = None
    try:
        worker = await Worker.start(env, tmp_path)
        await worker.wait_for("ready", 60)
        await wait_rows(url, "SELECT order_id FROM fills WHERE side = 'sell'", 2, 90)  # entries and exits
        await stop(worker)
        balances, orders = await exchange_state(exchange.base_url)
    finally:
        if worker is not None:
            worker.kill()  # a failure above must not leave the worker running
        await exchange.stop()

    ours = await rows(url, "SELECT client_id, symbol, side, state, filled FROM live_orders")
    assert ours, "no live order was recorded"
    sent = Counter(o["clientOrderId"] for o in orders)
    assert all(n == 1 for n in sent.values()), f"duplicate orders on the exchange: {sent}"
    assert set(sent) == {client_id for client_id, *_ in ours}, "the books' orders are not the exchange's"
    assert all(state == "FILLED" for *_, state, _ in ours)
    assert "mode=live" not in worker.text()  # (logs are JSON: the mode is a field)
    assert worker.logged("ready")[0]["mode"] == "live"

    # the books hold what the exchange holds: per base asset, and the cash within the quote's rounding
    net: Counter[str] = Counter()
    for symbol, side, qty in await rows(url, "SELECT symbol, side, quantity FROM fills"):
        net[symbol[:-len(QUOTE)]] += qty if side.upper() == "BUY" else -qty
    for base, held in net.items():
        assert held == pytest.approx(balances.get(base, 0.0), abs=1e-8), (base, held, balances)
    (cash,) = (await rows(url, "SELECT balance_after FROM cash_ledger ORDER BY id DESC LIMIT 1"))[0]
    assert cash == pytest.approx(balances[QUOTE], abs=1e-6)
    text = worker.text() + await worker.stderr()
    assert KEY not in text and SECRET not in text


async def test_paper_and_live_make_the_same_trades_from_the_same_candles(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    """One fake exchange, its clock held until both workers have decided their first candle, its ticker and market
    fills at the open candle's open (where a paper fill is made), no fees or slippage on either side, no stops (a
    stop is checked on candle lows in paper and on ticker prices live), one symbol (with two, an order's size
    depends on the other's mark, which depends on which symbol's task ran first): then every fill is the same
    order, side, quantity and price."""
    exchange = await FakeExchangeProc.start(
        write_market(tmp_path / "market", 3000), speed=PARITY_SPEED, history=PARITY_START,
        extra=["--hold", "--ticker-at", "open", "--commission", "0", "--account", f"{KEY}:{SECRET}",
               "--balance", f"{QUOTE}={FUNDS}"])
    no_costs = "[paper]\nfee_bps = 0\nslippage_bps = 0\n"
    workers: dict[str, Worker] = {}
    urls: dict[str, str] = {}
    stack = contextlib.AsyncExitStack()
    try:
        for mode in ("paper", "live"):
            home = tmp_path / mode
            home.mkdir()
            config = live_toml(home / "trading.toml", extra=no_costs, symbols=SYMBOLS[:1])
            config.write_text(config.read_text(encoding="utf-8").replace(
                "[risk]\n", "[risk]\nstop_loss_pct = 0\n"), encoding="utf-8")
            emulator = emu if mode == "paper" else await stack.enter_async_context(second_emulator())
            env = worker_env(home, emulator_url=emulator.base_url, exchange_url=exchange.base_url, db=None,
                             trading_config=config, **(LIVE if mode == "live" else {}))
            workers[mode] = await Worker.start(env, home)
            urls[mode] = sqlite_url(home)
        for mode, worker in workers.items():
            await worker.wait_for("ready", 60)
            await wait_rows(urls[mode], "SELECT symbol FROM decisions", 1, 60)  # its first candle
        await control(exchange.base_url, "POST", "/control/clock/release")
        await wait_rows(urls["paper"], "SELECT order_id FROM fills WHERE side = 'sell'", 2, 180)
        await wait_rows(urls["live"], "SELECT order_id FROM fills WHERE side = 'sell'", 2, 30)
        await asyncio.sleep(1.0)
        for worker in workers.values():
            await stop(worker)
    finally:
        for worker in workers.values():
            worker.kill()
        await exchange.stop()
        await stack.aclose()

    query = "SELECT order_id, side, quantity, price FROM fills WHERE symbol = '{}' ORDER BY order_id"
    compared = 0
    for symbol in SYMBOLS[:1]:  # each run stopped at its own moment: the fills both made, in order
        paper, live = [await rows(urls[m], query.format(symbol)) for m in ("paper", "live")]
        n = min(len(paper), len(live))
        assert [r[:2] for r in paper[:n]] == [r[:2] for r in live[:n]], (symbol, paper, live)
        for (order_id, _, qty, price), (_, _, live_qty, live_price) in zip(paper[:n], live[:n], strict=True):
            assert live_qty == pytest.approx(qty, rel=1e-12, abs=1e-12), order_id
            assert live_price == pytest.approx(price, rel=1e-12), order_id
        compared += n
    assert compared >= 4, "too few trades to compare"


async def test_balances_changed_behind_the_agents_back_pause_entries_until_an_admin_accepts(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    """The first live start is announced (the account's balances, the limits). A person moves coins on the account:
    the next reconciliation names the asset and both amounts (an alert and /status), the symbol's entries are
    refused without reaching the exchange, and /reconcile accept (confirmed)
    adopts the exchange's figure, after which the agent enters again."""
    url = sqlite_url(tmp_path)
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 3000), speed=240.0,
                                            extra=["--account", f"{KEY}:{SECRET}", "--balance", f"{QUOTE}={FUNDS}"])
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=live_toml(tmp_path / "trading.toml", symbols=SYMBOLS[:1]), **LIVE)
    base = SYMBOLS[0][:-len(QUOTE)]
    worker: Worker | None = None
    try:
        worker = await Worker.start(env, tmp_path)
        await worker.wait_for("ready", 60)
        await say(emu, "/start")
        await worker.wait_for("reconciled", 30)
        announced = await wait_texts(emu, 0, "trading started on", timeout=30)  # the first live start, to admins
        assert any(f"{QUOTE} 10000" in t and "max order 5000" in t for t in announced), announced
        since = len(emu.transcript(ADMIN))
        await say(emu, "/balance")  # the exchange's balances beside the books'
        texts = await wait_texts(emu, since, "LIVE balance", timeout=30)
        assert any("On Binance (read" in t and f"• {QUOTE} " in t and "books" in t for t in texts), texts
        balances, _ = await exchange_state(exchange.base_url)
        moved = balances.get(base, 0.0) + 0.5
        await control(exchange.base_url, "POST", "/control/balances", api_key=KEY, balances={base: str(moved)})
        since = len(emu.transcript(ADMIN))
        await say(emu, "/reconcile")
        texts = await wait_texts(emu, since, "Books disagree", "the exchange", timeout=30)
        assert any(base in t and "+0.5" in t for t in texts), texts
        assert base in await say(emu, "/status")

        # the next entry is refused before it reaches the exchange
        async with asyncio.timeout(90):
            while not paused_refusals(worker):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        _, orders = await exchange_state(exchange.base_url)
        refused = paused_refusals(worker)[0]
        assert refused["order_id"] not in {o["clientOrderId"] for o in orders}
        buys = sum(1 for o in orders if o["side"] == "BUY")

        since = len(emu.transcript(ADMIN))
        await say(emu, "/reconcile accept", press=True)
        await wait_texts(emu, since, "Books agree", timeout=30)
        async with asyncio.timeout(90):  # trading resumes: the next entry reaches the exchange
            while await exchange_buys(exchange.base_url) <= buys:  # noqa: ASYNC110
                await asyncio.sleep(0.3)
        since = len(emu.transcript(ADMIN))
        await say(emu, "/reconcile")
        await wait_texts(emu, since, "the books agree with", timeout=30)
        await stop(worker)
    finally:
        if worker is not None:
            worker.kill()  # a failure above must not leave the worker running
        await exchange.stop()
    assert await rows(url, "SELECT count(*) FROM live_orders WHERE state != 'FILLED'") == [(0,)]
