"""The Bot API emulator, driven by the real python-telegram-bot over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import html
import struct
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from sim.botapi import BotApiEmulator, FaultKind
from sim.botapi.state import parse_html

TOKEN = "123456:TEST-TOKEN"
USERNAME = "paper_agent_bot"
CHAT = 4242
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def png(width: int, height: int) -> bytes:
    """A minimal valid PNG header + IHDR chunk of the given size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN, bot_username=USERNAME)
    async with emulator.run():
        yield emulator


def builder(emu: BotApiEmulator, token: str = TOKEN) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    return (
        Application.builder()
        .token(token)
        .base_url(f"{emu.base_url}/bot")
        .base_file_url(f"{emu.base_url}/file/bot")
        .connect_timeout(1.0)
        .read_timeout(2.0)
        .get_updates_connect_timeout(1.0)
        .get_updates_read_timeout(2.0)
    )


def make_bot(emu: BotApiEmulator, token: str = TOKEN) -> Bot:
    bot: Bot = builder(emu, token).updater(None).build().bot
    return bot


@asynccontextmanager
async def polling(app: Application[Any, Any, Any, Any, Any, Any], errors: list[TelegramError] | None = None
                  ) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(
        poll_interval=0.0, timeout=1, error_callback=None if errors is None else errors.append
    )
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("echo: " + " ".join(context.args or []))


# ---------------------------------------------------------------------------- basics


async def test_get_me_and_unknown_token(emu: BotApiEmulator) -> None:
    async with make_bot(emu) as bot:
        me = await bot.get_me()
    assert me.is_bot and me.username == USERNAME and me.id == 123456
    with pytest.raises(InvalidToken):
        async with make_bot(emu, token="999:WRONG-TOKEN") as other:
            await other.get_me()


async def test_command_handler_echoes_args(emu: BotApiEmulator) -> None:
    app = builder(emu).build()
    app.add_handler(CommandHandler("echo", echo))
    async with polling(app):
        emu.send_message(CHAT, CHAT, "/echo hello world", username="ann")
        emu.send_message(CHAT, CHAT, f"/echo@{USERNAME} addressed")
        emu.send_message(CHAT, CHAT, "/echo@other_bot not for us")
        emu.send_message(CHAT, CHAT, "plain text is no command")
        sent = await emu.wait_for_messages(CHAT, 2)
        await asyncio.sleep(0.2)  # nothing else may arrive
    assert [m.text for m in emu.transcript(CHAT)] == ["echo: hello world", "echo: addressed"]
    assert [m.message_id for m in sent] == [5, 6]  # user messages 1-4 share the chat's counter
    assert len(emu.injected(CHAT)) == 4
    assert any(c.method == "deleteWebhook" for c in emu.calls)


