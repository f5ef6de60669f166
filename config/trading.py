"""The TOML trading config (symbols, timeframe, strategy, risk, paper costs, feed, live limits): its models and
its loading, apart from the environment settings (``config.settings``) so that a command reading only the
trading config (``trading-agent backtest``) does not import pydantic-settings (~75 ms of a backtest's start).

An invalid value raises ``ConfigError`` with one line naming the field and the value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.types import TIMEFRAME_MS
from engine.errors import ConfigError as ConfigError  # re-exported: what load_trading_config raises

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
    when it is loaded); ``folder``: where ``trading-agent strategies`` looks for strategy files; ``study``: the
    optimiser study the parameters came from."""

    params: dict[str, StrategyParamValue] = Field(default_factory=dict)
    folder: Annotated[Path, Strict(False)] | None = None
    # the optimiser study the params came from (written by `trading-agent optimize --apply`; /strategy shows it)
    study: str | None = Field(None, max_length=500)


class LiveSection(_Section):
    """``[live]``: what applies only with TRADING_MODE=live (fat-finger guards, the order lifecycle's timings)."""

    max_order_notional: float = Field(1_000.0, gt=0, le=1e12)  # quote currency; an order above it is refused
    max_daily_notional: float = Field(10_000.0, gt=0, le=1e13)  # quote currency sent per UTC day, all orders
    limit_order_timeout: float = Field(60.0, gt=0, le=7 * 86_400)  # seconds before an unfilled limit is cancelled
    unknown_grace: float = Field(30.0, ge=5, le=3600)  # seconds before an order the exchange never saw is NOT_PLACED
    reconcile_interval: float = Field(300.0, ge=10, le=86_400)  # seconds between reconciliations
    # candles after a signal's candle closed within which its entry may still be sent: a later one (a catch-up after
    # a restart or a pause of the feed) is refused, not sent at today's price; exits are always sent
    entry_deadline: int = Field(3, ge=1, le=10_000)
    stoploss_on_exchange: bool = False  # (not available yet: true is refused rather than silently ignored)

    @field_validator("stoploss_on_exchange")
    @classmethod
    def _stops_on_exchange(cls, value: bool) -> bool:
        if value:
            raise ValueError("stops placed on the exchange are not available yet: the agent checks its stops on every "
                             "ticker price; set it to false")
        return value


class TradingConfig(_Section):
    trading: TradingSection = TradingSection()
    strategy: StrategySection = StrategySection()
    signal_filters: SignalFiltersSection = SignalFiltersSection()
    risk: RiskSection = RiskSection()
    paper: PaperSection = PaperSection()
    feed: FeedSection = FeedSection()
    live: LiveSection = LiveSection()


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
