"""A fresh ``python -m bot`` worker trades at once: it decides the newest candle of its warm-up history
on its first poll, and the entry fills at the next candle's open, seen by its next scheduled poll. It
shows the fake exchange's ticker price, with its age, in /status, /positions and the order preview.

The market is arranged so that the newest closed candle when the fake exchange starts is an SMA cross
up (fast 3 over slow 8), and no other cross up follows: a worker that only warms up on its history
(the old behaviour) never fills in this test.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import numpy as np
import pytest

from engine.core.model import CandleArrays
from engine.feeds.csvio import write_csv
from sim.botapi import BotApiEmulator
from tests.worker.rig import ADMIN, START_MS, TF_MS, FakeExchangeProc, Worker, rows, worker_env

HISTORY = 400  # candles closed when the fake exchange starts; candle HISTORY - 1 is the cross up
SPEED = 6.0  # 1m candles last 10 s of wall time
POLL_S = 12.0  # the worker's update_interval: a little more than one candle
SLIPPAGE = 5.0 / 10_000  # the default paper slippage


def cross_at_the_end(n: int) -> CandleArrays:
    """A slow decline (fast SMA below slow), a jump up at candle HISTORY - 1 (the cross), then a slow rise."""
    i = np.arange(n, dtype=float)
    close = np.where(i < HISTORY - 1, 100.0 - 0.01 * i, 101.0 + 0.01 * (i - HISTORY))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * 1.0002
    low = np.minimum(open_, close) * 0.9998
    ts = START_MS + np.arange(n, dtype=np.int64) * TF_MS
    return CandleArrays(ts, open_, high, low, close, np.full(n, 5.0))


def config(path: Path) -> Path:
    path.write_text(f'[trading]\nsymbols = ["BTCUSDT"]\ntimeframe = "1m"\nupdate_interval = {POLL_S}\nfast = 3\n'
                    'slow = 8\n[feed]\nsource = "exchange"\nstale_after = 1000\nhistory = 300\n'
                    'ticker_interval = 0.5\n', encoding="utf-8")
    return path


async def first_fill(url: str, timeout: float) -> tuple[str, str, int, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await rows(url, "SELECT order_id, side, ts, price FROM fills ORDER BY id LIMIT 1")
        if found:
            order_id, side, ts, price = found[0]
            return str(order_id), str(side), int(ts), float(price)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no fill within {timeout} s")


async def ask(emu: BotApiEmulator, text: str) -> str:
    before = len(emu.transcript(ADMIN))
    emu.send_message(ADMIN, ADMIN, text)
    replies = await emu.wait_for_messages(ADMIN, 1, since=before, timeout=10)
    return replies[0].text or ""


@pytest.mark.timeout(90)
async def test_a_fresh_worker_fills_within_one_poll_interval_and_shows_the_ticker(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    market = tmp_path / "market" / "BTC_USDT-1m.csv"
    market.parent.mkdir()
    candles = cross_at_the_end(HISTORY + 40)
    write_csv(market, candles)
    exchange = await FakeExchangeProc.start([market], speed=SPEED, history=HISTORY)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=config(tmp_path / "trading.toml"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    worker = None
    try:
        t0 = time.monotonic()
        worker = await Worker.start(env, tmp_path)
        await worker.wait_for("engine_started")
        started = time.monotonic()
        fill = await first_fill(url, timeout=POLL_S + 8.0)
        filled = time.monotonic()
        await worker.wait_for("ready")
        status = await ask(emu, "/status")
        preview = await ask(emu, "/buy BTCUSDT 100")  # the confirmation prompt: left unanswered
        positions = await ask(emu, "/positions")
        worker.proc.terminate()
        assert await worker.finish() == 0
    finally:
        if worker is not None:
            worker.kill()
        await exchange.stop()

    # the entry decided on the warm-up's newest candle, filled at the next candle's open
    cross_ts = int(candles.ts[HISTORY - 1])
    assert fill[:3] == (f"BTCUSDT-{cross_ts}-entry", "buy", cross_ts + TF_MS)
    tick = 0.0001  # the fake exchange's price tick for a market near 100: a buy's price is rounded up to it
    assert fill[3] == pytest.approx(candles.open[HISTORY] * (1 + SLIPPAGE), abs=tick)
    assert round(fill[3] / tick, 6).is_integer()
    assert filled - started <= POLL_S + 2.0, (f"first fill {filled - started:.1f} s after the engine started "
                                             f"({filled - t0:.1f} s after the process started)")
    # /status: the ticker's price and its age (the ticker is asked every 0.5 s)
    line = next(x for x in status.splitlines() if x.startswith("• BTCUSDT"))
    assert re.search(r": [\d,.]+ \(ticker, \d+s ago\)", line), line
    assert re.search(r"@ [\d,.]+, now [\d,.]+ \(ticker, \d+s ago\): ", positions), positions
    assert re.search(r"at the next candle's open \(last price [\d,.]+ \(ticker, \d+s ago\)\)", preview), preview
