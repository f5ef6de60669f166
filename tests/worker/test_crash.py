"""kill -9 at random moments: a real ``python -m bot`` trading two symbols against the fake exchange
(1m candles at 240x: four candles a second) is SIGKILLed at a random time after it was spawned (while
importing, migrating, restoring, catching up or trading), then started again; 50 times on SQLite and
a subset on PostgreSQL. After every kill the database must be consistent (ledger invariants,
positions vs fills, no duplicate orders, fills, decisions, deliveries or outbox events). At the end a
clean run delivers the alerts: every candle was decided exactly once over all the restarts, each
restart after a kill announced itself as unclean, and Telegram saw at most one repeated alert per kill
(a kill between a send and its bookkeeping: at-least-once at the Telegram edge, never more).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.conftest import check_url, fast_exchange
from tests.worker.rig import (
    ADMIN,
    SYMBOLS,
    TF_MS,
    Worker,
    consistency,
    decided_ts,
    rows,
    trading_toml,
    worker_env,
)

SPEED = 240.0  # 4 candles a second: a worker catches up faster than the market moves


def trials_for(db: str | None) -> int:
    return 50 if db is None else 10


@pytest.mark.timeout(400)
async def test_kill_9_at_random_moments_leaves_a_consistent_database_and_no_duplicates(
        tmp_path: Path, emu: BotApiEmulator, worker_db: str | None) -> None:
    url = check_url(worker_db, tmp_path)
    trials = trials_for(worker_db)
    rng = random.Random(20240607 + trials)
    exchange = await fast_exchange(tmp_path, candles=3000, speed=SPEED)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=worker_db,
                     trading_config=trading_toml(tmp_path / "trading.toml"), LOG_LEVEL="WARNING")
    started = time.monotonic()
    try:
        first = await Worker.start({**env, "LOG_LEVEL": "INFO"}, tmp_path)
        await first.wait_for("ready")
        emu.send_message(ADMIN, ADMIN, "/start")  # the admin's chat receives the alerts
        await emu.wait_for_messages(ADMIN, 1, timeout=10)
        replies = len(emu.transcript(ADMIN))
        await asyncio.sleep(1.0)
        first.kill()
        await first.finish()
        await consistency(url)
        for _ in range(trials):
            worker = await Worker.start(env, tmp_path)
            await asyncio.sleep(rng.uniform(0.2, 2.4))
            if worker.proc.returncode is not None:
                raise AssertionError(f"worker exited by itself: {await worker.stderr()}")
            worker.proc.send_signal(signal.SIGKILL)
            await worker.finish()
            await consistency(url)
        kills = trials + 1
        took = time.monotonic() - started

        # a clean run: catches up, delivers (Telegram's per-chat pace: about one a second), stops cleanly
        final = await Worker.start({**env, "LOG_LEVEL": "INFO"}, tmp_path)
        await final.wait_for("ready")
        await asyncio.sleep(4)
        final.proc.send_signal(signal.SIGTERM)
        assert await final.finish() == 0
        counts = await consistency(url)
    finally:
        await exchange.stop()

    for s in SYMBOLS:  # every candle after the first warm-up decided exactly once, across every kill
        ts = await decided_ts(url, s)
        assert ts == list(range(ts[0], ts[-1] + TF_MS, TF_MS)), f"{s}: a candle was skipped or decided twice"
    assert counts["fills"] >= 4, counts  # it did trade while being killed
    starts = [json.loads(p) if isinstance(p, str) else p
              for (p,) in await rows(url, "SELECT payload FROM outbox WHERE event_type = 'EngineStarted' "
                                          "OR kind = 'lifecycle' ORDER BY id")]
    starts = [p for p in starts if p.get("type") == "EngineStarted"]
    assert len(starts) >= 2 and not starts[0]["unclean_restart"]
    assert all(p["unclean_restart"] for p in starts[1:]), "a restart after kill -9 was not flagged as unclean"
    alerts = [m.text or "" for m in emu.transcript(ADMIN)[replies:]]
    assert any("did not shut down cleanly" in t for t in alerts)
    status = dict(await rows(url, "SELECT status, count(*) FROM deliveries GROUP BY status"))
    assert set(status) <= {"delivered", "pending"}, status  # nothing given up on; the rest still queued
    delivered = status.get("delivered", 0)
    repeated = len(alerts) - delivered
    assert 0 <= repeated <= kills, (len(alerts), delivered, kills)
    print(f"\n{trials} kill -9 trials in {took:.1f} s on "
          f"{'sqlite' if worker_db is None else 'postgresql'}: {counts['decisions']} decisions, "
          f"{counts['fills']} fills, {len(alerts)} alerts sent, {repeated} repeated, "
          f"{status.get('pending', 0)} still queued")
