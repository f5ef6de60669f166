"""The worker's start-up checks of its configuration (``python -m bot``), beyond what each value's own type says:
the token is required, the time zone exists, URLs are http(s) URLs and the database URL names a database we
support; variables that look like ours but are none are named; and the secrets every log line must hide.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from urllib.parse import urlparse

from pydantic import AliasChoices

from config.settings import ConfigError, Settings, TradingConfig, load_settings, load_trading_config, time_zone


def secrets_of(settings: Settings) -> list[str]:
    """Values that must never reach a log line: the token, the database URL and its password, the exchange's keys,
    the HTTP API's tokens (``API_TOKENS``, each and the whole value)."""
    found: list[str] = []
    for key in (settings.exchange_api_key, settings.exchange_api_secret, settings.exchange_api_password):
        if key is not None and key.get_secret_value().strip():
            found.append(key.get_secret_value())
    if settings.telegram_bot_token is not None:
        found.append(settings.telegram_bot_token.get_secret_value())
    if settings.webhook_secret is not None:
        found.append(settings.webhook_secret.get_secret_value())
    if settings.api_tokens is not None and settings.api_tokens.get_secret_value().strip():
        found.append(settings.api_tokens.get_secret_value())
        found.extend(t.get_secret_value() for _, t in settings.api.token_roles())
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
    time_zone(settings.timezone)
    check_urls(settings)
    check_live(settings)
    check_api(settings)
    return settings, load_trading_config(settings.trading_config)


def check_api(settings: Settings) -> None:
    """The HTTP API's settings parse (ConfigError otherwise). One port: with the API on the webhook's port
    (``WEBHOOK_URL`` and ``PORT`` set, ``API_ENABLED=1`` and no other ``API_PORT``) the API's server takes the webhook
    too (``bot.api.webhook``), so the webhook's path must not be one of the API's or the dashboard's."""
    api = settings.api
    api.token_roles()
    if api.enabled and settings.webhook_url and settings.port is not None and api.port == settings.port:
        path = "/" + urlparse(settings.webhook_url).path.strip("/")
        if path == "/api" or path == "/static" or path.startswith(("/api/", "/static/")):
            raise ConfigError(f"invalid environment variable WEBHOOK_URL: its path {path} is the HTTP API's or the "
                              f"dashboard's, and both are served on PORT={settings.port}; use another path, e.g. "
                              f"/telegram/<something random>")


def check_live(settings: Settings) -> None:
    """TRADING_MODE=live: the keys the exchange needs (ccxt's ``requiredCredentials``: the password for OKX and
    its like) are set, each missing one a line naming the variable."""
    exchange = settings.exchange
    if not exchange.live:
        return
    from engine.exchange.loader import exchange_class

    try:
        required = dict(exchange_class(exchange.id)().requiredCredentials)
    except Exception:  # an unknown id: the start-up check of the exchange names it with close matches
        required = {}
    exchange.check_live(required)


OUR_PREFIXES = ("TELEGRAM_", "EXCHANGE_", "WEBHOOK_", "DATABASE_", "SQLITE_", "TRADING_", "LOG_", "MODELS_",
                "DAILY_", "API_")


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """Environment variables that look like ours but are none of them (a typo is otherwise silently ignored),
    each as one sentence naming it and the setting it probably meant."""
    known = [name.upper() for name in Settings.model_fields]
    known += [str(a).upper() for f in Settings.model_fields.values() if isinstance(f.validation_alias, AliasChoices)
              for a in f.validation_alias.choices]
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(OUR_PREFIXES) and upper not in known:
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
            found.append(f"{name} is not a setting and is ignored" + (f"; did you mean {close[0]}?" if close else ""))
    return found


def check_urls(settings: Settings) -> None:
    """The URL variables, checked up front so that a typo is one line naming it, not a traceback later."""
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
