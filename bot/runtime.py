"""The engine and the python-telegram-bot Application in one event loop, started and stopped in order.

Start: engine -> HTTP API (when on: uvicorn as a task, ``bot.api.server``) -> Application (initialize: getMe,
start) -> updates (long polling, or a webhook when ``WEBHOOK_URL`` and ``PORT`` are set) -> alert sender (woken
by the engine bus) -> daily summary job.
One port: when the HTTP API listens on the webhook's port (``PORT``, with ``API_ENABLED=1``), the API's server takes
the webhook too (``bot.api.webhook``, a route of the same app) and the Application's updater is never started: only
setWebhook is called, with the URL and the secret token.
Stop, in reverse: stop taking updates, stop the HTTP API (open requests finish), stop the engine after its
current step, deliver remaining alerts until the deadline, stop the Application, close the database and release
the single-engine lock.
Everything runs as tasks of the one loop (python-telegram-bot's customwebhookbot pattern, never
``run_polling`` and never a second thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import random
import secrets
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import structlog
from telegram.error import BadRequest, InvalidToken, NetworkError
from telegram.ext import Application, ContextTypes

from bot.alerts import AlertSender
from config.settings import TelegramSettings, time_zone
from engine.app import EngineApp
from engine.lock import EngineLock, LockLost

if TYPE_CHECKING:
    from bot.api.server import ApiServer

log = structlog.get_logger("bot.runtime")

TELEGRAM_RETRY_MAX_S = 60.0  # the longest pause between two attempts to reach Telegram at start-up
ALLOWED_UPDATES = ("message", "callback_query", "edited_message")
LOCK_CHECK_S = 5.0  # how often the running worker verifies it still holds the single-engine lock

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


@dataclass(frozen=True)
class WebhookPlan:
    listen: str
    port: int
    url_path: str
    webhook_url: str
    secret_token: str


def webhook_plan(settings: TelegramSettings) -> WebhookPlan | None:
    """Where to listen for webhook updates, or None for long polling."""
    if not settings.webhook_url or not settings.port:
        return None
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    path = urlparse(settings.webhook_url).path.strip("/")
    return WebhookPlan("0.0.0.0", settings.port, path, settings.webhook_url, secret)


def summary_time(settings: TelegramSettings) -> dtm.time:
    """DAILY_SUMMARY_TIME in TIMEZONE, as a JobQueue time."""
    hour, minute = (int(p) for p in settings.daily_summary_time.split(":"))
    return dtm.time(hour, minute, tzinfo=time_zone(settings.timezone))




class Runtime:
    """Runs one EngineApp and one Application together; ``stop`` can be called once, from a signal."""

    def __init__(self, engine_app: EngineApp, application: AnyApplication, settings: TelegramSettings, *,
                 sender: AlertSender | None = None, poll_timeout: float = 10.0, api: ApiServer | None = None) -> None:
        self.engine_app = engine_app
        self.api = api
        self.application = application
        self.settings = settings
        self.sender = sender or AlertSender(application.bot, engine_app.facade, tz=time_zone(settings.timezone))
        self.poll_timeout = poll_timeout
        self.stopped = asyncio.Event()
        self._started = False
        self._stopping = False
        self._connect_task: asyncio.Task[None] | None = None
        self.plan = webhook_plan(settings)  # once: without WEBHOOK_SECRET its secret is drawn at random
        self.one_port = api is not None and self.plan is not None and api.settings.port == self.plan.port
        if self.one_port:
            assert api is not None and self.plan is not None
            api.take_webhook(application, self.plan.url_path, self.plan.secret_token)

    async def start(self) -> None:
        """Start the engine, then the bot. Telegram unreachable (a network error, a timeout, a 5xx) does not stop
        the agent: trading goes on, alerts wait in the outbox, and the bot is connected in the background with
        backoff. A rejected token is raised (InvalidToken): that is configuration, not an outage. The HTTP API (when
        on) starts with the engine, before Telegram, and works without it; a port it cannot take is raised
        (``bot.api.server.ApiUnavailable``)."""
        await self.engine_app.start()
        if self.api is not None:
            await self.api.start()
        try:
            await self.application.initialize()  # getMe: fails fast on a wrong token
        except NetworkError as exc:
            if isinstance(exc, BadRequest):
                raise
            log.warning("telegram_unreachable", error=f"{type(exc).__name__}: {exc}",
                        action="trading goes on and alerts wait in the outbox; reconnecting with backoff")
            self._connect_task = asyncio.create_task(self._connect_later(), name="telegram-connect")
            self._started = True
            self._log_ready()
            return
        await self._start_bot()
        self._started = True
        self._log_ready()

    async def _start_bot(self) -> None:
        if self.application.post_init is not None:  # run_polling would call it; we start by hand
            await self.application.post_init(self.application)
        await self.application.start()
        await self._start_updates()
        self.engine_app.bus.subscribe(self.sender.on_event)
        self.sender.start()
        self._schedule_daily_summary()

    async def _connect_later(self) -> None:
        """Retry getMe with backoff until Telegram answers, then start the bot; say when it is back."""
        down_since = time.monotonic()
        failures = 0
        rng = random.Random()
        while True:
            failures += 1
            await asyncio.sleep(min(TELEGRAM_RETRY_MAX_S, 2.0 ** min(failures, 6)) * rng.uniform(0.5, 1.0))
            try:
                await self.application.initialize()
            except InvalidToken:
                log.error("telegram_token_rejected", action="the bot stays off; fix TELEGRAM_BOT_TOKEN and restart")
                return
            except NetworkError as exc:
                log.info("telegram_still_unreachable", attempt=failures, error=f"{type(exc).__name__}: {exc}")
                continue
            break
        try:
            await self._start_bot()
        except Exception:  # a task boundary: say it; the engine goes on trading either way
            log.exception("telegram_start_failed")
            return
        log.info("telegram_recovered", bot=self.application.bot.username,
                 down_s=round(time.monotonic() - down_since, 1))

    def _log_ready(self) -> None:
        connected = self.application.running
        log.info("ready", bot=self.application.bot.username if connected else None, telegram=connected,
                 mode=self.engine_app.facade.mode, symbols=list(self.engine_app.facade.symbols),
                 webhook=self.plan is not None, one_port=self.one_port, numba_loaded="numba" in sys.modules,
                 api=f"{self.api.settings.host}:{self.api.port}" if self.api is not None else None)

    async def _start_updates(self) -> None:
        updater = self.application.updater
        plan = self.plan
        if self.one_port and plan is not None:  # the API's server takes the updates (bot.api.webhook)
            await self.application.bot.set_webhook(url=plan.webhook_url, secret_token=plan.secret_token,
                                                   allowed_updates=list(ALLOWED_UPDATES))
            return
        if updater is None:
            return
        if plan is None:
            await updater.start_polling(timeout=int(self.poll_timeout), drop_pending_updates=False,
                                        allowed_updates=list(ALLOWED_UPDATES),
                                        error_callback=_polling_error)
            return
        await updater.start_webhook(listen=plan.listen, port=plan.port, url_path=plan.url_path,
                                    webhook_url=plan.webhook_url, secret_token=plan.secret_token,
                                    allowed_updates=list(ALLOWED_UPDATES))

    def _schedule_daily_summary(self) -> None:
        jobs = self.application.job_queue
        if jobs is None:
            log.warning("no_job_queue", detail="daily summary disabled")
            return
        jobs.run_daily(self._daily_summary, time=summary_time(self.settings), name="daily-summary")

    async def _daily_summary(self, _: ContextTypes.DEFAULT_TYPE) -> None:
        event = await self.engine_app.facade.daily_summary()
        log.info("daily_summary", day=event.day, pnl=event.pnl)
        self.sender.wake()

    async def stop(self, deadline_s: float = 8.0) -> None:
        """Stop everything in reverse order; alerts are delivered until ``deadline_s`` runs out."""
        if self._stopping:
            await self.stopped.wait()
            return
        self._stopping = True
        end = time.monotonic() + deadline_s
        try:
            await self._stop_parts(end)
        finally:
            self.stopped.set()
            log.info("stopped", took_s=round(deadline_s - (end - time.monotonic()), 2))

    async def _stop_parts(self, end: float) -> None:
        """Each step is bounded: a step that hangs (a stuck HTTP request, a database that stopped answering) is
        named in the log and the next step still runs, so the worker exits well before the platform's SIGKILL."""
        app = self.application
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        if app.updater is not None and app.updater.running:
            await _guarded("stop_updates", app.updater.stop(), STEP_TIMEOUT_S)
        if self.api is not None:  # no command may start while the engine stops
            await _guarded("stop_api", self.api.stop(), STEP_TIMEOUT_S)
        # the current step finishes and commits; the clean-shutdown flag is written
        await _guarded("stop_engine", self.engine_app.stop_engine(), ENGINE_STOP_TIMEOUT_S)
        self.engine_app.bus.unsubscribe(self.sender.on_event)
        alerts_s = max(0.5, end - time.monotonic() - 0.5)
        await _guarded("stop_alerts", self.sender.stop(alerts_s), alerts_s + STEP_TIMEOUT_S)
        if app.running:
            await _guarded("stop_application", app.stop(), STEP_TIMEOUT_S)
        await _guarded("shutdown_application", app.shutdown(), STEP_TIMEOUT_S)
        # a failed initialize (e.g. InvalidToken from getMe) leaves the HTTP clients open and shutdown skips
        # them: close both (Bot API calls, and getUpdates, which has its own and no public accessor)
        for request in dict.fromkeys(getattr(app.bot, "_request", (app.bot.request,))):
            await _guarded("close_http", request.shutdown(), STEP_TIMEOUT_S)
        # database, then the single-engine lock
        await _guarded("close_engine", self.engine_app.close(), ENGINE_STOP_TIMEOUT_S)


