"""Typed configuration: environment variables (and an optional ``.env``) plus a TOML trading config.

The environment is flat (the variable names are the README's table); ``Settings`` derives one section per
component from it (``telegram``, ``database``, ``exchange``, ``api``, ``logging``), and each component receives only
its section. An invalid value raises ``ConfigError`` with one line naming the field and the value; the
entry points print it and exit with code 2, no traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.trading import DEFAULT_TRADING_CONFIG as DEFAULT_TRADING_CONFIG  # the trading config's, re-exported
from config.trading import FeedSection as FeedSection
from config.trading import LiveSection as LiveSection
from config.trading import PaperSection as PaperSection
from config.trading import RiskSection as RiskSection
from config.trading import SignalFiltersSection as SignalFiltersSection
from config.trading import StrategySection as StrategySection
from config.trading import TradingConfig as TradingConfig
from config.trading import TradingSection as TradingSection
from config.trading import _one_line
from config.trading import load_trading_config as load_trading_config
from engine.errors import ConfigError as ConfigError  # defined with the whole tree; imported from here too

if TYPE_CHECKING:
    from engine.exchange.client import ExchangeSpec

MAX_TELEGRAM_ID = 2**52  # Telegram: a user id "has at most 52 significant bits"


def _int_list(value: Any) -> Any:
    if isinstance(value, str):
        text = value.replace(";", ",").strip()
        parts = [p.strip() for p in text.split(",")] if text else []
        for p in parts:
            if not p:
                raise ValueError("an empty id between commas (write ids like 111,222)")
            if not p.lstrip("-").isdigit():
                raise ValueError(f"{p!r} is not a numeric Telegram user id (usernames are not accepted)")
            if not 0 < int(p) < MAX_TELEGRAM_ID:
                raise ValueError(f"{p} is not a Telegram user id (user ids are positive and below 2^52)")
        if len(set(parts)) != len(parts):
            raise ValueError("an id is listed twice")
        return [int(p) for p in parts]
    return value


class _EnvSection(BaseModel):
    """A slice of ``Settings`` for one component, derived from the flat environment (already validated there)."""

    model_config = ConfigDict(frozen=True)


class TelegramSettings(_EnvSection):
    """The bot's slice: its token, who may use it, which Bot API server and transport, how updates arrive (long
    polling, or a webhook when ``webhook_url`` and ``port`` are set), and the zone of the times it shows people
    and of the daily summary."""

    bot_token: SecretStr
    admin_ids: tuple[int, ...] = ()
    viewer_ids: tuple[int, ...] = ()
    api_base_url: str | None = None
    api_file_url: str | None = None
    http: Literal["aiohttp", "httpx"] = "aiohttp"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    port: int | None = None
    timezone: str = "UTC"
    daily_summary_time: str = "00:00"


class DatabaseSettings(_EnvSection):
    """Where the engine keeps its state: ``DATABASE_URL``, else the SQLite file at ``SQLITE_PATH``."""

    url: SecretStr | None = None
    sqlite_path: Path = Path("var/agent.db")

    @property
    def variable(self) -> str:
        """The environment variable that names the database in use (for error messages)."""
        return "DATABASE_URL" if self.url is not None else "SQLITE_PATH"


class ExchangeSettings(_EnvSection):
    """The exchange the feeds, the markets and the worker's clock read, through ccxt: its ccxt id, a base URL its
    REST hosts are moved onto (a proxy, a compatible exchange, the local fake), and its sandbox (testnet)."""

    id: str = "binance"
    base_url: str | None = None
    sandbox: bool = False
    mode: Literal["paper", "live"] = "paper"  # TRADING_MODE: live sends orders to this exchange with the keys
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_password: SecretStr | None = None  # the passphrase some exchanges add (OKX, KuCoin, ...)

    @property
    def live(self) -> bool:
        return self.mode == "live"

    def check_live(self, required: Mapping[str, bool] | None = None) -> None:
        """In live mode, the keys the exchange needs are set (``required``: ccxt's ``requiredCredentials`` of the
        exchange, for the password); ConfigError with one line naming the missing variable, never a value."""
        if not self.live:
            return
        wanted = [("EXCHANGE_API_KEY", self.api_key), ("EXCHANGE_API_SECRET", self.api_secret)]
        if required and required.get("password"):
            wanted.append(("EXCHANGE_API_PASSWORD", self.api_password))
        for variable, value in wanted:
            if value is None or not value.get_secret_value().strip():
                needs = "API key, secret and password" if len(wanted) > 2 else "API key and secret"
                raise ConfigError(f"{variable} is not set: TRADING_MODE=live sends orders to {self.id} and needs "
                                  f"the account's {needs} (a trade-only key; or set TRADING_MODE=paper)")

    def credentials(self) -> dict[str, str]:
        """The keys as ccxt takes them (``apiKey``, ``secret``, ``password``): only for the live exchange client,
        never logged, never given to strategy or model code."""
        found = {"apiKey": self.api_key, "secret": self.api_secret, "password": self.api_password}
        return {name: value.get_secret_value().strip() for name, value in found.items()
                if value is not None and value.get_secret_value().strip()}

    def spec(self) -> ExchangeSpec:
        from engine.exchange.client import ExchangeSpec

        return ExchangeSpec(id=self.id, base_url=self.base_url, sandbox=self.sandbox)


API_ROLES = ("admin", "viewer")
MIN_API_TOKEN_CHARS = 16


class ApiSettings(_EnvSection):
    """The HTTP API's slice (``bot.api``): whether it runs, where it listens, the headless tokens (``API_TOKENS``:
    ``role:token,...``, read by ``token_roles``), the origins a browser may call it from (none: CORS off), and who
    the chat's admins and viewers are (a token issued in the chat acts with its owner's role of today, never more
    than at issue)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: SecretStr | None = None
    cors_origins: tuple[str, ...] = ()
    admin_ids: tuple[int, ...] = ()
    viewer_ids: tuple[int, ...] = ()

    def token_roles(self) -> tuple[tuple[str, SecretStr], ...]:
        """``API_TOKENS`` as (role, token) pairs; ConfigError naming the entry, never showing a token."""
        return _api_tokens(self.tokens)