async def test_inline_button_press_answers_and_edits(emu: BotApiEmulator) -> None:
    async def menu(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = [[InlineKeyboardButton("Yes", callback_data="pick:yes"),
                     InlineKeyboardButton("No", callback_data="pick:no")]]
        await update.effective_message.reply_text("Pick one", reply_markup=InlineKeyboardMarkup(keyboard))

    async def picked(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer(text="noted")
        await query.edit_message_text(f"You chose <b>{query.data.split(':')[1]}</b>", parse_mode=ParseMode.HTML)

    app = builder(emu).build()
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(picked, pattern=r"^pick:"))
    async with polling(app):
        emu.send_message(CHAT, 7, "/menu")
        (prompt,) = await emu.wait_for_messages(CHAT, 1)
        assert prompt.button_labels() == ["Yes", "No"]
        query_id = emu.press_button(CHAT, 7, prompt.message_id, prompt.callback_data("Yes"))
        for _ in range(100):
            if prompt.edited:
                break
            await asyncio.sleep(0.02)
    assert [(a.query_id, a.text) for a in emu.callback_answers] == [(query_id, "noted")]
    assert prompt.text == "You chose yes"
    assert prompt.entities == [{"type": "bold", "offset": 10, "length": 3}]
    assert prompt.reply_markup is None  # editMessageText without a markup drops the keyboard
    assert prompt.revisions[0].text == "Pick one"
    with pytest.raises(ValueError, match="no button"):
        emu.press_button(CHAT, 7, prompt.message_id, "pick:maybe")


async def test_send_photo_stores_bytes_and_serves_the_file(emu: BotApiEmulator) -> None:
    image = png(640, 480) + b"\x00" * 2000
    async with make_bot(emu) as bot:
        message = await bot.send_photo(CHAT, photo=image, caption="<b>BTC</b> 1h", parse_mode=ParseMode.HTML)
        assert message.photo[-1].width == 640 and message.photo[-1].height == 480
        assert message.caption == "BTC 1h"
        file = await bot.get_file(message.photo[-1].file_id)
        downloaded = await file.download_as_bytearray()
        again = await bot.send_photo(CHAT, photo=message.photo[-1].file_id)
        doc = await bot.send_document(CHAT, document=b"a,b\n1,2\n", filename="trades.csv")
    assert bytes(downloaded) == image
    first, second, third = emu.transcript(CHAT)
    assert first.photo == image and first.caption == "BTC 1h" and second.photo == image
    assert again.photo[-1].file_id == message.photo[-1].file_id
    assert third.document == b"a,b\n1,2\n" and third.file_name == "trades.csv"
    assert doc.document is not None and doc.document.file_name == "trades.csv"


async def test_set_my_commands_recorded(emu: BotApiEmulator) -> None:
    async with make_bot(emu) as bot:
        await bot.set_my_commands([("status", "Show status"), ("balance", "Show balance")])
        got = await bot.get_my_commands()
        with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
            await bot.set_my_commands([("Bad-Command", "nope")])
    assert emu.commands == [
        {"command": "status", "description": "Show status"},
        {"command": "balance", "description": "Show balance"},
    ]
    assert [c.command for c in got] == ["status", "balance"]


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "text",
    [
        "<b>bold",  # unclosed tag
        "<blink>x</blink>",  # unsupported tag
        "1 < 2",  # unescaped <
        "AT&T",  # unescaped &
        "<b>x</i>",  # mismatched end tag
        "x</b>",  # unexpected end tag
        '<span class="red">x</span>',  # span without tg-spoiler
    ],
)
async def test_malformed_html_is_rejected(emu: BotApiEmulator, text: str) -> None:
    async with make_bot(emu) as bot:
        with pytest.raises(BadRequest, match=r"^Can't parse entities"):
            await bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)
    assert emu.transcript(CHAT) == []


async def test_text_limits_and_not_modified(emu: BotApiEmulator) -> None:
    async with make_bot(emu) as bot:
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(CHAT, "   ")
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(CHAT, "x" * 4097)
        # the limit counts the text after entity parsing
        ok = await bot.send_message(CHAT, "<b>" + "y" * 4096 + "</b>", parse_mode=ParseMode.HTML)
        assert ok.text is not None and len(ok.text) == 4096
        msg = await bot.send_message(CHAT, "1 &lt; 2 &amp; <a href='https://x.test'>link</a> &#128512;",
                                     parse_mode=ParseMode.HTML)
        assert msg.text == "1 < 2 & link 😀"
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("1 < 2 & link 😀", chat_id=CHAT, message_id=msg.message_id,
                                        entities=msg.entities)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("new", chat_id=CHAT, message_id=999)
        assert await bot.delete_message(CHAT, msg.message_id)
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await bot.delete_message(CHAT, msg.message_id)
        with pytest.raises(BadRequest, match="reserved"):
            await bot.send_message(CHAT, "price 1.5", parse_mode=ParseMode.MARKDOWN_V2)
    assert emu.transcript(CHAT)[-1].deleted


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60))
def test_escaped_text_parses_back_to_itself(text: str) -> None:
    plain, entities = parse_html(f"<i>{html.escape(text)}</i>")
    assert plain == text
    length = len(text.encode("utf-16-le")) // 2
    assert entities == ([{"type": "italic", "offset": 0, "length": length}] if text else [])