STEP_TIMEOUT_S = 3.0  # one shutdown step of the bot's (HTTP, job queue)
ENGINE_STOP_TIMEOUT_S = 8.0  # the engine's current step and its commit; closing the database


async def _guarded(step: str, awaitable: Awaitable[Any], timeout_s: float) -> None:
    """Run one shutdown step for at most ``timeout_s``; a failure or a timeout is logged and the next step runs."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(awaitable, timeout_s)
    except TimeoutError:
        log.warning("shutdown_step_timeout", step=step, timeout_s=timeout_s)
    except Exception:
        log.exception("shutdown_step_failed", step=step)
    else:
        took = time.monotonic() - started
        if took > 1.0:
            log.info("shutdown_step_slow", step=step, took_s=round(took, 2))


def _polling_error(exc: Exception) -> None:
    """Called by PTB's polling loop, which then retries with a growing pause (1 s up to 30 s): a 409
    Conflict (another process polls the same token) is neither a crash nor a busy loop."""
    from telegram.error import Conflict

    if isinstance(exc, Conflict):
        log.warning("polling_conflict", error=str(exc),
                    why="another process is polling this bot token (an overlapping deploy, or a second copy); "
                        "retrying with backoff")
        return
    log.warning("polling_error", error=f"{type(exc).__name__}: {exc}")


async def until_stopped(start: Awaitable[None], stop_requested: asyncio.Event) -> bool:
    """Run ``start`` unless a stop signal comes first (e.g. while waiting for the engine lock); whether it ran."""
    start_task = asyncio.ensure_future(start)
    stop_wait = asyncio.ensure_future(stop_requested.wait())
    await asyncio.wait({start_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    if start_task.done():
        start_task.result()
        return True
    start_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await start_task
    return False


async def watch_lock(lock: EngineLock, every_s: float = LOCK_CHECK_S) -> None:
    """Return when the single-engine lock is lost (the PostgreSQL session holding it died): the worker must stop."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await lock.check()
        except LockLost as exc:
            log.error("engine_lock_lost", error=str(exc), action="stopping; the platform restarts the worker")
            return
