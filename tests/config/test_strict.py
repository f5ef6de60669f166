"""The configuration refuses what it would otherwise coerce or ignore: a bool where a number belongs, an
empty or impossible Telegram id, an unknown JIT switch. And a fuzz over the TOML trading config: every
value is either accepted as documented or refused with one line naming the field; never another error."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import (
    DEFAULT_TRADING_CONFIG,
    ConfigError,
    TradingConfig,
    load_settings,
    load_trading_config,
)

TOKEN = "123456:TEST-TOKEN"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("toml", "field"), [
    ("[trading]\nupdate_interval = true\n", "trading.update_interval"),
    ("[trading]\nfast = \"10\"\n", "trading.fast"),
    ("[trading]\nfast = 10.0\n", "trading.fast"),
    ("[risk]\nstop_loss_pct = false\n", "risk.stop_loss_pct"),
    ("[paper]\nstarting_cash = \"10000\"\n", "paper.starting_cash"),
    ("[feed]\nhistory = true\n", "feed.history"),
    ("[trading]\nsymbols = \"BTCUSDT\"\n", "trading.symbols"),
])
def test_a_value_of_the_wrong_type_is_refused_not_coerced(tmp_path: Path, toml: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_trading_config(write(tmp_path, toml))
    message = str(info.value)
    assert "\n" not in message and field in message, message


def test_an_int_where_a_float_belongs_is_fine(tmp_path: Path) -> None:
    config = load_trading_config(write(tmp_path, "[trading]\nupdate_interval = 60\n[paper]\nstarting_cash = 500\n"))
    assert config.trading.update_interval == 60.0 and config.paper.starting_cash == 500.0


@pytest.mark.parametrize(("value", "says"), [
    ("1,,2", "empty id"), ("-5", "not a Telegram user id"), ("0", "not a Telegram user id"),
    ("12345678901234567890", "not a Telegram user id"), ("7,7", "twice"), ("@bob", "usernames"),
])
def test_impossible_telegram_ids_are_refused(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(telegram_bot_token=TOKEN, telegram_admin_ids=value)
    assert "TELEGRAM_ADMIN_IDS" in str(info.value) and says in str(info.value)


def test_valid_telegram_ids_are_read() -> None:
    s = load_settings(telegram_bot_token=TOKEN, telegram_admin_ids=" 111, 222;4503599627370495 ",
                      telegram_viewer_ids="")
    assert s.telegram_admin_ids == [111, 222, 2**52 - 1] and s.telegram_viewer_ids == []


@pytest.mark.parametrize("value", ["banana", "yes", "2", ""])
def test_an_unknown_jit_switch_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_AGENT_JIT", value)
    with pytest.raises(ConfigError) as info:
        load_settings(telegram_bot_token=TOKEN)
    assert "TRADING_AGENT_JIT" in str(info.value)


# ---------------------------------------------------------------------------------------- fuzz

DEFAULTS: dict[str, dict[str, Any]] = tomllib.loads(DEFAULT_TRADING_CONFIG.read_text(encoding="utf-8"))

toml_scalars = st.one_of(
    st.booleans(), st.integers(-10**13, 10**13), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.lists(st.text(max_size=6), max_size=3),
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else "0"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from([f"{s}.{k}" for s, keys in DEFAULTS.items() for k in keys] + ["trading.nope"]),
                       toml_scalars, min_size=1, max_size=4))
def test_any_config_value_is_accepted_as_documented_or_refused_in_one_line(tmp_path: Path,
                                                                           values: dict[str, Any]) -> None:
    sections: dict[str, list[str]] = {}
    for dotted, value in values.items():
        section, key = dotted.split(".")
        sections.setdefault(section, []).append(f"{key} = {toml_value(value)}")
    text = "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())
    try:
        config = load_trading_config(write(tmp_path, text))
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("trading config ")
        named = [d for d in values if d in message or d.split(".")[0] in message]
        assert named or "TOML" in message or "trading.fast" in message, message
        return
    assert isinstance(config, TradingConfig)
    for dotted, value in values.items():
        section, key = dotted.split(".")
        got = getattr(getattr(config, section), key)
        if isinstance(value, bool):
            assert got is value  # only a bool field takes a bool
        elif isinstance(value, (int, float)) and not isinstance(got, bool):
            assert got == value  # numbers are taken as written, never coerced from another type
        elif isinstance(value, str) and key != "symbols":
            assert isinstance(got, str)


ENV_FIELDS = ["telegram_admin_ids", "telegram_viewer_ids", "telegram_http", "port", "log_level", "log_format",
              "daily_summary_time", "trading_agent_jit", "models_dir", "sqlite_path", "timezone"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(ENV_FIELDS), st.text(max_size=24), min_size=1, max_size=3))
def test_any_environment_value_is_accepted_or_refused_in_one_line(values: dict[str, str]) -> None:
    try:
        load_settings(telegram_bot_token=TOKEN, **values)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("invalid environment variable ")
        assert any(name.upper() in message for name in values), message
        assert TOKEN not in message


def test_a_command_refuses_an_unknown_jit_switch_in_one_line() -> None:
    import os
    import subprocess
    import sys

    from tests.sample import sample_path

    env = {**os.environ, "TRADING_AGENT_JIT": "banana"}
    data = str(sample_path("BTC_USDT-1h.csv"))
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "backtest", "--data", data], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "configuration error: invalid environment variable TRADING_AGENT_JIT: must be 0 or 1 (got 'banana')"]


def test_stops_on_the_exchange_are_refused_until_they_exist(tmp_path: Path) -> None:
    """``[live] stoploss_on_exchange = true`` would otherwise be a setting that silently does nothing."""
    with pytest.raises(ConfigError) as info:
        load_trading_config(write(tmp_path, "[live]\nstoploss_on_exchange = true\n"))
    message = str(info.value)
    assert "\n" not in message and "live.stoploss_on_exchange" in message and "not available yet" in message
    assert load_trading_config(write(tmp_path, "[live]\nstoploss_on_exchange = false\n")).live.entry_deadline == 3
