"""Deny by default: strangers get one refusal that reveals nothing; viewers read; admins act."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from bot.handlers.commands import COMMANDS, Role
from tests.bot.harness import ADMIN, STRANGER, VIEWER, Harness
from tests.store.queries import active_chats

READS = [c.name for c in COMMANDS if c.role is Role.VIEWER]
WRITES = ["buy BTCUSDT 100", "sell BTCUSDT", "close all", "pause", "resume", "risk stop_loss_pct 0.1",
          "retrain BTCUSDT"]  # /alerts TYPE MODE: viewers may, for their own chat (test_edge_cases)


@pytest.mark.parametrize("command", [c.name for c in COMMANDS if c.name != "start"] + WRITES)
async def test_stranger_gets_one_refusal_that_reveals_nothing(bot: Harness, command: str) -> None:
    before = await bot.state()
    replies = await bot.ask(STRANGER, STRANGER, f"/{command}")
    assert [m.text for m in replies] == ["Not authorised."]
    assert replies[0].reply_markup is None
    assert await bot.state() == before
    assert bot.errors_seen == 0


async def test_stranger_start_answers_with_their_ids_and_nothing_about_the_agent(bot: Harness) -> None:
    (private,) = await bot.ask(STRANGER, STRANGER, "/start")
    assert private.text == f"Your user id: {STRANGER}\nThis chat id: {STRANGER}"
    (group,) = await bot.ask(-100500, STRANGER, "/start@paper_agent_bot", chat_type="group")
    assert group.text == f"Your user id: {STRANGER}\nThis chat id: -100500"


async def test_stranger_plain_text_is_refused_in_private_and_ignored_in_groups(bot: Harness) -> None:
    assert [m.text for m in await bot.ask(STRANGER, STRANGER, "hello? <b>")] == ["Not authorised."]
    assert await bot.ask(-100501, STRANGER, "just chatting", chat_type="group") == []
    assert [m.text for m in await bot.ask(-100501, STRANGER, "/status", chat_type="group")] == ["Not authorised."]


async def test_commands_for_another_bot_are_ignored(bot: Harness) -> None:
    assert await bot.ask(-100502, STRANGER, "/status@other_bot", chat_type="group") == []
    assert await bot.ask(-100502, ADMIN, "/status@other_bot", chat_type="group") == []


async def test_refusal_is_logged_with_ids_and_command_name_only(bot: Harness) -> None:
    with capture_logs() as logs:
        await bot.ask(STRANGER, STRANGER, "/buy BTCUSDT 100 secret-words")
    refused = [e for e in logs if e["event"] == "refused"]
    assert refused == [{"event": "refused", "log_level": "warning", "user_id": STRANGER, "chat_id": STRANGER,
                        "command": "/buy", "role": "stranger"}]
    assert "secret-words" not in repr(logs)


@pytest.mark.parametrize("command", READS)
async def test_viewer_may_read(bot: Harness, command: str) -> None:
    await bot.candle()
    replies = await bot.ask(VIEWER, VIEWER, f"/{command}")
    assert replies and all("Not authorised" not in (m.text or "") and "Only an admin" not in (m.text or "")
                           for m in replies)
    assert bot.errors_seen == 0


@pytest.mark.parametrize("command", WRITES)
async def test_viewer_may_not_trade_or_change_anything(bot: Harness, command: str) -> None:
    await bot.candle()
    before = await bot.state()
    (reply,) = await bot.ask(VIEWER, VIEWER, f"/{command}")
    name = command.split()[0]
    assert reply.text is not None and reply.text.startswith(f"Only an admin may use /{name}")
    assert reply.reply_markup is None
    assert await bot.state() == before


async def test_help_shows_only_what_the_role_may_use(bot: Harness) -> None:
    (admin,) = await bot.ask(ADMIN, ADMIN, "/help")
    (viewer,) = await bot.ask(VIEWER, VIEWER, "/help")
    assert admin.text is not None and viewer.text is not None
    for name in ("buy", "sell", "close", "pause", "resume"):
        assert f"/{name}" in admin.text and f"/{name}" not in viewer.text
    assert "/risk [key value]" in admin.text and "/risk - show risk limits" in viewer.text
    assert "/status" in viewer.text


async def test_menu_shows_read_commands_to_all_and_everything_to_admins(bot: Harness) -> None:
    default = {c["command"] for c in bot.emu.commands}
    assert "status" in default and "buy" not in default and "start" not in default
    admin_scope = bot.emu.state.commands_by_scope[('{"chat_id": 1001, "type": "chat"}', "")]
    assert {"buy", "sell", "close", "pause", "resume", "status"} <= {c["command"] for c in admin_scope}


async def test_buttons_are_checked_like_commands(bot: Harness) -> None:
    await bot.candle()
    (status,) = await bot.ask(ADMIN, ADMIN, "/status")
    answer = await bot.press(ADMIN, STRANGER, status, "Refresh")
    assert answer.text == "Not authorised."
    (prompt,) = await bot.ask(ADMIN, ADMIN, "/pause")
    before = await bot.state()
    answer = await bot.press(ADMIN, VIEWER, prompt, "Yes")
    assert answer.text == "Only an admin may do that."
    assert await bot.state() == before
    assert await bot.press(ADMIN, VIEWER, status, "Refresh") is not None  # viewers may refresh


async def test_admin_and_viewer_chats_become_alert_recipients_strangers_do_not(bot: Harness) -> None:
    await bot.ask(ADMIN, ADMIN, "/status")
    await bot.ask(-100600, VIEWER, "/balance", chat_type="supergroup", thread_id=42)
    await bot.ask(STRANGER, STRANGER, "/status")
    await bot.ask(STRANGER, STRANGER, "/start")
    chats = {(c.chat_id, c.thread_id) for c in await active_chats(bot.engine.store)}
    assert chats == {(ADMIN, None), (-100600, 42)}
