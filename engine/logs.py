"""structlog set-up: JSON lines when stdout is not a terminal, readable lines on one.

Standard-library loggers (httpx, telegram, aiohttp, sqlalchemy, ...) go through the same
processors, so the secret redaction below covers them too: httpx logs request URLs, which hold
the bot token, and python-telegram-bot's InvalidToken message contains it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

# A Telegram bot token anywhere in a line (also inside /bot<token>/ URLs).
TOKEN_RE = re.compile(r"\d{5,12}:[A-Za-z0-9_-]{20,}")
# A password inside a database URL: scheme://user:password@host
URL_PASSWORD_RE = re.compile(r"(\w[\w+.-]*://[^:/@\s]+:)([^@\s]+)(@)")
REDACTED = "***"

_secrets: list[str] = []


def register_secret(*values: str | None) -> None:
    """Make every later log line replace these exact strings by ***."""
    for value in values:
        if value and len(value) >= 4 and value not in _secrets:
            _secrets.append(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = TOKEN_RE.sub(REDACTED, text)
    return URL_PASSWORD_RE.sub(r"\1" + REDACTED + r"\3", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    if isinstance(value, BaseException):
        return redact(repr(value))
    return value


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


def _redact_rendered(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # exc_info is rendered into "exception" by format_exc_info; redact that text as well.
    if "exception" in event_dict and isinstance(event_dict["exception"], str):
        event_dict["exception"] = redact(event_dict["exception"])
    return event_dict


NOISY = ("httpx", "httpcore", "telegram", "apscheduler", "aiosqlite", "asyncio", "sqlalchemy", "aiohttp.access",
         "alembic")


def configure_logging(level: str = "INFO", fmt: str = "auto", secrets: Iterable[str | None] = (),
                      stream: Any = None) -> None:
    stream = stream or sys.stdout
    register_secret(*secrets)
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (structlog.processors.JSONRenderer() if use_json
                     else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if use_json:
        final += [structlog.processors.format_exc_info, _redact_rendered]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, redact_processor],
        processors=[*final, redact_processor, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING)
                                         if level != "DEBUG" else logging.DEBUG)
    structlog.configure(
        # filter_by_level first: a call below the logger's level (e.g. a per-request log.debug) costs one
        # level check instead of running the time stamp, the redaction regexes and the event-dict copies
        processors=[structlog.stdlib.filter_by_level, *shared, redact_processor,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
