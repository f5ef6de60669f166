"""Overlapping workers, as during a deploy: two real ``python -m bot`` processes on one database.

Only the lock holder trades; the second waits (and says why), takes no decision and sends nothing,
then takes over when the first exits, carrying on from the same state without deciding a candle twice.
Two workers on *different* databases but one bot token (a misconfiguration) get Telegram's 409
Conflict: both stay up, neither crashes nor spins on getUpdates.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.conftest import check_url, fast_exchange
from tests.worker.rig import SYMBOLS, TF_MS, Worker, consistency, decided_ts, rows, trading_toml, worker_env


@pytest.mark.timeout(120)
async def test_second_worker_waits_for_the_lock_and_takes_over(
        tmp_path: Path, emu: BotApiEmulator, worker_db: str | None) -> None:
    url = check_url(worker_db, tmp_path)
    exchange = await fast_exchange(tmp_path, candles=3000, speed=120.0)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=worker_db,
                     trading_config=trading_toml(tmp_path / "trading.toml"))
    first = second = third = None
    try:
        first = await Worker.start(env, tmp_path)
        await first.wait_for("ready")
        second = await Worker.start(env, tmp_path)
        waiting = await second.wait_for("engine_lock_waiting")
        assert "another worker" in waiting["why"]
        calls_before = len(emu.calls)
        decided_before = (await rows(url, "SELECT count(*) FROM decisions"))[0][0]
        await asyncio.sleep(3.0)  # both alive; only the first trades
        assert second.proc.returncode is None
        assert not second.logged("engine_started") and not second.logged("ready")
        assert (await rows(url, "SELECT count(*) FROM decisions"))[0][0] > decided_before  # the first trades on
        starts = await rows(url, "SELECT count(*) FROM outbox WHERE event_type = 'EngineStarted'")
        assert starts == [(1,)], starts  # the waiting worker wrote nothing
        assert not [c for c in emu.calls[calls_before:] if c.method == "getMe"]  # nor talked to Telegram

        t0 = time.monotonic()
        first.proc.send_signal(signal.SIGTERM)
        assert await first.finish() == 0
        took_over = await second.wait_for("engine_lock_acquired", timeout=15)
        await second.wait_for("ready", timeout=15)
        handover = time.monotonic() - t0
        assert took_over["waited_s"] > 3.0
        assert second.logged("engine_started")[0]["restored"] is True
        last = {s: (await decided_ts(url, s))[-1] for s in SYMBOLS}
        deadline = time.monotonic() + 15
        while any([(await decided_ts(url, s))[-1] <= last[s] for s in SYMBOLS]):  # the second one trades now
            assert time.monotonic() < deadline, "the second worker did not trade after taking over"
            await asyncio.sleep(0.1)
        third = await Worker.start(env, tmp_path)  # a waiting worker told to stop leaves at once, writing nothing
        await third.wait_for("engine_lock_waiting")
        t0 = time.monotonic()
        third.proc.send_signal(signal.SIGTERM)
        assert await third.finish() == 0
        assert time.monotonic() - t0 < 3 and third.logged("stopped_before_ready")
        assert not third.logged("engine_started")
        second.proc.send_signal(signal.SIGTERM)
        assert await second.finish() == 0
        assert (await rows(url, "SELECT count(*) FROM outbox WHERE event_type = 'EngineStarted'")) == [(2,)]
        for s in SYMBOLS:
            ts = await decided_ts(url, s)
            assert ts == list(range(ts[0], ts[-1] + TF_MS, TF_MS)), f"{s}: gap or duplicate at the hand-over"
        await consistency(url)
        assert handover < 10, handover
    finally:
        for w in (first, second, third):
            if w is not None:
                w.kill()
        await exchange.stop()


@pytest.mark.timeout(90)
async def test_two_pollers_of_one_token_get_409_and_neither_crashes_nor_spins(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    exchange = await fast_exchange(tmp_path, candles=3000, speed=60.0)
    workers: list[Worker] = []
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            env = worker_env(home, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                             trading_config=trading_toml(home / "trading.toml"))
            workers.append(await Worker.start(env, home))
        for w in workers:
            await w.wait_for("ready")
        calls_before = len(emu.calls)
        await asyncio.sleep(8.0)
        polls = sum(c.method == "getUpdates" for c in emu.calls[calls_before:])
        assert all(w.proc.returncode is None for w in workers), "a worker exited on 409 Conflict"
        conflicts = sum(len(w.logged("polling_conflict")) for w in workers)
        assert conflicts >= 1, "no 409 Conflict was seen"
        assert polls < 40, f"{polls} getUpdates in 8 s: spinning"
        for w in workers:
            w.proc.send_signal(signal.SIGTERM)
        assert [await w.finish() for w in workers] == [0, 0]
    finally:
        for w in workers:
            w.kill()
        await exchange.stop()


@pytest.mark.timeout(90)
async def test_losing_the_advisory_lock_session_stops_the_worker(
        tmp_path: Path, emu: BotApiEmulator, worker_db: str | None) -> None:
    """If the PostgreSQL session holding the lock dies (server restart, network cut), another worker may
    already trade: this one must stop (exit 1, the platform restarts it) rather than trade on."""
    if worker_db is None:
        pytest.skip("a file lock cannot be lost while its process lives")
    exchange = await fast_exchange(tmp_path, candles=3000, speed=60.0)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=worker_db,
                     trading_config=trading_toml(tmp_path / "trading.toml"))
    worker = await Worker.start(env, tmp_path)
    try:
        await worker.wait_for("ready")
        killed = await rows(worker_db, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'")
        assert killed == [(True,)], killed
        lost = await worker.wait_for("engine_lock_lost", timeout=20)
        assert "stopping" in lost["action"]
        assert await worker.finish(20) == 1
        assert worker.logged("stopped")
    finally:
        worker.kill()
        await exchange.stop()
