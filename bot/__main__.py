"""The worker: ``python -m bot`` runs the engine and the Telegram bot in one process and one event loop.

Configuration comes from the environment (see config/settings.py) and the TOML trading config
(``TRADING_CONFIG``, embedded defaults otherwise). A configuration error prints one line to stderr
and exits with code 2. SIGTERM or SIGINT stop everything cleanly within 10 s; the exit code is 0.

Before it trades, the worker takes the database's single-engine lock (engine/lock.py): a second
worker on the same database waits, logging why, and takes over when the first exits. A SIGTERM
while waiting exits 0 at once. If the lock is lost while running (the PostgreSQL session holding
it died), the worker stops and exits 1 so that the platform restarts it.

Time: with ``feed.source = "exchange"`` the worker's clock follows the exchange's
``/api/v3/time`` (``ExchangeTime``): the offset is measured at start-up and re-measured
periodically, and the rate is measured too (as a lower bound, so the clock lags rather than leads),
so a fake exchange running faster than wall time (``python -m sim.exchange --speed
600``) is followed as well as Binance itself.
"""

from __future__ import annotations

import signal
import sys


def _stop_before_start(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT before the event loop's own handlers exist (imports, configuration): nothing is open
    yet, so stopping is exiting 0, as the platform expects of a clean stop."""
    raise SystemExit(0)


if __name__ == "__main__":  # first, before the imports that take most of a second; serve() replaces them
    signal.signal(signal.SIGTERM, _stop_before_start)
    signal.signal(signal.SIGINT, _stop_before_start)

import asyncio  # noqa: E402  (after the signal handlers, on purpose)
import contextlib  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import structlog  # noqa: E402

from config.settings import ConfigError, Settings, TradingConfig, load_settings, load_trading_config  # noqa: E402

log = structlog.get_logger("bot.worker")

STOP_DEADLINE_S = 8.0  # within the 10 s a container manager grants after SIGTERM
LOCK_CHECK_S = 5.0  # how often the running worker verifies it still holds the single-engine lock


def secrets_of(settings: Settings) -> list[str]:
    """Values that must never reach a log line: the token, the database URL and its password."""
    found: list[str] = []
    if settings.telegram_bot_token is not None:
        found.append(settings.telegram_bot_token.get_secret_value())
    if settings.webhook_secret is not None:
        found.append(settings.webhook_secret.get_secret_value())
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        found.append(url)
        found.extend(_url_password(url))
    return found


def _url_password(url: str) -> list[str]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:
        return []
    return [str(password)] if password else []


def load(environ_overrides: dict[str, object] | None = None) -> tuple[Settings, TradingConfig]:
    """Settings and trading config for the worker; ConfigError on anything missing or invalid."""
    settings = load_settings(**(environ_overrides or {}))
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value().strip():
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set (the worker needs the token from @BotFather)")
    from bot.runtime import zone

    zone(settings.timezone)
    check_urls(settings)
    return settings, load_trading_config(settings.trading_config)


OUR_PREFIXES = ("TELEGRAM_", "EXCHANGE_", "WEBHOOK_", "DATABASE_", "SQLITE_", "TRADING_", "LOG_", "MODELS_",
                "DAILY_", "API_")


def unknown_settings(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Environment variables that look like ours but are none of them (a typo is otherwise silently ignored),
    each as one sentence naming it and the setting it probably meant."""
    import difflib

    known = [name.upper() for name in Settings.model_fields]
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(OUR_PREFIXES) and upper not in known:
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
            found.append(f"{name} is not a setting and is ignored" + (f"; did you mean {close[0]}?" if close else ""))
    return found


def check_urls(settings: Settings) -> None:
    """The URL variables, checked up front so that a typo is one line naming it, not a traceback later."""
    from urllib.parse import urlparse

    for name in ("exchange_base_url", "telegram_api_base_url", "telegram_api_file_url", "webhook_url"):
        value = getattr(settings, name)
        if value is None:
            continue
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"invalid environment variable {name.upper()}: must be an http(s) URL (got {value!r})")
    if settings.webhook_url and settings.port is None:
        raise ConfigError("invalid environment variable PORT: WEBHOOK_URL is set, so PORT (the port to listen on) "
                          "must be set too")
    if settings.database_url is not None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        from engine.store.db import normalize_database_url

        raw = settings.database_url.get_secret_value()
        try:
            backend = make_url(normalize_database_url(raw, settings.sqlite_path)).get_backend_name()
        except (ArgumentError, ValueError):
            backend = None
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError("invalid environment variable DATABASE_URL: expected postgres://user:password@host/db "
                              "or sqlite:///path (value not shown: it holds a password)")


