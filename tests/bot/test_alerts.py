"""Alerts end to end: the real engine on a SQLite file, the real PTB Bot, the Bot API emulator over 127.0.0.1.

The engine trades a seeded synthetic market by a simulated clock (the test advances it and calls
``poll_once``); the AlertSender drains the outbox into the emulator, woken by the engine bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.alerts import AlertSender
from bot.render import alert_text
from config.settings import Settings, TradingConfig, load_settings, load_trading_config
from engine.app import EngineApp, build
from engine.core.clock import SimClock
from engine.core.types import timeframe_ms, trade_pnl_pct
from engine.events import (
    EVENT_TYPES,
    DailySummary,
    EngineEvent,
    EngineStarted,
    EngineStopped,
    FeedRecovered,
    FeedStale,
    ModelDegraded,
    ModelRecovered,
    OrderFilled,
    PositionClosed,
    ProtectiveExitHit,
    TradingPaused,
)
from engine.feeds.base import FeedBatch, FeedError
from engine.feeds.synthetic import DEFAULT_START_MS, SyntheticFeed
from engine.store.repo import Store
from sim.botapi import BotApiEmulator, FaultKind, SentMessage
from tests.store.queries import active_chats

os.environ.setdefault("PTB_TIMEDELTA", "true")

TOKEN = "123456:TEST-TOKEN"
SYMBOL = "BTCUSDT"
TF = "1h"
STEP = timeframe_ms(TF)
CHAT_A, CHAT_B = 1001, 1002
WARMUP = 20


class SwitchableFeed:
    """The synthetic feed, with an outage switch (a fake at the feed port)."""

    synthetic = True

    def __init__(self, clock: SimClock) -> None:
        self.inner = SyntheticFeed(SYMBOL, TF, clock, seed=11, history=WARMUP)
        self.symbol, self.timeframe = SYMBOL, TF
        self.down = False

    async def poll(self, after_ts: int | None) -> FeedBatch:
        if self.down:
            raise FeedError("exchange unreachable (test outage)")
        return await self.inner.poll(after_ts)

    def rules(self) -> None:
        return None

    async def close(self) -> None:
        return None


def trading_config() -> TradingConfig:
    base = load_trading_config()
    return base.model_copy(update={
        "trading": base.trading.model_copy(update={"symbols": [SYMBOL], "timeframe": TF, "fast": 3, "slow": 8}),
        "risk": base.risk.model_copy(update={"stop_loss_pct": 0.006, "take_profit_pct": 0.015,
                                             "trailing_stop_pct": 0.01, "max_daily_loss_pct": 0.005,
                                             "position_fraction": 0.5, "max_position_fraction": 0.6}),
        "signal_filters": base.signal_filters.model_copy(update={"min_confidence": 0.5}),
        "feed": base.feed.model_copy(update={"source": "synthetic", "stale_after": 2, "history": WARMUP}),
    })


def settings(db: Path) -> Settings:
    return load_settings(_env_file=None, telegram_bot_token=TOKEN, sqlite_path=db, database_url=None)


@dataclass
class Harness:
    """One engine app (on ``db``), its recorded bus events, a Bot and an AlertSender on the emulator."""

    emu: BotApiEmulator
    db: Path
    clock: SimClock
    app: EngineApp | None = None
    feed: SwitchableFeed | None = None
    bot: Bot | None = None
    sender: AlertSender | None = None
    events: list[EngineEvent] = field(default_factory=list)

    async def open(self, *, chats: tuple[int, ...] = ()) -> EngineApp:
        store = await Store.open(f"sqlite+aiosqlite:///{self.db}")
        self.feed = SwitchableFeed(self.clock)
        self.app = await build(settings(self.db), trading_config(), clock=self.clock, feeds={SYMBOL: self.feed},
                               store=store, poll_interval=3600.0, heartbeat_interval=3600.0)
        self.app.bus.subscribe(self.events.append)
        for chat in chats:
            await self.app.facade.register_chat(chat)
        return self.app

    async def start_engine(self) -> None:
        assert self.app is not None
        await self.app.start()
        st = self.app.engine.symbols[SYMBOL]
        for _ in range(500):  # the symbol task's first poll warms the model up
            if st.warmed:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("engine never warmed up")

    async def start_sender(self, **options: float) -> AlertSender:
        assert self.app is not None
        if self.bot is not None:  # a new sender in the same test: close the previous bot's connections
            await self.bot.shutdown()
        request = HTTPXRequest(connect_timeout=1.0, read_timeout=2.0, write_timeout=2.0, pool_timeout=2.0)
        self.bot = Bot(TOKEN, base_url=f"{self.emu.base_url}/bot", base_file_url=f"{self.emu.base_url}/file/bot",
                       request=request)
        await self.bot.initialize()
        opts = {"poll_interval": 30.0, "max_backoff": 0.4, "chat_rate": 0.0, **options}
        self.sender = AlertSender(self.bot, self.app.facade, **opts)  # type: ignore[arg-type]
        self.app.bus.subscribe(self.sender.on_event)
        self.sender.start()
        return self.sender

    async def trade(self, candles: int) -> int:
        """Advance the clock candle by candle and let the engine step each; how many were stepped."""
        assert self.app is not None
        stepped = 0
        for _ in range(candles):
            self.clock.advance(STEP)
            stepped += await self.app.engine.poll_once(SYMBOL)
        return stepped

    async def close(self, deadline_s: float = 0.5) -> None:
        if self.sender is not None:
            assert self.app is not None
            self.app.bus.unsubscribe(self.sender.on_event)
            await self.sender.stop(deadline_s)
            self.sender = None
        if self.bot is not None:
            await self.bot.shutdown()
            self.bot = None
        if self.app is not None:
            await self.app.stop()
            self.app = None

    def expected(self, chat_filter: Callable[[EngineEvent], bool] = lambda e: True) -> list[str]:
        return [alert_text(e, paper=True) for e in self.events if chat_filter(e)]


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN)
    async with emulator.run():
        yield emulator


@pytest.fixture
async def harness(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(emu, tmp_path / "agent.db", SimClock(DEFAULT_START_MS + WARMUP * STEP))
    try:
        yield h
    finally:
        await h.close()


def texts(emu: BotApiEmulator, chat: int) -> list[str | None]:
    return [m.raw_text for m in emu.transcript(chat)]


async def until_delivered(h: Harness, chat: int, expected: list[str], wait_s: float = 20.0) -> list[SentMessage]:
    msgs = await h.emu.wait_for_messages(chat, len(expected), timeout=wait_s)
    await asyncio.sleep(0.1)  # nothing more may arrive
    return h.emu.transcript(chat) if len(msgs) >= len(expected) else msgs


def kinds_of(events: list[EngineEvent]) -> set[str]:
    return {type(e).__name__ for e in events}


# ---------------------------------------------------------------------------- every alert type


async def test_every_alert_type_arrives_in_the_chat_in_outbox_order(harness: Harness) -> None:
    app = await harness.open(chats=(CHAT_A,))
    await harness.start_engine()
    sender = await harness.start_sender()
    assert await harness.trade(200) == 200
    assert harness.feed is not None
    harness.feed.down = True
    await harness.trade(4)  # no candles for longer than stale_after: FeedStale
    harness.feed.down = False
    await harness.trade(1)  # FeedRecovered
    await app.facade.publish(ModelDegraded(ts=app.facade.now_ms(), model="catboost <v2>", reason="PSI 0.31 > 0.25"))
    await app.facade.publish(ModelRecovered(ts=app.facade.now_ms(), model="catboost <v2>"))
    assert await app.facade.pause(by="ann")
    assert await app.facade.resume(by="ann")
    await app.facade.daily_summary()
    await app.engine.stop()  # EngineStopped; the sender keeps reading the outbox

    expected = harness.expected()
    assert kinds_of(harness.events) == {
        "EngineStarted", "OrderFilled", "PositionOpened", "PositionClosed", "ProtectiveExitHit", "RiskStateChanged",
        "FeedStale", "FeedRecovered", "ModelDegraded", "ModelRecovered", "TradingPaused", "DailySummary",
        "EngineStopped"}
    await until_delivered(harness, CHAT_A, expected)
    assert texts(harness.emu, CHAT_A) == expected  # every alert, once, in outbox order
    sent = harness.emu.transcript(CHAT_A)
    assert all(m.parse_mode == "HTML" and not m.disable_notification for m in sent)
    assert sender.delivered == len(expected)
    assert await app.store.outbox_backlog() == 0

    plain = [m.text or "" for m in sent]
    trades = [t for t, e in zip(plain, harness.events, strict=True)
              if isinstance(e, (OrderFilled, PositionClosed, ProtectiveExitHit))]
    assert trades and all("PAPER" in t for t in trades)
    closed = [t for t, e in zip(plain, harness.events, strict=True) if isinstance(e, PositionClosed)]
    assert all("PnL" in t and "Reason:" in t for t in closed)
    triggers = {e.trigger for e in harness.events if isinstance(e, ProtectiveExitHit)}
    assert {"stop_loss", "take_profit", "trailing_stop"} <= triggers
    assert any(t.startswith("🧠 Model degraded: catboost <v2>\nPSI 0.31 > 0.25") for t in plain)
    assert plain[0].startswith("🚀 Agent started — mode PAPER")
    assert plain[-1].startswith("🛑 Agent stopped — mode PAPER")


async def test_alerts_are_woken_by_the_bus_not_the_poll_interval(harness: Harness) -> None:
    app = await harness.open(chats=(CHAT_A,))
    await harness.start_sender(poll_interval=3600.0)
    await asyncio.sleep(0.1)  # the sender's first look at the (empty) outbox is done
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await app.facade.publish(ModelDegraded(ts=app.facade.now_ms(), model="m", reason="r"))
    await harness.emu.wait_for_messages(CHAT_A, 1, timeout=2.0)
    assert loop.time() - t0 < 1.0


# ---------------------------------------------------------------------------- modes


async def test_modes_on_silent_off_are_persisted_per_chat(harness: Harness) -> None:
    app = await harness.open(chats=(CHAT_A, CHAT_B))
    assert await app.facade.set_alert_mode(CHAT_B, "order_filled", "silent") is None
    assert await app.facade.set_alert_mode(CHAT_B, "stop_hit", "off") is None
    assert (await app.facade.set_alert_mode(CHAT_B, "nonsense", "off")) is not None
    await harness.close()  # a restart: the modes live in the database

    app = await harness.open()
    modes = await app.facade.alert_modes(CHAT_B)
    assert modes["order_filled"] == "silent" and modes["stop_hit"] == "off" and modes["position_closed"] == "on"
    assert set((await app.facade.alert_modes(CHAT_A)).values()) == {"on"}
    await harness.start_engine()
    await harness.start_sender()
    await harness.trade(120)

    expected_a = harness.expected()
    expected_b = harness.expected(lambda e: not isinstance(e, ProtectiveExitHit))
    assert len(expected_b) < len(expected_a)
    await until_delivered(harness, CHAT_A, expected_a)
    await until_delivered(harness, CHAT_B, expected_b)
    assert texts(harness.emu, CHAT_A) == expected_a
    assert texts(harness.emu, CHAT_B) == expected_b
    assert not any(m.disable_notification for m in harness.emu.transcript(CHAT_A))
    for message, event in zip(harness.emu.transcript(CHAT_B),
                              [e for e in harness.events if not isinstance(e, ProtectiveExitHit)], strict=True):
        assert message.disable_notification == isinstance(event, OrderFilled)


async def test_forum_topic_thread_is_kept(harness: Harness) -> None:
    app = await harness.open()
    await app.facade.register_chat(-100777, thread_id=42)
    await harness.start_sender()
    await app.facade.publish(ModelDegraded(ts=app.facade.now_ms(), model="m", reason="r"))
    (message,) = await harness.emu.wait_for_messages(-100777, 1)
    assert message.thread_id == 42


# ---------------------------------------------------------------------------- Telegram trouble


async def test_outage_and_429_storm_during_trading_lose_nothing_and_keep_order(harness: Harness) -> None:
    emu = harness.emu
    app = await harness.open(chats=(CHAT_A, CHAT_B))
    await harness.start_engine()
    await harness.start_sender(max_backoff=0.3)
    await harness.trade(30)

    await emu.go_down()  # Telegram unreachable: connections refused
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stepped = await harness.trade(60)
    trading_s = loop.time() - t0
    assert stepped == 60  # the engine never waits on Telegram
    await asyncio.sleep(1.0)  # the sender keeps retrying meanwhile
    backlog = await app.store.outbox_backlog()
    assert backlog > 0
    await emu.come_up()

    emu.faults.inject("sendMessage", FaultKind.RATE_LIMIT, times=4, retry_after=1)
    emu.faults.inject("sendMessage", FaultKind.SERVER_ERROR, times=3)
    emu.faults.inject("sendMessage", FaultKind.RATE_LIMIT, times=2, retry_after=1, chat_id=CHAT_B)
    await harness.trade(60)

    expected = harness.expected()
    await until_delivered(harness, CHAT_A, expected, wait_s=30)
    await until_delivered(harness, CHAT_B, expected, wait_s=30)
    assert texts(emu, CHAT_A) == expected
    assert texts(emu, CHAT_B) == expected
    assert await app.store.outbox_backlog() == 0
    fired = [kind for _, kind in emu.faults.fired]
    assert fired.count(FaultKind.RATE_LIMIT) == 6 and fired.count(FaultKind.SERVER_ERROR) == 3
    assert trading_s < 5.0


async def test_retry_after_is_honoured_before_resending(harness: Harness) -> None:
    emu = harness.emu
    app = await harness.open(chats=(CHAT_A,))
    emu.faults.inject("sendMessage", FaultKind.RATE_LIMIT, times=1, retry_after=1)
    await harness.start_sender()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await app.facade.publish(ModelDegraded(ts=app.facade.now_ms(), model="m", reason="r"))
    await emu.wait_for_messages(CHAT_A, 1, timeout=5)
    assert loop.time() - t0 >= 1.0
    sends = [c for c in emu.calls if c.method == "sendMessage"]
    assert len(sends) == 2 and sends[0].params["text"] == sends[1].params["text"]


async def test_blocked_chat_is_deactivated_and_not_retried(harness: Harness) -> None:
    emu = harness.emu
    app = await harness.open(chats=(CHAT_A, CHAT_B))
    emu.block(CHAT_B)
    await harness.start_engine()
    await harness.start_sender()
    await harness.trade(40)
    expected = harness.expected()
    await until_delivered(harness, CHAT_A, expected)
    assert texts(emu, CHAT_A) == expected
    assert [c.chat_id for c in await active_chats(app.store)] == [CHAT_A]
    await harness.trade(40)
    await until_delivered(harness, CHAT_A, harness.expected())
    to_b = [c for c in emu.calls if c.method == "sendMessage" and str(c.params.get("chat_id")) == str(CHAT_B)]
    assert len(to_b) == 1  # one 403, then never again
    assert emu.transcript(CHAT_B) == []

    await app.facade.register_chat(CHAT_B)  # the user unblocks and talks to the bot again
    emu.unblock(CHAT_B)
    await app.facade.publish(ModelRecovered(ts=app.facade.now_ms(), model="m"))
    (message,) = await emu.wait_for_messages(CHAT_B, 1)
    assert message.text is not None and message.text.startswith("🧠 Model recovered")


# ---------------------------------------------------------------------------- restart


async def test_undelivered_alerts_arrive_exactly_once_after_a_restart(harness: Harness) -> None:
    emu = harness.emu
    await harness.open(chats=(CHAT_A, CHAT_B))
    await harness.start_engine()
    await harness.start_sender()
    await harness.trade(30)
    first = harness.expected()
    await until_delivered(harness, CHAT_A, first)
    await until_delivered(harness, CHAT_B, first)

    await emu.go_down()
    await harness.trade(40)  # these alerts cannot be sent
    await harness.close(deadline_s=0.3)  # EngineStopped is written, the database closed
    assert isinstance(harness.events[-1], EngineStopped)
    assert len(texts(emu, CHAT_A)) == len(first)

    await emu.come_up()
    await harness.open()  # the same SQLite file, a new engine and a new sender
    await harness.start_engine()
    assert isinstance(harness.events[-1], EngineStarted)
    await harness.start_sender()
    await harness.trade(10)
    expected = harness.expected()
    await until_delivered(harness, CHAT_A, expected)
    await until_delivered(harness, CHAT_B, expected)
    assert texts(emu, CHAT_A) == expected
    assert texts(emu, CHAT_B) == expected


async def test_stop_delivers_what_it_can_until_the_deadline(harness: Harness) -> None:
    emu = harness.emu
    app = await harness.open(chats=(CHAT_A,))
    sender = await harness.start_sender()
    for i in range(5):
        await app.facade.publish(ModelDegraded(ts=app.facade.now_ms(), model=f"m{i}", reason="r"))
    await sender.stop(5.0)
    assert len(emu.transcript(CHAT_A)) == 5

    sender = await harness.start_sender()
    await emu.go_down()
    await app.facade.publish(ModelRecovered(ts=app.facade.now_ms(), model="m"))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await sender.stop(0.5)  # Telegram is down: give up at the deadline, the alert stays pending
    assert loop.time() - t0 < 1.5
    assert await app.store.outbox_backlog() == 1


async def test_agent_stopped_goes_before_a_backlog_at_stop(harness: Harness) -> None:
    """Hundreds of alerts may wait behind Telegram's per-chat limit; the stop alert must not wait behind them
    for the next process. It goes out first; what the deadline leaves stays pending, in order."""
    emu = harness.emu
    app = await harness.open(chats=(CHAT_A,))
    await harness.start_engine()
    sender = await harness.start_sender(chat_rate=4.0, chat_burst=1)  # a backlog drains at 4 alerts/s
    for i in range(40):
        await app.facade.publish(ModelDegraded(ts=app.facade.now_ms(), model=f"m{i}", reason="r"))
    await emu.wait_for_messages(CHAT_A, 2, timeout=10)
    await app.stop_engine()  # writes "Agent stopped" behind the 40
    await sender.stop(2.0)
    sent = [t or "" for t in texts(emu, CHAT_A)]
    stopped = [i for i, t in enumerate(sent) if "Agent stopped" in t]
    assert len(stopped) == 1, sent
    assert len(sent) < 30 and stopped[0] <= 4, sent  # ahead of the backlog, which is not through
    order = [int(m[1]) for t in sent if (m := re.search(r"\bm(\d+)\b", t))]
    assert order == list(range(len(order))) and len(order) >= 2  # the backlog itself stays in order
    assert await app.store.outbox_backlog() > 0


# ---------------------------------------------------------------------------- text


def sample(cls: type[EngineEvent], text: str) -> EngineEvent:
    """An instance of ``cls`` with ``text`` in every string field."""
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if f.name.endswith("ts"):
            values[f.name] = 1_700_000_000_000
        elif kind == "bool":
            values[f.name] = True
        elif kind.startswith("int"):
            values[f.name] = 3
        elif kind.startswith("float"):
            values[f.name] = 1234.5
        else:
            values[f.name] = text
    return cls(**values)


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()), ids=list(EVENT_TYPES))
def test_every_event_type_renders_escaped_html(cls: type[EngineEvent]) -> None:
    event = sample(cls, "<b>&x")
    text = alert_text(event, tz=ZoneInfo("Europe/Berlin"))
    assert "<b>&x" not in text
    has_text = any(isinstance(getattr(event, f.name), str) and getattr(event, f.name) == "<b>&x"
                   for f in dataclasses.fields(cls) if f.name not in ("side", "trigger", "old", "new", "mode"))
    assert ("&lt;b&gt;&amp;x" in text) == has_text or cls is DailySummary
    assert ("2023-11-14 23:13 CET" in text) or cls in (DailySummary, FeedStale, FeedRecovered, TradingPaused)


def test_trade_texts_say_paper_and_format_numbers() -> None:
    # bought 0.5 at 2,000 (fee 1.00), sold at 1,900 (fee 0.95): -51.95 on an entry cost of 1,001.00
    closed = PositionClosed(ts=0, symbol="ETHUSDT", quantity=0.5, entry_price=2000.0, exit_price=1900.0,
                            pnl=-51.95, reason="stop_loss", pnl_pct=trade_pnl_pct(-51.95, 2000.0, 0.5, 1.0))
    text = alert_text(closed)
    assert text.startswith("🧪 <b>PAPER</b>") and "PnL <b>-51.95</b> (-5.19%)" in text
    assert "Reason: stop-loss" in text and "2,000.00" in text
    older = dataclasses.replace(closed, pnl_pct=None)  # an outbox row from before pnl_pct: no percentage made up
    assert "PnL <b>-51.95</b>\n" in alert_text(older)
    hit = ProtectiveExitHit(ts=0, symbol="ETHUSDT", trigger="trailing_stop", level=0.00012345, fill_price=0.0001)
    assert "Trailing stop hit" in alert_text(hit) and "0.00012345" in alert_text(hit)
    assert "PAPER" not in alert_text(hit, paper=False)


# ---------------------------------------------------------------------------- the runtime's daily summary


async def test_runtime_schedules_the_daily_summary_in_the_configured_zone_and_it_arrives(
        emu: BotApiEmulator, tmp_path: Path) -> None:
    from bot.app import build_application
    from bot.runtime import Runtime

    db = tmp_path / "agent.db"
    settings = load_settings(_env_file=None, telegram_bot_token=TOKEN, sqlite_path=db, database_url=None,
                             telegram_api_base_url=emu.base_url, daily_summary_time="21:30",
                             timezone="America/New_York")
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP)
    app = await build(settings, trading_config(), clock=clock, feeds={SYMBOL: SwitchableFeed(clock)},
                      poll_interval=3600.0, heartbeat_interval=3600.0)
    await app.facade.register_chat(CHAT_A)
    application = build_application(app.facade, settings.telegram, rate_limiter=False)
    runtime = Runtime(app, application, settings.telegram, poll_timeout=1.0)
    await runtime.start()
    try:
        assert application.job_queue is not None
        (job,) = application.job_queue.get_jobs_by_name("daily-summary")
        assert job.next_t is not None
        local = job.next_t.astimezone(ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (21, 30)
        await job.run(application)  # what the scheduler does at 21:30 New York time
        messages = await emu.wait_for_messages(CHAT_A, 2, timeout=5)  # started, then the summary
        assert messages[1].text is not None and messages[1].text.startswith("🧪 PAPER · 📊 Daily summary")
    finally:
        await runtime.stop(3.0)
    assert emu.transcript(CHAT_A)[-1].text.startswith("🛑 Agent stopped")  # type: ignore[union-attr]
    reopened = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        assert (await reopened.get_flags()).clean_shutdown
    finally:
        await reopened.close()


async def test_runtime_uses_a_webhook_with_a_secret_when_url_and_port_are_set(
        emu: BotApiEmulator, tmp_path: Path) -> None:
    import aiohttp

    from bot.app import build_application
    from bot.runtime import Runtime

    port = free_port()
    settings = load_settings(_env_file=None, telegram_bot_token=TOKEN, sqlite_path=tmp_path / "agent.db",
                             database_url=None, telegram_api_base_url=emu.base_url, telegram_admin_ids=[CHAT_A],
                             webhook_url=f"http://127.0.0.1:{port}/tg/hook", port=port,
                             webhook_secret="webhook-secret-123")
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP)
    app = await build(settings, trading_config(), clock=clock, feeds={SYMBOL: SwitchableFeed(clock)},
                      poll_interval=3600.0, heartbeat_interval=3600.0)
    runtime = Runtime(app, build_application(app.facade, settings.telegram, rate_limiter=False), settings.telegram)
    await runtime.start()
    try:
        set_hook = next(c for c in emu.calls if c.method == "setWebhook")
        assert set_hook.params["url"] == f"http://127.0.0.1:{port}/tg/hook"
        assert set_hook.params["secret_token"] == "webhook-secret-123"
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/status",
                                              "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
                                              "chat": {"id": CHAT_A, "type": "private"},
                                              "from": {"id": CHAT_A, "is_bot": False, "first_name": "Ann"}}}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/tg/hook", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as refused:
                assert refused.status == 403
            async with http.post(f"http://127.0.0.1:{port}/tg/hook", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-123"}) as accepted:
                assert accepted.status == 200
        replies = await emu.wait_for_messages(CHAT_A, 1, timeout=5)
        assert any(m.text and "PAPER" in m.text for m in replies)
    finally:
        await runtime.stop(3.0)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
