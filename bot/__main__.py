"""The worker: ``python -m bot`` runs the engine and the Telegram bot in one process and one event loop.

This module is the composition root: it reads the configuration (``config.worker``: the environment
and the TOML trading config), builds the parts and hands each the slice of settings it needs, runs them
until a signal, and stops them in order:

    exchange       (engine.app.make_venue)          when feed.source = "exchange": ccxt, its markets and
                   (engine.feeds.exchange_time)     its clock; ExchangeSettings
    engine app     (engine.app.build)               database, feeds, models, core, loop, facade
    bot, HTTP API  (bot.app, bot.api.api_parts)     the facade + TelegramSettings; the API when on: + ApiSettings
    runtime        (bot.runtime.Runtime)            starts engine, API, bot; stops them in reverse

A configuration error prints one line to stderr and exits with code 2. SIGTERM or SIGINT stop everything
cleanly within 10 s; the exit code is 0. Before it trades, the worker takes the database's single-engine
lock (engine/lock.py): a second worker on the same database waits, logging why, and takes over when the
first exits. A SIGTERM while waiting exits 0 at once. If the lock is lost while running, the worker stops
and exits 1 so that the platform restarts it.
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
from collections.abc import MutableMapping  # noqa: E402
from typing import Any  # noqa: E402

import structlog  # noqa: E402

from config.settings import ConfigError, Settings, TradingConfig  # noqa: E402
from config.worker import load, secrets_of, unknown_settings  # noqa: E402

log = structlog.get_logger("bot.worker")

STOP_DEADLINE_S = 8.0  # within the 10 s a container manager grants after SIGTERM


async def serve(settings: Settings, config: TradingConfig) -> int:
    """Build, run until a stop signal (or the engine lock is lost), stop; the exit code."""
    from telegram.error import InvalidToken

    from bot.api.parts import ApiUnavailable, api_parts
    from bot.app import build_application
    from bot.runtime import Runtime, until_stopped, watch_lock
    from engine.app import build
    from engine.errors import StoreError
    from engine.store.db import DatabaseUnavailable

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop_requested)
    background: list[asyncio.Task[None]] = []
    venue = None
    clock = None
    rules = None
    try:
        if config.feed.source == "exchange":
            from engine.app import check_markets, make_venue
            from engine.feeds.exchange_time import exchange_time, keep_in_sync

            venue = make_venue(settings.exchange, config)  # an unknown id or interval: ConfigError, exit 2
            clock = await exchange_time(venue)
            background.append(asyncio.create_task(keep_in_sync(clock, venue), name="clock-sync"))
            if await check_markets(venue, config.trading.symbols):  # a symbol the exchange lacks: exit 2
                rules = {s: venue.rules(s) for s in config.trading.symbols}  # else on the first poll
        engine_app = await build(settings, config, clock=clock, clock_ready=clock.ready if clock else None,
                                 venue=venue, rules=rules)
    except ConfigError:
        await _cancel(background, venue)
        raise
    except DatabaseUnavailable as exc:
        log.error("start_failed", stage="database", error=str(exc))
        await _cancel(background, venue)
        print(f"database error: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the process boundary: say why (redacted) and exit non-zero, no bare traceback
        log.exception("start_failed", stage="engine")
        await _cancel(background, venue)
        return 1
    telegram, (tokens, api) = settings.telegram, api_parts(engine_app, settings.api)  # FastAPI only when on
    runtime = Runtime(engine_app, build_application(engine_app.facade, telegram, tokens=tokens), telegram, api=api)
    try:
        started = await until_stopped(runtime.start(), stop_requested)
    except InvalidToken:
        log.error("start_failed", error="Telegram rejected TELEGRAM_BOT_TOKEN (InvalidToken)")
        await _cancel(background, None)
        await runtime.stop(STOP_DEADLINE_S)
        print("configuration error: TELEGRAM_BOT_TOKEN was rejected by the Bot API server", file=sys.stderr)
        return 2
    except (StoreError, ApiUnavailable) as exc:  # a saved state this version cannot restore; the API's port taken
        log.error("start_failed", stage="api" if isinstance(exc, ApiUnavailable) else "restore", error=str(exc))
        await _cancel(background, None)
        await runtime.stop(STOP_DEADLINE_S)  # its one line, no traceback; exit 1 (the platform restarts)
        print(f"{'HTTP API' if isinstance(exc, ApiUnavailable) else 'database'} error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        log.exception("start_failed")
        await _cancel(background, None)
        await runtime.stop(STOP_DEADLINE_S)
        return 1
    code = 0
    if started:
        lock_lost = asyncio.create_task(watch_lock(engine_app.lock), name="lock-watch")
        stop_wait = asyncio.create_task(stop_requested.wait())
        await asyncio.wait({lock_lost, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if lock_lost.done():
            code = 1
        for task in (lock_lost, stop_wait):
            task.cancel()
    else:
        log.info("stopped_before_ready")
    await _cancel(background, None)  # the clock's sync first: the exchange is closed with the engine
    await runtime.stop(STOP_DEADLINE_S)
    return code


async def _cancel(tasks: list[asyncio.Task[None]], venue: Any) -> None:
    """Stop the background tasks; close the exchange when the engine app that owns it was never built."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if venue is not None:
        with contextlib.suppress(Exception):
            await venue.close()


def _on_signal(sig: signal.Signals, stop_requested: asyncio.Event) -> None:
    log.info("signal_received", signal=sig.name)
    stop_requested.set()


def secret_variables() -> frozenset[str]:
    """The environment variables that hold secrets: every setting typed ``SecretStr`` (the token, the webhook
    secret, the database URL, and any key added the same way), under each name it is read by."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        if "SecretStr" not in repr(info.annotation):
            continue
        names.add(name.upper())
        choices = getattr(info.validation_alias, "choices", ())
        names.update(str(c).upper() for c in choices)
    return frozenset(names)


def scrub_secrets(environ: MutableMapping[str, str]) -> list[str]:
    """Remove the secret variables from the process environment once the settings are read: a strategy (user
    code, run in this process) or a library that prints ``os.environ`` then finds none. It does not make the
    process a sandbox (docs/DESIGN.md, "Strategies are trusted code"). The names removed."""
    secret = secret_variables()
    removed = [key for key in list(environ) if key.upper() in secret]
    for key in removed:
        del environ[key]
    return removed


def main() -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta, no warning
    os.environ.setdefault("TRADING_AGENT_JIT", "0")  # the kernel under CPython: no numba import, ~115 MB less
    from engine.logs import configure_logging

    try:
        settings, config = load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging = settings.logging
    configure_logging(logging.level, logging.format, secrets=secrets_of(settings))
    for warning in unknown_settings(os.environ):
        log.warning("unknown_setting", detail=warning)
    scrub_secrets(os.environ)  # the settings hold them now; strategy code (user code) runs in this process
    if config.trading.strategy == "model":  # a strategy needs pandas: only the CatBoost models do without
        from engine.models.catboost_model import import_catboost_without_pandas

        import_catboost_without_pandas()  # ~30 MB less for the whole run
    try:
        return asyncio.run(serve(settings, config))
    except ConfigError as exc:  # raised while building (e.g. a replay file missing)
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