class ExchangeTime:
    """A clock following the exchange's ``/api/v3/time``: a lower bound of the exchange's time, never ahead.

    Each sample is (server time, wall time before the request, wall time after it). The rate is the
    best lower bound ``(S_n - S_0) / (after_n - before_0)`` seen since start-up (it tightens as the
    baseline grows), and "now" is extrapolated from the best sample's *after* time: both
    errors make the clock lag, never lead (a leading clock would take the exchange's open candle for
    a closed one). Against a real exchange the rate bound is within 2 % of 1 and taken as exactly 1:
    the OffsetClock of ``exchange_clock``, re-synced now and then. Against the fake exchange's scaled
    time (``--speed``) the rate converges to its speed. Never goes backwards."""

    def __init__(self, server_ms: int, before_ms: int, after_ms: int, *,
                 wall: Callable[[], int] | None = None, synced: bool = True) -> None:
        self._now_wall = wall or self.wall_ms
        self._anchor = (server_ms, before_ms)
        self._server = server_ms
        self._wall = after_ms
        self.rate = 1.0
        self._low = 0.0
        self._last = 0
        self.synced = synced

    @classmethod
    def unsynced(cls, wall: Callable[[], int] | None = None) -> ExchangeTime:
        """The exchange has not answered yet: the wall clock stands in (for timestamps only: the exchange feeds
        deliver nothing until ``synced``) and the first sample replaces it, even backwards."""
        now = (wall or cls.wall_ms)()
        return cls(now, now, now, wall=wall, synced=False)

    def ready(self) -> bool:
        return self.synced

    @staticmethod
    def wall_ms() -> int:
        return time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        now = self._server + int((self._now_wall() - self._wall) * self.rate)
        if now < self._last:
            return self._last
        self._last = now
        return now

    def resync(self, server_ms: int, before_ms: int, after_ms: int) -> None:
        if not self.synced:  # the first answer since start: the exchange's time replaces the stand-in
            self._anchor = (server_ms, before_ms)
            self._server, self._wall, self._last, self.synced = server_ms, after_ms, 0, True
            return
        s0, b0 = self._anchor
        span = after_ms - b0
        if span > 0 and server_ms > s0:
            self._low = max(self._low, (server_ms - s0) / span)  # every sample's bound holds: keep the best
            self.rate = 1.0 if abs(self._low - 1.0) < 0.02 else self._low
        # both are lower bounds of the exchange's time at after_ms: keep the better one (a slow request
        # gives a poor sample)
        previous = self._server + int((after_ms - self._wall) * self.rate)
        self._server, self._wall = max(server_ms, previous), after_ms

    @property
    def resync_every_s(self) -> float:
        return 60.0 if self.rate == 1.0 else 1.0


EXCHANGE_RETRY_MAX_S = 30.0  # the longest pause between attempts to reach an exchange that was down at start


async def _server_time(feed: Any) -> tuple[int, int, int]:
    before = ExchangeTime.wall_ms()
    server = int(await feed.server_time())
    return server, before, ExchangeTime.wall_ms()


async def exchange_time(base_url: str) -> tuple[ExchangeTime, Any]:
    """The clock and the probe feed used to keep it in sync (close the probe when done). An exchange that
    does not answer is one warning line, not a failed start: the clock is then ``unsynced`` (the worker and
    its bot run, the exchange feeds deliver nothing) until ``keep_in_sync`` reaches the exchange."""
    from engine.core.clock import LiveClock
    from engine.feeds.base import FeedError
    from engine.feeds.exchange import ExchangeFeed

    probe = ExchangeFeed(base_url, "BTCUSDT", "1m", LiveClock(), max_attempts=3)
    try:
        clock = ExchangeTime(*await _server_time(probe))
    except FeedError as exc:
        log.warning("exchange_unreachable", error=str(exc),
                    action="starting anyway: no trading until the exchange answers; retrying with backoff")
        clock = ExchangeTime.unsynced()
    except BaseException:
        await probe.close()
        raise
    return clock, probe