# ---------------------------------------------------------------------------- faults


async def test_rate_limit_surfaces_as_retry_after(emu: BotApiEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    emu.faults.inject("sendMessage", FaultKind.RATE_LIMIT, retry_after=7)
    async with make_bot(emu) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "hi")
        await bot.send_message(CHAT, "hi again")  # the fault fired once
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert [m.text for m in emu.transcript(CHAT)] == ["hi again"]


async def test_aio_rate_limiter_retries_after_429(emu: BotApiEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without PTB_TIMEDELTA, constructing RetryAfter emits a PTBDeprecationWarning, which the
    # warnings-as-errors config turns into an exception that escapes AIORateLimiter's retry.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    app = builder(emu).rate_limiter(AIORateLimiter(max_retries=1)).build()
    app.add_handler(CommandHandler("echo", echo))
    emu.faults.inject("sendMessage", FaultKind.RATE_LIMIT, retry_after=1)
    async with polling(app):
        emu.send_message(CHAT, CHAT, "/echo throttled")
        (reply,) = await emu.wait_for_messages(CHAT, 1, timeout=5)
    assert reply.text == "echo: throttled"
    assert [c.method for c in emu.calls].count("sendMessage") == 2


async def test_blocked_chat_and_forbidden_fault(emu: BotApiEmulator) -> None:
    emu.block(CHAT)
    async with make_bot(emu) as bot:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(CHAT, "hello?")
        await bot.send_message(CHAT + 1, "other chats still work")
        emu.unblock(CHAT)
        await bot.send_message(CHAT, "hello again")
        emu.faults.inject(None, FaultKind.FORBIDDEN, chat_id=CHAT + 1)
        await bot.send_message(CHAT, "not this chat")
        with pytest.raises(Forbidden):
            await bot.send_photo(CHAT + 1, photo=png(1, 1))
    assert [m.text for m in emu.transcript(CHAT)] == ["hello again", "not this chat"]


async def test_server_error_timeout_and_dropped_connection(emu: BotApiEmulator) -> None:
    emu.faults.inject("sendMessage", FaultKind.SERVER_ERROR)
    emu.faults.inject("sendMessage", FaultKind.DOWN)
    emu.faults.inject("sendMessage", FaultKind.TIMEOUT, delay=0.8)
    async with make_bot(emu) as bot:
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(CHAT, "a")
        with pytest.raises(NetworkError):
            await bot.send_message(CHAT, "b")
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "c", read_timeout=0.3)
        await emu.wait_for_messages(CHAT, 1)
    # like Telegram, a request that timed out on the client may still have been processed
    assert [m.text for m in emu.transcript(CHAT)] == ["c"]


async def test_outage_during_polling_then_recovery(emu: BotApiEmulator) -> None:
    app = builder(emu).build()
    app.add_handler(CommandHandler("echo", echo))
    errors: list[TelegramError] = []
    async with polling(app, errors):
        emu.send_message(CHAT, CHAT, "/echo before")
        await emu.wait_for_messages(CHAT, 1)
        await emu.go_down()
        with pytest.raises(NetworkError, match="ConnectError"):
            async with make_bot(emu):  # initialize() calls getMe: the TCP connect is refused
                pass
        await asyncio.sleep(0.3)
        await emu.come_up()
        emu.send_message(CHAT, CHAT, "/echo after")
        await emu.wait_for_messages(CHAT, 2, timeout=8)
    assert [m.text for m in emu.transcript(CHAT)] == ["echo: before", "echo: after"]
    assert errors and all(isinstance(e, NetworkError) for e in errors)


# ---------------------------------------------------------------------------- groups, topics, control API


