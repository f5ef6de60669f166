"""TRADING_MODE=live at start: each missing key is one line naming the variable (exit 2), a key is never echoed,
and live trades only on the exchange's own candles (a replay or synthetic feed is refused in one line). The keys
are among the values the log redacts. (Live trading itself: tests/worker/test_live_trading.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings
from config.worker import secrets_of
from tests.worker.test_startup import one_line, run_worker

KEY, SECRET, PASSPHRASE = "AK-live-7f3a9c1e", "SK-live-0b1d2e3f4a5b", "PP-okx-91ab"


@pytest.mark.parametrize(("extra", "missing"), [
    ({}, "EXCHANGE_API_KEY"),
    ({"EXCHANGE_API_KEY": KEY}, "EXCHANGE_API_SECRET"),
    ({"EXCHANGE_API_KEY": KEY, "EXCHANGE_API_SECRET": "  "}, "EXCHANGE_API_SECRET"),
    ({"EXCHANGE": "okx", "EXCHANGE_API_KEY": KEY, "EXCHANGE_API_SECRET": SECRET}, "EXCHANGE_API_PASSWORD"),
], ids=["no-key", "no-secret", "blank-secret", "okx-no-password"])
def test_live_without_the_keys_is_one_line_naming_the_variable(tmp_path: Path, extra: dict[str, str],
                                                               missing: str) -> None:
    proc = run_worker(tmp_path, TRADING_MODE="live", **extra)
    assert proc.returncode == 2
    line = one_line(proc, "configuration error: ")
    assert f"{missing} is not set" in line
    assert KEY not in proc.stdout + proc.stderr and SECRET not in proc.stdout + proc.stderr


def test_live_trades_on_the_exchanges_own_candles_only_and_no_key_is_shown(tmp_path: Path) -> None:
    proc = run_worker(tmp_path, TRADING_MODE="Live", EXCHANGE_API_KEY=KEY, EXCHANGE_API_SECRET=SECRET)
    assert proc.returncode == 2
    line = one_line(proc, "configuration error: ")
    assert "TRADING_MODE=live" in line and '[feed] source = "exchange"' in line and "synthetic" in line
    assert KEY not in proc.stdout + proc.stderr and SECRET not in proc.stdout + proc.stderr
    assert not (tmp_path / "agent.db").exists()  # nothing was started


def test_a_bad_mode_is_one_line(tmp_path: Path) -> None:
    proc = run_worker(tmp_path, TRADING_MODE="real")
    assert proc.returncode == 2
    assert "TRADING_MODE" in one_line(proc, "configuration error: ")


def test_the_keys_are_among_the_secrets_the_log_redacts() -> None:
    settings = load_settings(trading_mode="live", exchange_api_key=KEY, exchange_api_secret=SECRET,
                             exchange_api_password=PASSPHRASE, telegram_bot_token="1:abc")
    found = secrets_of(settings)
    assert {KEY, SECRET, PASSPHRASE} <= set(found)
    assert KEY not in repr(settings) and SECRET not in repr(settings.exchange)
