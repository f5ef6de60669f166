"""End-to-end harness: the real engine and the real PTB ``Application`` against the Bot API emulator.

    async with running_bot(tmp_path) as h:
        await h.candle()                       # one candle closes on every symbol
        (reply,) = await h.ask(CHAT, ADMIN, "/status")

``ask`` returns once the bot has fetched the update *and finished processing it* (the emulator has
handed it out and PTB's update queue is joined), so a reply that never comes is an empty list, not
a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import build_application
from bot.context import BotApplication
from config.settings import FeedSection, RiskSection, Settings, SignalFiltersSection, TradingConfig, TradingSection
from engine.app import EngineApp, build
from engine.core.clock import LiveClock, SimClock
from engine.feeds.base import Feed
from engine.feeds.replay import ReplayFeed
from engine.feeds.synthetic import DEFAULT_START_MS, SyntheticFeed, synthetic_arrays
from sim.botapi import BotApiEmulator, CallbackAnswer, SentMessage
from tests.engine.helpers import wait_until

TOKEN = "123456:TEST-TOKEN"
BOT_USERNAME = "paper_agent_bot"
ADMIN = 1001
ADMIN2 = 1002
VIEWER = 2001
STRANGER = 3003
TF = "5m"
STEP_MS = 300_000
WARMUP = 60  # candles closed before the engine starts (history, never traded)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
SETTLE_TIMEOUT = 30.0  # a wait, not a timing check: the first test of a busy xdist process pays for cold starts


@dataclass
class Harness:
    emu: BotApiEmulator
    engine: EngineApp
    app: BotApplication
    clock: SimClock  # the engine's (market) clock
    wall: SimClock  # the people's clock that confirmations expire on (unless running_bot(wall_clock=True))

    @property
    def errors_seen(self) -> int:
        return self.app.bot_data.errors_seen

    async def settle(self, update_id: int) -> None:
        """Wait until PTB fetched ``update_id`` and every handler for it has finished."""
        async with asyncio.timeout(SETTLE_TIMEOUT):
            await wait_until(lambda: all(u["update_id"] > update_id for u in self.emu.state.pending),
                             timeout=SETTLE_TIMEOUT)
            await self.app.update_queue.join()

    async def ask(self, chat_id: int, user_id: int, text: str, **kwargs: Any) -> list[SentMessage]:
        """Send ``text`` as ``user_id`` and return what the bot sent to the chat in answer."""
        before = len(self.emu.transcript(chat_id))
        update_id = self.emu.send_message(chat_id, user_id, text, **kwargs)
        await self.settle(update_id)
        return self.emu.messages_since(chat_id, before)

    async def press(self, chat_id: int, user_id: int, message: SentMessage, label: str) -> CallbackAnswer:
        """Press the button ``label`` on ``message``; returns the bot's answerCallbackQuery."""
        query_id = self.emu.press_button(chat_id, user_id, message.message_id, message.callback_data(label))
        update_ids = [u["update_id"] for u in self.emu.state.pending]
        await self.settle(max(update_ids))
        return next(a for a in self.emu.callback_answers if a.query_id == query_id)

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        found = self.emu.state.find_sent(chat_id, message_id)
        assert found is not None
        return found

    async def candle(self, n: int = 1) -> None:
        """Let ``n`` more candles close on every symbol and run them through the engine."""
        for _ in range(n):
            self.clock.advance(STEP_MS)
            for symbol in self.engine.facade.symbols:
                await self.engine.engine.poll_once(symbol)

    async def state(self) -> tuple[object, ...]:
        """Everything a command could change (for 'nothing changed' assertions)."""
        f = self.engine.facade
        pending = await self.engine.store.pending_orders()
        return (f.status(), f.balance(), f.risk(), f.positions(), tuple(pending),
                tuple(self.engine.engine.core.pending.items()).__repr__())


def trading_config(symbols: tuple[str, ...], fast: int, slow: int, history: int) -> TradingConfig:
    return TradingConfig(
        trading=TradingSection(symbols=list(symbols), timeframe=TF, fast=fast, slow=slow, update_interval=3600),
        signal_filters=SignalFiltersSection(min_confidence=0.6),
        risk=RiskSection(position_fraction=0.2, max_position_fraction=0.5, max_total_exposure=1.0,
                         stop_loss_pct=0.0, max_daily_loss_pct=0.0, max_drawdown_pct=0.0),
        feed=FeedSection(source="synthetic", history=history, stale_after=1000),
    )


def make_feeds(kind: str, symbols: tuple[str, ...], clock: SimClock) -> dict[str, Feed]:
    feeds: dict[str, Feed] = {}
    for i, symbol in enumerate(symbols):
        if kind == "synthetic":
            feeds[symbol] = SyntheticFeed(symbol, TF, clock, seed=11 + i, start_ms=DEFAULT_START_MS)
        else:  # the same walk replayed as if recorded: not labelled synthetic
            arrays = synthetic_arrays(5000, seed=11 + i, start_ms=DEFAULT_START_MS, timeframe=TF)
            feeds[symbol] = ReplayFeed(arrays, symbol, TF, clock)
    return feeds


@asynccontextmanager
async def running_bot(tmp_path: Path, *, symbols: tuple[str, ...] = SYMBOLS, fast: int = 400, slow: int = 500,
                      feed: str = "synthetic", rate_limiter: bool = False, timezone: str = "UTC",
                      admins: tuple[int, ...] = (ADMIN, ADMIN2), viewers: tuple[int, ...] = (VIEWER,),
                      concurrent_updates: int = 8, config: TradingConfig | None = None,
                      feeds: dict[str, Feed] | None = None, clock: SimClock | None = None,
                      wall_clock: bool = False) -> AsyncIterator[Harness]:
    """The whole stack. By default the SMA windows are too long to ever cross: no automatic trades.

    ``config``, ``feeds`` and ``clock`` replace the defaults (e.g. the model strategy on a replay of real
    candles); models live in ``tmp_path / "models"``. Confirmations expire on ``Harness.wall``, which
    tests advance, or with ``wall_clock`` on the bot's default, the real wall clock."""
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, telegram_admin_ids=list(admins),
                        telegram_viewer_ids=list(viewers), sqlite_path=tmp_path / "agent.db", timezone=timezone,
                        models_dir=tmp_path / "models")
    clock = clock or SimClock(DEFAULT_START_MS + WARMUP * STEP_MS)
    config = config or trading_config(symbols, fast, slow, history=max(WARMUP, slow + 5))
    engine_app = await build(settings, config, clock=clock, feeds=feeds or make_feeds(feed, symbols, clock),
                             poll_interval=3600.0, heartbeat_interval=3600.0)
    emu = BotApiEmulator(token=TOKEN, bot_username=BOT_USERNAME)
    async with emu.run() as url:
        await engine_app.start()
        wall = SimClock(LiveClock().now_ms())
        app = build_application(engine_app.facade, settings.telegram, base_url=f"{url}/bot",
                                base_file_url=f"{url}/file/bot", rate_limiter=rate_limiter,
                                concurrent_updates=concurrent_updates, clock=None if wall_clock else wall.now_ms)
        harness = Harness(emu, engine_app, app, clock, wall)
        await wait_until(lambda: all(st.warmed for st in engine_app.engine.symbols.values()))
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield harness
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
            await engine_app.stop()
