"""Outbox -> chats: the background task that delivers engine alerts to Telegram.

The engine never waits on Telegram: it writes alerts to its outbox (in the same transaction as the
change they describe) and the sender only reads that outbox through the facade. Delivery is in
order per chat: one worker task per chat sends that chat's alerts one at a time, and retries the
same alert until it is delivered or given up on, so a later alert never overtakes an earlier one
while other chats go on undisturbed.

What a failed send leads to::

    RetryAfter (429)          -> every chat waits retry_after (Telegram's flood control is per bot),
                                 then the same alert is sent again
    NetworkError, TimedOut,   -> the same alert again after an exponential backoff with jitter
    5xx, connection refused      (capped at max_backoff; any later success elsewhere wakes it early)
    Forbidden (403)           -> the chat blocked the bot: facade.deactivate_chat, no more sends
    ChatMigrated              -> the new chat id is registered, the old one deactivated
    BadRequest, anything else -> this alert is given up on (final failure), the chat goes on

A delivery is marked only after the send succeeded, so a crash between the two can repeat one
message (at-least-once at the Telegram edge); within a process a per-chat watermark guarantees an
alert is never sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable
from datetime import UTC, timedelta, tzinfo
from typing import Any, Protocol

import structlog
from telegram import Bot, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.render import alert_text
from engine.events import EngineEvent, EngineStopped
from engine.store.repo import Delivery

log = structlog.get_logger("bot.alerts")

FIRST_BACKOFF = 0.5
BATCH = 500


class AlertFacade(Protocol):
    """The part of engine.facade.EngineFacade the sender uses."""

    @property
    def mode(self) -> str: ...

    async def pending_alerts(self, limit: int = 100, *, kind: str | None = None) -> list[Any]: ...

    async def alert_delivered(self, outbox_id: int, chat_id: int, message_id: int | None) -> None: ...

    async def alert_failed(self, outbox_id: int, chat_id: int, error: str, *, final: bool) -> None: ...

    async def deactivate_chat(self, chat_id: int) -> None: ...

    async def register_chat(self, chat_id: int, thread_id: int | None = None) -> None: ...


SentHook = Callable[[Delivery, Message], None]


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def backoff(attempt: int, max_backoff: float, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random."""
    delay = min(max_backoff, FIRST_BACKOFF * 2.0 ** min(attempt, 30))
    return delay / 2 + rng.uniform(0, delay / 2)


class ChatPacer:
    """At most ``rate`` messages a second per chat on average, bursts of ``burst`` allowed."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens: dict[int, tuple[float, float]] = {}

    def delay(self, chat_id: int) -> float:
        """Seconds to wait before the next send to ``chat_id`` (and take its token)."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        tokens, at = self._tokens.get(chat_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate) - 1.0
        self._tokens[chat_id] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / self.rate


