"""Every command end to end: the real engine and the real PTB Application on the Bot API emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import COMMANDS, GENERIC_ERROR
from engine.core.types import StepRecord, Trade, trade_pnl_pct
from sim.botapi import FaultKind
from tests.bot.harness import ADMIN, VIEWER, Harness, running_bot

ADMIN_EXAMPLES = {
    "start": "/start", "help": "/help", "status": "/status", "balance": "/balance", "positions": "/positions",
    "trades": "/trades 5", "pnl": "/pnl week", "daily": "/daily 3", "performance": "/performance",
    "signal": "/signal BTCUSDT", "model": "/model", "chart": "/chart ETHUSDT 50", "equity": "/equity all",
    "health": "/health", "version": "/version", "risk": "/risk", "alerts": "/alerts", "buy": "/buy BTCUSDT 100",
    "sell": "/sell BTCUSDT", "close": "/close BTCUSDT", "pause": "/pause", "resume": "/resume",
    "retrain": "/retrain BTCUSDT", "orders": "/orders", "cancel": "/cancel BTCUSDT-1-manual-buy",
    "strategy": "/strategy", "apitoken": "/apitoken", "reconcile": "/reconcile",
}


def test_every_command_has_an_example() -> None:
    assert set(ADMIN_EXAMPLES) == {c.name for c in COMMANDS}


@pytest.mark.parametrize("name", sorted(ADMIN_EXAMPLES))
async def test_admin_gets_an_answer_to_every_command(bot: Harness, name: str) -> None:
    await bot.candle()
    replies = await bot.ask(ADMIN, ADMIN, ADMIN_EXAMPLES[name])
    assert len(replies) == 1
    assert replies[0].text and "Not authorised" not in replies[0].text
    assert bot.errors_seen == 0


@pytest.mark.parametrize("text", ["/trades x", "/pnl year", "/daily 0", "/status now", "/buy BTCUSDT",
                                  "/buy DOGEUSDT 10", "/close", "/risk nonsense 1", "/chart BTCUSDT 5",
                                  "/alerts feed loud", "/signal A B", "/equity 7"])
async def test_bad_arguments_get_a_specific_error_and_the_usage(bot: Harness, text: str) -> None:
    (reply,) = await bot.ask(ADMIN, ADMIN, text)
    assert reply.text is not None and "Usage: /" in reply.text
    assert bot.errors_seen == 0


async def test_unknown_command_points_to_help(bot: Harness) -> None:
    assert [m.text for m in await bot.ask(ADMIN, ADMIN, "/frobnicate")] == ["Unknown command. Send /help for the list."]


async def test_hostile_arguments_are_shown_escaped(bot: Harness) -> None:
    hostile = "<b>x</b>&amp;*_`["
    (reply,) = await bot.ask(ADMIN, ADMIN, f"/buy {hostile} 10")
    assert reply.parse_mode == "HTML"
    assert reply.text is not None and hostile in reply.text  # shown literally: nothing was interpreted
    assert reply.entities == []


async def test_status_refresh_edits_in_place_and_ignores_unchanged(bot: Harness) -> None:
    await bot.candle()
    (status,) = await bot.ask(VIEWER, VIEWER, "/status")
    assert (await bot.press(VIEWER, VIEWER, status, "Refresh")).text == "Already up to date."
    assert not bot.message(VIEWER, status.message_id).edited
    await bot.candle()
    assert (await bot.press(VIEWER, VIEWER, status, "Refresh")).text == "Refreshed."
    fresh = bot.message(VIEWER, status.message_id)
    assert fresh.edited and fresh.text != fresh.revisions[0].text and fresh.button_labels() == ["Refresh"]
    assert bot.errors_seen == 0


@pytest.mark.parametrize("command", ["/balance", "/daily 3"])
async def test_balance_and_daily_have_refresh(bot: Harness, command: str) -> None:
    await bot.candle()
    (message,) = await bot.ask(ADMIN, ADMIN, command)
    assert (await bot.press(ADMIN, ADMIN, message, "Refresh")).text == "Already up to date."
    (prompt,) = await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 3000")
    await bot.press(ADMIN, ADMIN, prompt, "Yes")
    await bot.candle(3)  # filled, and the price moved: equity differs
    assert (await bot.press(ADMIN, ADMIN, message, "Refresh")).text == "Refreshed."
    assert bot.message(ADMIN, message.message_id).button_labels() == ["Refresh"]
    assert bot.errors_seen == 0


async def test_refresh_after_a_trade_shows_the_new_balance(bot: Harness) -> None:
    await bot.candle()
    (balance,) = await bot.ask(ADMIN, ADMIN, "/balance")
    (prompt,) = await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 3000")
    await bot.press(ADMIN, ADMIN, prompt, "Yes")
    await bot.candle(3)
    assert (await bot.press(ADMIN, ADMIN, balance, "Refresh")).text == "Refreshed."
    text = bot.message(ADMIN, balance.message_id).text or ""
    assert "Fees paid: 0.00" not in text and "PAPER" in text


async def test_charts_arrive_as_png_photos_after_upload_action(bot: Harness) -> None:
    await bot.candle(3)
    (chart,) = await bot.ask(ADMIN, ADMIN, "/chart BTCUSDT day")
    (equity,) = await bot.ask(ADMIN, ADMIN, "/equity")
    for message in (chart, equity):
        assert message.kind == "photo" and message.photo is not None
        assert message.photo.startswith(b"\x89PNG")
    assert chart.caption is not None and "(synthetic)" in chart.caption and "PAPER" in chart.caption
    assert [a for a in bot.emu.chat_actions if a[0] == ADMIN] == [(ADMIN, "upload_photo", None)] * 2


async def test_group_chat_replies_in_the_group(bot: Harness) -> None:
    (reply,) = await bot.ask(-100800, VIEWER, "/balance@paper_agent_bot", chat_type="group")
    assert reply.chat_id == -100800 and reply.text is not None and "PAPER balance" in reply.text


async def test_forum_topic_replies_stay_in_the_thread(bot: Harness) -> None:
    chat, thread = -100900, 77
    await bot.candle()
    replies = await bot.ask(chat, ADMIN, "/status", chat_type="supergroup", thread_id=thread)
    replies += await bot.ask(chat, ADMIN, "/chart", chat_type="supergroup", thread_id=thread)
    replies += await bot.ask(chat, ADMIN, "/pause", chat_type="supergroup", thread_id=thread)
    replies += await bot.ask(chat, 424242, "/status", chat_type="supergroup", thread_id=thread)
    assert [m.thread_id for m in replies] == [thread] * 4
    assert replies[-1].text == "Not authorised."
    assert (chat, "upload_photo", thread) in bot.emu.chat_actions
    await bot.press(chat, ADMIN, replies[2], "Yes")
    assert bot.engine.facade.status().paused
    assert bot.message(chat, replies[2].message_id).thread_id == thread


async def test_a_failing_handler_is_logged_and_the_user_told(bot: Harness) -> None:
    bot.emu.faults.inject("sendMessage", FaultKind.SERVER_ERROR, times=1)
    replies = await bot.ask(ADMIN, ADMIN, "/balance")
    assert [m.text for m in replies] == [GENERIC_ERROR]
    assert bot.errors_seen == 1


async def seed_trades(bot: Harness, n: int, exit_reason: str = "signal") -> None:
    """A history of ``n`` closed trades written through the store in one step (stepping hundreds of
    candles through the engine costs ~26 ms each on SQLite)."""
    core, now = bot.engine.engine.core, bot.clock.now_ms()
    trades = tuple(Trade("BTCUSDT", "long", now - (i + 2) * 600_000, now - (i + 1) * 600_000, 30_000.0 + i,
                         30_010.0 + i * (-1) ** i, 0.01, 0.6, 0.1 * (-1) ** i, exit_reason,
                         trade_pnl_pct(0.1 * (-1) ** i, 30_000.0 + i, 0.01, 0.3)) for i in range(n))
    pf = core.portfolio
    await bot.engine.store.record_step(StepRecord(None, None, now, (), (), trades, (), None, pf.equity(), pf.cash,
                                                  pf.views(), core.snapshot()))


async def test_long_trade_list_is_split_into_several_messages(bot: Harness) -> None:
    await seed_trades(bot, 150, exit_reason="<i>stop</i> & go")
    replies = await bot.ask(ADMIN, ADMIN, "/trades 200")
    assert len(replies) >= 3
    assert all(m.text is not None and len(m.text) <= 4096 and m.parse_mode == "HTML" for m in replies)
    lines = [line for m in replies for line in (m.text or "").split("\n")]
    trade_lines = [line for line in lines if line.startswith("• ")]
    assert len(trade_lines) == 150
    assert all(line.endswith("<i>stop</i> & go") for line in trade_lines)  # escaped, shown literally
    assert lines[0].startswith("PAPER last 150 of 150 closed trades")
    assert bot.errors_seen == 0


async def test_times_follow_the_configured_timezone(tmp_path: Path) -> None:
    async with running_bot(tmp_path, timezone="Europe/Berlin") as bot:
        await bot.candle()
        (status,) = await bot.ask(ADMIN, ADMIN, "/status")
        assert status.text is not None and "CET" in status.text and "UTC" not in status.text


async def test_replayed_prices_are_not_labelled_synthetic(tmp_path: Path) -> None:
    async with running_bot(tmp_path, feed="replay") as bot:
        await bot.candle()
        (status,) = await bot.ask(ADMIN, ADMIN, "/status")
        assert status.text is not None and "synthetic" not in status.text


async def test_works_with_the_rate_limiter(tmp_path: Path) -> None:
    async with running_bot(tmp_path, rate_limiter=True) as bot:
        for text in ("/status", "/help", "/version"):
            assert len(await bot.ask(ADMIN, ADMIN, text)) == 1
        bot.emu.faults.inject("sendMessage", FaultKind.RATE_LIMIT, retry_after=1, times=1)
        assert len(await bot.ask(ADMIN, ADMIN, "/balance")) == 1  # AIORateLimiter waited and retried
        assert bot.errors_seen == 0
