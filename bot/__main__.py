"""The worker: ``python -m bot`` runs the engine and the Telegram bot in one process and one event loop.

Configuration comes from the environment (see config/settings.py) and the TOML trading config
(``TRADING_CONFIG``, embedded defaults otherwise). A configuration error prints one line to stderr
and exits with code 2. SIGTERM or SIGINT stop everything cleanly within 10 s; the exit code is 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import structlog

from config.settings import ConfigError, Settings, TradingConfig, load_settings, load_trading_config

log = structlog.get_logger("bot.worker")

STOP_DEADLINE_S = 8.0  # within the 10 s a container manager grants after SIGTERM


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
    return settings, load_trading_config(settings.trading_config)


async def serve(settings: Settings, config: TradingConfig) -> int:
    from telegram.error import InvalidToken

    from bot.app import build_application
    from bot.runtime import Runtime
    from engine.app import build

    try:
        engine_app = await build(settings, config)
    except ConfigError:
        raise
    except Exception:  # the process boundary: say why (redacted) and exit non-zero, no bare traceback
        log.exception("start_failed", stage="engine")
        return 1
    application = build_application(engine_app.facade, settings)
    runtime = Runtime(engine_app, application, settings)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop_requested)
    try:
        await runtime.start()
    except InvalidToken:
        log.error("start_failed", error="Telegram rejected TELEGRAM_BOT_TOKEN (InvalidToken)")
        await runtime.stop(STOP_DEADLINE_S)
        print("configuration error: TELEGRAM_BOT_TOKEN was rejected by the Bot API server", file=sys.stderr)
        return 2
    except Exception:
        log.exception("start_failed")
        await runtime.stop(STOP_DEADLINE_S)
        return 1
    await stop_requested.wait()
    await runtime.stop(STOP_DEADLINE_S)
    return 0


def _on_signal(sig: signal.Signals, stop_requested: asyncio.Event) -> None:
    log.info("signal_received", signal=sig.name)
    stop_requested.set()


def main() -> int:
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta, no warning
    from engine.logs import configure_logging

    try:
        settings, config = load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, secrets=secrets_of(settings))
    try:
        return asyncio.run(serve(settings, config))
    except ConfigError as exc:  # raised while building (e.g. a replay file missing)
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
