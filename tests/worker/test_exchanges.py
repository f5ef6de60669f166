"""The worker through ccxt on the exchange it is configured for: unchanged on OKX (another protocol than
Binance's), and a symbol or an interval the exchange does not offer is one line and exit 2."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import (
    ADMIN,
    START_MS,
    SYMBOLS,
    FakeExchangeProc,
    Worker,
    decided_ts,
    rows,
    trading_toml,
    worker_env,
    write_market,
)


@pytest.mark.timeout(120)
async def test_the_worker_trades_on_okx_as_on_binance(tmp_path: Path, emu: BotApiEmulator) -> None:
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 700), speed=240.0,
                                            personality="okx")
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=trading_toml(tmp_path / "trading.toml"), EXCHANGE="okx")
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    worker = await Worker.start(env, tmp_path)
    try:
        await worker.wait_for("ready", timeout=60)
        (loaded,) = worker.logged("markets_loaded")
        assert loaded["exchange"] == "okx"
        deadline = time.monotonic() + 40
        while len(await decided_ts(url, SYMBOLS[0])) < 20:  # warm-up's newest, then candles as they close
            assert time.monotonic() < deadline, "the worker decided too few candles on OKX"
            await asyncio.sleep(0.2)
        decided = await decided_ts(url, SYMBOLS[1])
        assert decided and all(ts >= START_MS for ts in decided)
        assert decided == sorted(set(decided))  # each once, in order
        before = len(emu.transcript(ADMIN))
        emu.send_message(ADMIN, ADMIN, "/status")
        (reply, *_) = await emu.wait_for_messages(ADMIN, 1, since=before, timeout=15)
        assert "BTCUSDT" in (reply.text or "")
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.finish() == 0
        assert "Traceback" not in worker.text() and not worker.logged("feed_error")
    finally:
        worker.kill()
        await exchange.stop()


@pytest.mark.timeout(90)
async def test_a_paper_order_meets_the_exchanges_rules_before_it_is_placed(tmp_path: Path, emu: BotApiEmulator) -> None:
    """The fake Binance's markets (minimum order 5 USDT) drive paper trading: a 1 USDT buy is refused with the
    rule and the numbers before anything is placed, and a fill's quantity is a whole number of the lot step."""
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 700), speed=60.0)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=trading_toml(tmp_path / "trading.toml"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    worker = await Worker.start(env, tmp_path)
    try:
        await worker.wait_for("ready", timeout=60)
        deadline = time.monotonic() + 30
        while not await decided_ts(url, "BTCUSDT"):  # a price to check the order at
            assert time.monotonic() < deadline, "no candle decided"
            await asyncio.sleep(0.1)
        before = len(emu.transcript(ADMIN))
        emu.send_message(ADMIN, ADMIN, "/buy BTCUSDT 1")
        (reply, *_) = await emu.wait_for_messages(ADMIN, 1, since=before, timeout=15)
        assert (reply.text or "").startswith("Refused: 1 USDT is below the exchange's minimum order of 5 USDT"), \
            reply.text
        assert not reply.reply_markup  # nothing to confirm
        assert await rows(url, "SELECT count(*) FROM orders") == [(0,)]
        deadline = time.monotonic() + 40
        while not (fills := await rows(url, "SELECT quantity FROM fills")):
            assert time.monotonic() < deadline, "no fill"
            await asyncio.sleep(0.2)
        step = 0.00001  # the fake's default lot step for a market priced like these
        assert all(abs(q / step - round(q / step)) < 1e-6 for (q,) in fills), fills
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.finish() == 0
    finally:
        worker.kill()
        await exchange.stop()


@pytest.mark.timeout(60)
async def test_a_symbol_the_exchange_does_not_list_is_one_line_naming_close_ones_exit_2(tmp_path: Path) -> None:
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 600), speed=1.0)
    try:
        env = worker_env(tmp_path, emulator_url="http://127.0.0.1:9", exchange_url=exchange.base_url, db=None,
                         trading_config=trading_toml(tmp_path / "t.toml", symbols=("BTCUSDT", "ETHUSDX")))
        proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot"], env=env, cwd=tmp_path,
                                       capture_output=True, text=True, timeout=45)
    finally:
        await exchange.stop()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr == ("configuration error: ETHUSDX is not a spot market on binance; "
                           "close matches: ETH/USDT, BTC/USDT\n")
    assert "Traceback" not in proc.stdout


def test_an_interval_the_exchange_lacks_is_one_line_exit_2(tmp_path: Path) -> None:
    toml = trading_toml(tmp_path / "t.toml")
    toml.write_text(toml.read_text(encoding="utf-8").replace('timeframe = "1m"', 'timeframe = "3m"'),
                    encoding="utf-8")
    env = worker_env(tmp_path, emulator_url="http://127.0.0.1:9", exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, EXCHANGE="kraken")
    proc = subprocess.run([sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=45)
    assert proc.returncode == 2
    assert proc.stderr.startswith("configuration error: timeframe '3m' is not offered by kraken; it offers 1m, 5m")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stdout