async def test_group_and_forum_topic_thread_ids(emu: BotApiEmulator) -> None:
    app = builder(emu).build()
    app.add_handler(CommandHandler("echo", echo))
    forum, group = -100777, -555
    async with polling(app):
        emu.send_message(forum, 7, f"/echo@{USERNAME} in topic", chat_type="supergroup", thread_id=12)
        emu.send_message(group, 7, "/echo in group", chat_type="group")
        (in_topic,) = await emu.wait_for_messages(forum, 1)
        (in_group,) = await emu.wait_for_messages(group, 1)
    assert (in_topic.text, in_topic.thread_id) == ("echo: in topic", 12)
    assert (in_group.text, in_group.thread_id) == ("echo: in group", None)
    update = emu.injected(forum)[0]["message"]
    assert update["is_topic_message"] and update["chat"]["is_forum"]
    async with make_bot(emu) as bot:
        chat = await bot.get_chat(forum)
        assert chat.type == "supergroup" and chat.is_forum
        sent = await bot.send_message(forum, "topic news", message_thread_id=12)
        assert sent.message_thread_id == 12 and sent.is_topic_message


async def test_control_api_drives_a_bot(emu: BotApiEmulator) -> None:
    app = builder(emu).build()
    app.add_handler(CommandHandler("echo", echo))
    async with polling(app), aiohttp.ClientSession(emu.base_url) as http:
        async with http.post("/_control/send_message", json={"chat_id": 5, "user_id": 5, "text": "/echo hi"}) as r:
            assert (await r.json())["ok"]
        await emu.wait_for_messages(5, 1)
        async with http.get("/_control/transcript", params={"chat_id": "5"}) as r:
            transcript = (await r.json())["result"]
        async with http.post("/_control/fault", json={"method": "getMe", "kind": "rate_limit", "retry_after": 2}) as r:
            assert r.status == 200
        async with http.post(f"/bot{TOKEN}/getMe") as r:
            assert r.status == 429
            assert (await r.json())["parameters"] == {"retry_after": 2}
        async with http.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": 5, "text": "json body"}) as r:
            assert (await r.json())["result"]["text"] == "json body"
    assert [m["text"] for m in transcript] == ["echo: hi"]


async def test_control_down_makes_connects_fail_then_recovers(emu: BotApiEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emu.base_url}/_control/down", params={"seconds": "0.4"}) as r:
            assert r.status == 200
        await asyncio.sleep(0.15)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"{emu.base_url}/bot{TOKEN}/getMe"):
                pass
        await asyncio.sleep(0.5)
        async with http.get(f"{emu.base_url}/bot{TOKEN}/getMe") as r:
            assert (await r.json())["result"]["username"] == USERNAME


async def test_get_updates_offset_limit_and_webhook_conflict(emu: BotApiEmulator) -> None:
    ids = [emu.send_message(CHAT, CHAT, f"m{i}") for i in range(3)]
    api = f"{emu.base_url}/bot{TOKEN}"

    async def get_updates(http: aiohttp.ClientSession, **params: str) -> list[int]:
        async with http.post(f"{api}/getUpdates", data=params) as r:
            return [u["update_id"] for u in (await r.json())["result"]]

    async with aiohttp.ClientSession() as http:
        assert await get_updates(http, limit="2") == ids[:2]
        assert await get_updates(http, offset=str(ids[2])) == ids[2:]  # confirms the first two
        assert await get_updates(http) == ids[2:]
        assert await get_updates(http, offset=str(ids[2] + 1), timeout="0.2") == []  # waited, empty
        async with http.post(f"{api}/setWebhook", data={"url": "https://example.test/hook"}) as r:
            assert (await r.json())["result"] is True
        async with http.post(f"{api}/getUpdates") as r:
            assert r.status == 409
        async with http.get(f"{api}/getWebhookInfo") as r:
            assert (await r.json())["result"]["url"] == "https://example.test/hook"


async def test_strict_chats_reject_unknown_chat() -> None:
    emu = BotApiEmulator(token=TOKEN, bot_username=USERNAME, strict_chats=True)
    async with emu.run():
        emu.send_message(CHAT, CHAT, "hi")
        async with make_bot(emu) as bot:
            await bot.send_message(CHAT, "known chat")
            with pytest.raises(BadRequest, match="Chat not found"):
                await bot.send_message(CHAT + 1, "never talked to us")