class AlertSender:
    """Drains ``facade.pending_alerts()`` into Telegram, in order per chat, until stopped."""

    def __init__(self, bot: Bot, facade: AlertFacade, *, poll_interval: float = 0.5, max_backoff: float = 60.0,
                 tz: tzinfo = UTC, chat_rate: float = 1.0, chat_burst: int = 5, on_sent: SentHook | None = None,
                 rng: random.Random | None = None) -> None:
        self.bot = bot
        self.facade = facade
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.tz = tz
        self.on_sent = on_sent
        self.delivered = 0
        self._pacer = ChatPacer(chat_rate, chat_burst)
        self._rng = rng or random.Random()
        self._wakeup = asyncio.Event()
        self._recovered = asyncio.Event()
        self._flood_until = 0.0
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._handled: dict[int, int] = {}  # chat -> highest outbox id delivered or given up on
        self._urgent: dict[int, list[Delivery]] = {}  # chat -> alerts that go before its backlog (at stop)
        self._done: set[tuple[int, int]] = set()  # (outbox id, chat) sent ahead of their turn

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-sender")
            log.info("alert_sender_started", poll_interval=self.poll_interval)

    def wake(self) -> None:
        """Look at the outbox now (the engine bus calls this after every commit)."""
        self._wakeup.set()

    def on_event(self, _: EngineEvent) -> None:
        """Bus subscriber: an event was committed, so there may be something to send."""
        self.wake()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, deadline_s: float = 5.0) -> None:
        """Deliver what can be delivered within ``deadline_s`` seconds, then stop."""
        task = self._task
        if task is None:
            return
        self._draining = True
        end = time.monotonic() + max(0.0, deadline_s)
        try:  # a database that stopped answering must not hold the stop past its deadline
            await asyncio.wait_for(self._put_lifecycle_first(), max(0.1, deadline_s / 2))
        except TimeoutError:
            log.warning("alert_outbox_read_slow", detail="stop alert not put first: the database did not answer")
        self.wake()
        done, _ = await asyncio.wait({task}, timeout=max(0.0, end - time.monotonic()))
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._cancel_workers()
        self._task = None
        log.info("alert_sender_stopped", delivered=self.delivered, drained=bool(done))

    async def _put_lifecycle_first(self) -> None:
        """At stop, "Agent stopped" (and a start not yet sent) go before a chat's backlog: with hundreds of alerts
        queued behind Telegram's limits, it would otherwise wait for the next process. The backlog follows in
        order and what the deadline leaves is delivered by the next process."""
        try:
            urgent: list[Delivery] = await self.facade.pending_alerts(BATCH, kind=EngineStopped.kind)
        except Exception:
            log.exception("alert_outbox_read_failed")
            return
        for d in urgent:
            if d.outbox_id > self._handled.get(d.chat_id, 0):
                self._urgent.setdefault(d.chat_id, []).append(d)

    async def _cancel_workers(self) -> None:
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()

    # ------------------------------------------------------------------ main loop

    async def _run(self) -> None:
        failures = 0
        try:
            while True:
                self._wakeup.clear()
                try:
                    pending = await self._dispatch()
                    failures = 0
                except Exception:
                    log.exception("alert_outbox_read_failed")
                    pending, failures = 1, failures + 1
                if self._draining and not pending and not self._workers:
                    return
                wait = self.poll_interval if not failures else backoff(failures, self.max_backoff, self._rng)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
        finally:
            await self._cancel_workers()

    async def _dispatch(self) -> int:
        """Start a worker for every chat with alerts waiting and no worker yet; how many alerts wait."""
        deliveries: list[Delivery] = await self.facade.pending_alerts(BATCH)
        by_chat: dict[int, list[Delivery]] = {}
        for d in deliveries:
            if d.chat_id not in self._workers and d.outbox_id > self._handled.get(d.chat_id, 0):
                by_chat.setdefault(d.chat_id, []).append(d)
        for chat_id in self._urgent:
            if chat_id not in self._workers:
                by_chat.setdefault(chat_id, [])
        for chat_id, items in by_chat.items():
            worker = asyncio.create_task(self._chat_worker(chat_id, items), name=f"alerts:{chat_id}")
            self._workers[chat_id] = worker
            worker.add_done_callback(functools.partial(self._worker_done, chat_id))
        return len(deliveries)

    def _worker_done(self, chat_id: int, _: asyncio.Task[None]) -> None:
        self._workers.pop(chat_id, None)
        self.wake()

    # ------------------------------------------------------------------ one chat

    async def _chat_worker(self, chat_id: int, items: list[Delivery]) -> None:
        try:
            for delivery in [None, *items]:
                while self._urgent.get(chat_id):  # put first by stop(), also while this worker is under way
                    ahead = self._urgent[chat_id].pop(0)
                    self._done.add((ahead.outbox_id, chat_id))
                    if not await self._deliver(ahead):
                        return
                if delivery is None or (delivery.outbox_id, chat_id) in self._done:
                    continue
                if not await self._deliver(delivery):
                    return  # the chat is gone (blocked the bot or migrated)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("alert_worker_failed", chat_id=chat_id)

    async def _deliver(self, d: Delivery) -> bool:
        """Send one alert until it is delivered or given up on; False if the chat is gone."""
        attempt = 0
        try:
            text = self._text(d)
        except Exception as exc:  # a bug in a renderer must not wedge the chat
            log.exception("alert_render_failed", chat_id=d.chat_id, outbox_id=d.outbox_id)
            await self._give_up(d, f"render failed: {exc!r}")
            return True
        while True:
            await self._pace(d.chat_id)
            try:
                message = await self._send(d, text)
            except RetryAfter as exc:
                await self._flood_wait(d, retry_seconds(exc))
                continue
            except Forbidden as exc:
                await self._chat_gone(d, f"forbidden: {exc.message}")
                return False
            except ChatMigrated as exc:
                await self._chat_migrated(d, exc.new_chat_id)
                return False
            except BadRequest as exc:
                await self._give_up(d, f"bad request: {exc.message}")
                return True
            except NetworkError as exc:  # includes TimedOut, 5xx and refused connections
                attempt += 1
                await self._retry_later(d, attempt, f"{type(exc).__name__}: {exc.message}")
                continue
            except TelegramError as exc:
                await self._give_up(d, f"{type(exc).__name__}: {exc.message}")
                return True
            await self._delivered(d, message)
            return True

    def _text(self, d: Delivery) -> str:
        return alert_text(d.event, tz=self.tz, paper=self.facade.mode == "paper")

    async def _send(self, d: Delivery, text: str) -> Message:
        return await self.bot.send_message(chat_id=d.chat_id, text=text, parse_mode=ParseMode.HTML,
                                           message_thread_id=d.thread_id, disable_notification=d.silent)

    async def _pace(self, chat_id: int) -> None:
        flood = self._flood_until - time.monotonic()
        if flood > 0:
            await asyncio.sleep(flood)
        delay = self._pacer.delay(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)

    async def _flood_wait(self, d: Delivery, seconds: float) -> None:
        log.warning("alert_flood_control", chat_id=d.chat_id, outbox_id=d.outbox_id, retry_after=seconds)
        self._flood_until = max(self._flood_until, time.monotonic() + seconds)
        await asyncio.sleep(max(0.0, self._flood_until - time.monotonic()))

    async def _retry_later(self, d: Delivery, attempt: int, error: str) -> None:
        delay = backoff(attempt - 1, self.max_backoff, self._rng)
        log.warning("alert_send_retry", chat_id=d.chat_id, outbox_id=d.outbox_id, attempt=attempt,
                    delay_s=round(delay, 2), error=error)
        await self._record_failure(d, error, final=False)
        self._recovered.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._recovered.wait(), delay)

    async def _delivered(self, d: Delivery, message: Message) -> None:
        self._handled[d.chat_id] = max(d.outbox_id, self._handled.get(d.chat_id, 0))
        self.delivered += 1
        self._recovered.set()
        try:
            await self.facade.alert_delivered(d.outbox_id, d.chat_id, message.message_id)
        except Exception:  # the message is out; the watermark keeps this process from resending it
            log.exception("alert_mark_delivered_failed", chat_id=d.chat_id, outbox_id=d.outbox_id)
        if self.on_sent is not None:
            self.on_sent(d, message)

    async def _give_up(self, d: Delivery, error: str) -> None:
        log.error("alert_given_up", chat_id=d.chat_id, outbox_id=d.outbox_id, kind=d.kind, error=error)
        self._handled[d.chat_id] = max(d.outbox_id, self._handled.get(d.chat_id, 0))
        await self._record_failure(d, error, final=True)

    async def _chat_gone(self, d: Delivery, error: str) -> None:
        log.warning("alert_chat_blocked", chat_id=d.chat_id, error=error)
        await self.facade.deactivate_chat(d.chat_id)

    async def _chat_migrated(self, d: Delivery, new_chat_id: int) -> None:
        log.warning("alert_chat_migrated", chat_id=d.chat_id, new_chat_id=new_chat_id)
        await self.facade.register_chat(new_chat_id, d.thread_id)
        await self.facade.deactivate_chat(d.chat_id)

    async def _record_failure(self, d: Delivery, error: str, *, final: bool) -> None:
        try:
            await self.facade.alert_failed(d.outbox_id, d.chat_id, error, final=final)
        except Exception:
            log.exception("alert_mark_failed_failed", chat_id=d.chat_id, outbox_id=d.outbox_id)
