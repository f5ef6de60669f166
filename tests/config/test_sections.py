"""Each component's section of the settings comes from the same flat environment as before (the variable
names of the README's table), and every variable lands in a section, so a new one cannot be forgotten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from config.settings import (
    ApiSettings,
    ConfigError,
    DatabaseSettings,
    ExchangeSettings,
    LoggingSettings,
    Settings,
    TelegramSettings,
    load_settings,
)

ENVIRONMENT = {
    "TELEGRAM_BOT_TOKEN": "123456:SECTION-TOKEN",
    "TELEGRAM_ADMIN_IDS": "11,12",
    "TELEGRAM_VIEWER_IDS": "21",
    "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8082",
    "TELEGRAM_API_FILE_URL": "http://127.0.0.1:8082/file/bot",
    "TELEGRAM_HTTP": "httpx",
    "WEBHOOK_URL": "https://example.org/hook",
    "WEBHOOK_SECRET": "hook-secret",
    "PORT": "8443",
    "DATABASE_URL": "postgres://agent:pw@db/agent",
    "SQLITE_PATH": "var/other.db",
    "EXCHANGE": "okx",
    "EXCHANGE_BASE_URL": "http://127.0.0.1:8081",
    "EXCHANGE_SANDBOX": "1",
    "TRADING_MODE": "live",
    "EXCHANGE_API_KEY": "section-key",
    "EXCHANGE_API_SECRET": "section-secret",
    "EXCHANGE_API_PASSWORD": "section-pass",
    "TRADING_CONFIG": "trading.toml",
    "MODELS_DIR": "registry",
    "LOG_LEVEL": "debug",
    "LOG_FORMAT": "json",
    "TIMEZONE": "Europe/Paris",
    "DAILY_SUMMARY_TIME": "21:30",
    "TRADING_AGENT_JIT": "1",
    "API_ENABLED": "1",
    "API_HOST": "0.0.0.0",
    "API_PORT": "9000",
    "API_TOKENS": "viewer:section-api-token-0123",
    "API_CORS_ORIGINS": "https://dash.example",
}
# read where the whole settings are wired (engine.app.build, the worker, the kernel itself), not by a component
ENGINE_WIDE = {"TRADING_CONFIG", "MODELS_DIR", "TRADING_AGENT_JIT"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [*Settings.model_fields, "EXCHANGE"]:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return load_settings(_env_file=None)


def test_the_sections_carry_the_environment_under_the_documented_names(environment: Settings) -> None:
    telegram = environment.telegram
    assert telegram == TelegramSettings(
        bot_token=SecretStr("123456:SECTION-TOKEN"), admin_ids=(11, 12), viewer_ids=(21,),
        api_base_url="http://127.0.0.1:8082", api_file_url="http://127.0.0.1:8082/file/bot", http="httpx",
        webhook_url="https://example.org/hook", webhook_secret=SecretStr("hook-secret"), port=8443,
        timezone="Europe/Paris", daily_summary_time="21:30")
    assert telegram.bot_token.get_secret_value() == "123456:SECTION-TOKEN"
    assert environment.database == DatabaseSettings(url=SecretStr("postgres://agent:pw@db/agent"),
                                                    sqlite_path=Path("var/other.db"))
    assert environment.database.variable == "DATABASE_URL"
    assert environment.exchange == ExchangeSettings(id="okx", base_url="http://127.0.0.1:8081", sandbox=True,
                                                    mode="live", api_key=SecretStr("section-key"),
                                                    api_secret=SecretStr("section-secret"),
                                                    api_password=SecretStr("section-pass"))
    assert environment.logging == LoggingSettings(level="DEBUG", format="json")
    assert environment.api == ApiSettings(enabled=True, host="0.0.0.0", port=9000,
                                          tokens=SecretStr("viewer:section-api-token-0123"),
                                          cors_origins=("https://dash.example",), admin_ids=(11, 12), viewer_ids=(21,))


def _values(section: Any) -> list[object]:
    out = []
    for value in section.model_dump().values():
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        out.extend(value if isinstance(value, tuple) else [value])
    return out


def test_every_environment_variable_is_in_a_section_or_named_as_engine_wide(environment: Settings) -> None:
    carried = [v for s in (environment.telegram, environment.database, environment.exchange, environment.logging,
                           environment.api) for v in _values(s)]
    names = {"EXCHANGE" if name == "exchange_id" else name.upper() for name in Settings.model_fields}
    assert set(ENVIRONMENT) == names, "a variable this test does not set"
    for name in Settings.model_fields:
        value = getattr(environment, name)
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        parts = value if isinstance(value, list) else [value]
        in_a_section = all(p in carried for p in parts)
        assert in_a_section != (name.upper() in ENGINE_WIDE), f"{name.upper()}: in a section: {in_a_section}"


def test_without_a_database_url_the_sqlite_path_names_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    database = load_settings(_env_file=None, sqlite_path=Path("x/agent.db")).database
    assert database.url is None and database.variable == "SQLITE_PATH" and database.sqlite_path == Path("x/agent.db")


def test_the_bot_section_without_a_token_is_one_configuration_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    settings = load_settings(_env_file=None)
    with pytest.raises(ConfigError, match=r"^TELEGRAM_BOT_TOKEN is not set$"):
        _ = settings.telegram


def test_a_section_cannot_be_changed_after_it_is_made(environment: Settings) -> None:
    with pytest.raises(ValidationError):
        environment.exchange.base_url = "http://elsewhere"  # type: ignore[misc]  # frozen on purpose