async def keep_in_sync(clock: ExchangeTime, probe: Any) -> None:
    pause = 0.25  # the first re-sync soon: it measures the rate
    failures = 0
    down_since = time.monotonic() if not clock.synced else None
    while True:
        await asyncio.sleep(pause)
        try:
            clock.resync(*await _server_time(probe))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            if clock.synced:
                log.warning("clock_resync_failed", error=f"{type(exc).__name__}: {exc}")
                pause = clock.resync_every_s
            else:
                log.info("exchange_still_unreachable", attempt=failures, error=f"{type(exc).__name__}: {exc}")
                pause = min(EXCHANGE_RETRY_MAX_S, 2.0 ** min(failures, 5)) * random.uniform(0.5, 1.0)
            continue
        if down_since is not None:
            log.info("exchange_recovered", down_s=round(time.monotonic() - down_since, 1))
            down_since = None
            pause = 0.25  # measure the rate soon, as after a start with the exchange up
            continue
        pause = clock.resync_every_s


async def serve(settings: Settings, config: TradingConfig) -> int:
    from telegram.error import InvalidToken

    from bot.app import build_application
    from bot.runtime import Runtime
    from engine.app import build
    from engine.store.db import DatabaseUnavailable

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop_requested)
    background: list[asyncio.Task[None]] = []
    probe = None
    clock = None
    try:
        if config.feed.source == "exchange":
            clock, probe = await exchange_time(settings.exchange_base_url)
            background.append(asyncio.create_task(keep_in_sync(clock, probe), name="clock-sync"))
        engine_app = await build(settings, config, clock=clock, clock_ready=clock.ready if clock else None)
    except ConfigError:
        await _cancel(background, probe)
        raise
    except DatabaseUnavailable as exc:
        log.error("start_failed", stage="database", error=str(exc))
        await _cancel(background, probe)
        print(f"database error: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the process boundary: say why (redacted) and exit non-zero, no bare traceback
        log.exception("start_failed", stage="engine")
        await _cancel(background, probe)
        return 1
    application = build_application(engine_app.facade, settings)
    runtime = Runtime(engine_app, application, settings)
    try:
        started = await _until_stopped(runtime.start(), stop_requested)
    except InvalidToken:
        log.error("start_failed", error="Telegram rejected TELEGRAM_BOT_TOKEN (InvalidToken)")
        await runtime.stop(STOP_DEADLINE_S)
        await _cancel(background, probe)
        print("configuration error: TELEGRAM_BOT_TOKEN was rejected by the Bot API server", file=sys.stderr)
        return 2
    except Exception:
        log.exception("start_failed")
        await runtime.stop(STOP_DEADLINE_S)
        await _cancel(background, probe)
        return 1
    code = 0
    if started:
        lock_lost = asyncio.create_task(_watch_lock(engine_app), name="lock-watch")
        stop_wait = asyncio.create_task(stop_requested.wait())
        await asyncio.wait({lock_lost, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if lock_lost.done():
            code = 1
        for task in (lock_lost, stop_wait):
            task.cancel()
    else:
        log.info("stopped_before_ready")
    await runtime.stop(STOP_DEADLINE_S)
    await _cancel(background, probe)
    return code


async def _until_stopped(start: Any, stop_requested: asyncio.Event) -> bool:
    """Run ``start`` unless a stop signal comes first (e.g. while waiting for the engine lock)."""
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


async def _watch_lock(engine_app: Any) -> None:
    from engine.lock import LockLost

    while True:
        await asyncio.sleep(LOCK_CHECK_S)
        try:
            await engine_app.lock.check()
        except LockLost as exc:
            log.error("engine_lock_lost", error=str(exc), action="stopping; the platform restarts the worker")
            return


async def _cancel(tasks: list[asyncio.Task[None]], probe: Any) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if probe is not None:
        with contextlib.suppress(Exception):
            await probe.close()


def _on_signal(sig: signal.Signals, stop_requested: asyncio.Event) -> None:
    log.info("signal_received", signal=sig.name)
    stop_requested.set()


def main() -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta, no warning
    os.environ.setdefault("TRADING_AGENT_JIT", "0")  # the kernel under CPython: no numba import, ~115 MB less
    from engine.logs import configure_logging

    try:
        settings, config = load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, secrets=secrets_of(settings))
    for warning in unknown_settings(os.environ):
        log.warning("unknown_setting", detail=warning)
    if config.trading.strategy != "sma-cross":
        from engine.models.catboost_model import import_catboost_without_pandas

        import_catboost_without_pandas()  # ~30 MB less for the whole run
    try:
        return asyncio.run(serve(settings, config))
    except ConfigError as exc:  # raised while building (e.g. a replay file missing)
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