def _api_tokens(value: SecretStr | None) -> tuple[tuple[str, SecretStr], ...]:
    """``role:token,role:token`` -> ((role, token), ...); ConfigError naming the entry, never showing a token."""
    text = "" if value is None else value.get_secret_value().strip()
    out = []
    for i, entry in enumerate((e.strip() for e in text.split(",")) if text else (), start=1):
        role, sep, token = entry.partition(":")
        where = f"invalid environment variable API_TOKENS: entry {i}"
        if not sep or role.strip().lower() not in API_ROLES:
            raise ConfigError(f"{where} must be role:token with role admin or viewer (value not shown: a secret)")
        token = token.strip()
        if len(token) < MIN_API_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ConfigError(f"{where}: the token must be at least {MIN_API_TOKEN_CHARS} characters without spaces "
                              "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        out.append((role.strip().lower(), SecretStr(token)))
    if len({t.get_secret_value() for _, t in out}) != len(out):
        raise ConfigError("invalid environment variable API_TOKENS: a token is listed twice")
    return tuple(out)


def _origins(value: str) -> tuple[str, ...]:
    """``API_CORS_ORIGINS``: comma-separated origins (scheme://host[:port]) or ``*``."""
    out = []
    for origin in (o.strip().rstrip("/") for o in value.split(",")):
        if not origin:
            continue
        scheme, sep, rest = origin.partition("://")
        if origin != "*" and (scheme not in ("http", "https") or not sep or not rest or "/" in rest):
            raise ConfigError(f"invalid environment variable API_CORS_ORIGINS: {origin!r} is not an origin like "
                              "https://example.org or http://localhost:3000 (or *)")
        out.append(origin)
    return tuple(out)


class LoggingSettings(_EnvSection):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    """Environment variables (see the README's table)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False)

    telegram_bot_token: SecretStr | None = None
    telegram_admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    telegram_viewer_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    telegram_api_base_url: str | None = None
    telegram_api_file_url: str | None = None
    telegram_http: Literal["aiohttp", "httpx"] = "aiohttp"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    port: int | None = Field(None, ge=1, le=65535)
    database_url: SecretStr | None = None
    # EXCHANGE (the field cannot be called ``exchange``: that is the section's name)
    exchange_id: str = Field("binance", min_length=2, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$",
                             validation_alias=AliasChoices("exchange", "exchange_id"))
    exchange_base_url: str | None = None
    exchange_sandbox: bool = False
    trading_mode: Literal["paper", "live"] = "paper"
    exchange_api_key: SecretStr | None = None
    exchange_api_secret: SecretStr | None = None
    exchange_api_password: SecretStr | None = None
    trading_config: Path | None = None
    models_dir: Path = Path("models")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    timezone: str = "UTC"
    daily_summary_time: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    sqlite_path: Path = Path("var/agent.db")
    # the HTTP API (bot.api): unset API_ENABLED means on when PORT is set and WEBHOOK_URL is not (a web dyno);
    # API_ENABLED=1 with WEBHOOK_URL and PORT (no API_PORT) is one port: the API's server takes the webhook too
    api_enabled: bool | None = None
    api_host: str | None = Field(None, min_length=1, max_length=255)
    api_port: int = Field(8080, ge=1, le=65535)
    api_tokens: SecretStr | None = None
    api_cors_origins: str = ""
    # read by engine/core/kernel.py itself; named here so that a typo is refused, not silently "compile"
    trading_agent_jit: Literal["0", "1"] | None = None

    @field_validator("telegram_admin_ids", "telegram_viewer_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _int_list(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("trading_mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def telegram(self) -> TelegramSettings:
        """The bot's section; ConfigError when TELEGRAM_BOT_TOKEN is not set."""
        if self.telegram_bot_token is None:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        return TelegramSettings(
            bot_token=self.telegram_bot_token, admin_ids=tuple(self.telegram_admin_ids),
            viewer_ids=tuple(self.telegram_viewer_ids), api_base_url=self.telegram_api_base_url,
            api_file_url=self.telegram_api_file_url, http=self.telegram_http, webhook_url=self.webhook_url,
            webhook_secret=self.webhook_secret, port=self.port, timezone=self.timezone,
            daily_summary_time=self.daily_summary_time)

    @property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings(url=self.database_url, sqlite_path=self.sqlite_path)

    @property
    def exchange(self) -> ExchangeSettings:
        return ExchangeSettings(id=self.exchange_id.strip().lower(), base_url=self.exchange_base_url,
                                sandbox=self.exchange_sandbox, mode=self.trading_mode,
                                api_key=self.exchange_api_key, api_secret=self.exchange_api_secret,
                                api_password=self.exchange_api_password)

    @property
    def api(self) -> ApiSettings:
        """The HTTP API's section: on with API_ENABLED=1, or with PORT set (a web dyno) unless WEBHOOK_URL is set too
        (then only with API_ENABLED=1: one port, the API's server takes the webhook) or API_ENABLED=0; on API_PORT
        when it is set, else on PORT when that is (on all interfaces unless API_HOST says otherwise), else on
        127.0.0.1:8080. ConfigError for a malformed API_CORS_ORIGINS (API_TOKENS:
        ``ApiSettings.token_roles``)."""
        enabled = self.api_enabled if self.api_enabled is not None else (self.port is not None and not self.webhook_url)
        platform = self.port is not None and "api_port" not in self.model_fields_set
        host = self.api_host or ("0.0.0.0" if platform else "127.0.0.1")
        return ApiSettings(enabled=enabled, host=host, port=self.port if platform and self.port else self.api_port,
                           tokens=self.api_tokens, cors_origins=_origins(self.api_cors_origins),
                           admin_ids=tuple(self.telegram_admin_ids), viewer_ids=tuple(self.telegram_viewer_ids))

    @property
    def logging(self) -> LoggingSettings:
        return LoggingSettings(level=self.log_level, format=self.log_format)


def time_zone(name: str) -> ZoneInfo:
    """The zone TIMEZONE names, else ConfigError (the one check, for the worker's start-up and the bot)."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"invalid environment variable TIMEZONE: unknown time zone {name!r}") from exc


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, "invalid environment variable ", env=True)) from None
