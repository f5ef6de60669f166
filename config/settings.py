"""Typed configuration: environment variables (and an optional ``.env``) plus a TOML trading config.

The environment is flat (the variable names are the README's table); ``Settings`` derives one section per
component from it (``telegram``, ``database``, ``exchange``, ``api``, ``logging``), and each component receives only
its section. An invalid value raises ``ConfigError`` with one line naming the field and the value; the
entry points print it and exit with code 2, no traceback.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, Strict, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.types import TIMEFRAME_MS
from engine.errors import ConfigError as ConfigError  # defined with the whole tree; imported from here too

if TYPE_CHECKING:
    from engine.exchange.client import ExchangeSpec

DEFAULT_TRADING_CONFIG = Path(__file__).with_name("default.toml")


class _Section(BaseModel):
    # strict: TOML has real types, so ``update_interval = true`` or ``fast = "10"`` is refused, not coerced
    # (an int is still accepted where a float is expected)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TradingSection(_Section):
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT"], min_length=1)
    timeframe: str = "5m"
    update_interval: float = Field(300.0, gt=0, le=86_400)
    # a built-in name (sma-cross, rsi-mean-reversion, bollinger-breakout), "model" (the CatBoost models of the
    # registry), path/to/file.py:Class or module.path:Class; loaded (and checked) when the engine is built
    strategy: str = Field("sma-cross", min_length=1, max_length=500)
    fast: int = Field(10, ge=1)  # sma-cross's, when [strategy.params] does not set fast/slow
    slow: int = Field(30, ge=2)

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a strategy (a built-in, \"model\", path/to/file.py:Class or module:Class)")
        return value.strip()

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        out = []
        for raw in value:  # ccxt's BTC/USDT (or BTC-USDT, BTC_USDT) is kept as BTCUSDT: what chat commands take
            s = raw.strip().upper()
            base, sep, quote = next(((*s.partition(c),) for c in "/-_" if c in s), (s, "", ""))
            if sep and (not base or not quote or not base.isalnum() or not quote.isalnum()):
                raise ValueError(f"symbol {raw!r} must look like BTC/USDT or BTCUSDT")
            s = base + quote
            if not s.isalnum() or not 2 <= len(s) <= 20:
                raise ValueError(f"symbol {s!r} must be 2-20 letters or digits, like BTCUSDT or BTC/USDT")
            out.append(s)
        if len(set(out)) != len(out):
            raise ValueError("symbols must not repeat")
        return out

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_MS:
            raise ValueError(f"must be one of {', '.join(TIMEFRAME_MS)}")
        return value


class SignalFiltersSection(_Section):
    min_confidence: float = Field(0.60, ge=0.0, le=1.0)
    cooldown: float = Field(0.0, ge=0.0, le=30 * 86_400)

    def to_core(self) -> SignalFilters:
        return SignalFilters(min_confidence=self.min_confidence, cooldown_ms=int(self.cooldown * 1000))


class RiskSection(_Section):
    position_fraction: float = Field(0.2, ge=0.0, le=1.0)
    max_position_fraction: float = Field(0.25, ge=0.0, le=1.0)
    max_total_exposure: float = Field(1.0, ge=0.0, le=1.0)
    stop_loss_pct: float = Field(0.05, ge=0.0, le=0.99)
    take_profit_pct: float = Field(0.0, ge=0.0, le=10.0)
    trailing_stop_pct: float = Field(0.0, ge=0.0, le=0.99)
    max_daily_loss_pct: float = Field(0.05, ge=0.0, le=1.0)
    max_drawdown_pct: float = Field(0.20, ge=0.0, le=1.0)

    def to_core(self) -> RiskLimits:
        return RiskLimits(**self.model_dump())


class PaperSection(_Section):
    starting_cash: float = Field(10_000.0, gt=0, le=1e12)
    fee_bps: float = Field(10.0, ge=0, le=1000)
    slippage_bps: float = Field(5.0, ge=0, le=1000)

    def to_core(self) -> Costs:
        return Costs(fee_bps=self.fee_bps, slippage_bps=self.slippage_bps)


class FeedSection(_Section):
    source: Literal["exchange", "replay", "synthetic"] = "exchange"
    stale_after: int = Field(3, ge=1, le=1000)
    history: int = Field(1000, ge=10, le=5000)
    ticker_interval: float = Field(10.0, ge=0, le=3600)
    replay_files: list[Annotated[Path, Strict(False)]] = Field(default_factory=list)  # TOML strings -> paths


StrategyParamValue = Annotated[str, Strict()] | Annotated[bool, Strict()] | Annotated[int, Strict()] | float


class StrategySection(_Section):
    """``[strategy.params]``: the strategy's parameters by name (each checked by the strategy's own declaration
    when it is loaded); ``folder``: where ``trading-agent strategies`` looks for strategy files."""

    params: dict[str, StrategyParamValue] = Field(default_factory=dict)
    folder: Annotated[Path, Strict(False)] | None = None


class LiveSection(_Section):
    """``[live]``: what applies only with TRADING_MODE=live (fat-finger guards, the order lifecycle's timings)."""

    max_order_notional: float = Field(1_000.0, gt=0, le=1e12)  # quote currency; an order above it is refused
    max_daily_notional: float = Field(10_000.0, gt=0, le=1e13)  # quote currency sent per UTC day, all orders
    limit_order_timeout: float = Field(60.0, gt=0, le=7 * 86_400)  # seconds before an unfilled limit is cancelled
    unknown_grace: float = Field(30.0, ge=5, le=3600)  # seconds before an order the exchange never saw is NOT_PLACED
    reconcile_interval: float = Field(300.0, ge=10, le=86_400)  # seconds between reconciliations
    stoploss_on_exchange: bool = False  # also place the stop on the exchange where ccxt supports it


class TradingConfig(_Section):
    trading: TradingSection = TradingSection()
    strategy: StrategySection = StrategySection()
    signal_filters: SignalFiltersSection = SignalFiltersSection()
    risk: RiskSection = RiskSection()
    paper: PaperSection = PaperSection()
    feed: FeedSection = FeedSection()
    live: LiveSection = LiveSection()


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

    def spec(self) -> ExchangeSpec:
        from engine.exchange.client import ExchangeSpec

        return ExchangeSpec(id=self.id, base_url=self.base_url, sandbox=self.sandbox)


API_ROLES = ("admin", "viewer")
MIN_API_TOKEN_CHARS = 16


class ApiSettings(_EnvSection):
    """The HTTP API's slice (``bot.api``): whether it runs, where it listens, the headless tokens (``API_TOKENS``,
    role and token), the origins a browser may call it from (none: CORS off), and who the chat's admins and
    viewers are (a token issued in the chat acts with its owner's role of today, never more than at issue)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: tuple[tuple[str, SecretStr], ...] = ()
    cors_origins: tuple[str, ...] = ()
    admin_ids: tuple[int, ...] = ()
    viewer_ids: tuple[int, ...] = ()


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
    # the HTTP API (bot.api): unset API_ENABLED means on when PORT is set and WEBHOOK_URL is not (a web dyno)
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
        """The HTTP API's section: on with API_ENABLED=1, or with PORT set (a web dyno) unless WEBHOOK_URL takes that
        port or API_ENABLED=0; on PORT when set (all interfaces unless API_HOST says otherwise), else API_PORT on
        127.0.0.1. ConfigError for a malformed API_TOKENS or API_CORS_ORIGINS."""
        enabled = self.api_enabled if self.api_enabled is not None else (self.port is not None and not self.webhook_url)
        host = self.api_host or ("0.0.0.0" if self.port is not None else "127.0.0.1")
        return ApiSettings(enabled=enabled, host=host, port=self.port or self.api_port,
                           tokens=_api_tokens(self.api_tokens), cors_origins=_origins(self.api_cors_origins),
                           admin_ids=tuple(self.telegram_admin_ids), viewer_ids=tuple(self.telegram_viewer_ids))

    @property
    def logging(self) -> LoggingSettings:
        return LoggingSettings(level=self.log_level, format=self.log_format)


def _one_line(exc: ValidationError, where: str, *, env: bool = False) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "?"
    if env:
        loc = loc.upper()
    value = err.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    if any(word in loc.lower() for word in ("token", "password", "database_url", "secret", "key")):
        shown = ""  # never echo a secret, even a malformed one
    return f"{where}{loc}: {err['msg']}{shown}"


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


def load_trading_config(path: Path | None = None) -> TradingConfig:
    """The TOML trading config (``config/default.toml`` when no path is given)."""
    source = path or DEFAULT_TRADING_CONFIG
    try:
        # utf-8-sig: a byte-order mark, as some Windows editors write one, is read past, not "not valid TOML"
        data = tomllib.loads(Path(source).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"trading config {source}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"trading config {source}: is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"trading config {source}: not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"trading config {source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"trading config {source}: not valid TOML ({exc})") from None
    try:
        config = TradingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, f"trading config {source}: ")) from None
    if config.trading.strategy == "sma-cross" and config.trading.fast >= config.trading.slow:
        raise ConfigError(f"trading config {source}: trading.fast ({config.trading.fast}) must be below "
                          f"trading.slow ({config.trading.slow})")
    return config
