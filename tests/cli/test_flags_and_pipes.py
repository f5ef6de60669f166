"""Every flag has help; a report piped into ``head`` ends quietly; a config asking for a model is not ignored."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import COMMANDS
from tests.cli.common import ROOT, SOME_ROWS, cli, csv_text, one_line_error


@pytest.mark.parametrize("command", ["backtest", "train", "check-lookahead", "download", "chat", "migrate"])
def test_every_flag_has_help(command: str) -> None:
    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[command][0]).configure(parser)
    flags = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert flags
    missing = [a.option_strings for a in flags if not (a.help or "").strip()]
    assert missing == [], f"{command}: flags without help: {missing}"


def test_backtest_help_lists_each_flag_with_its_text() -> None:
    done = cli("backtest", "--help")
    assert done.returncode == 0
    for flag, text in [("--fast", "fast moving average"), ("--slow", "slow moving average"),
                       ("--fee-bps", "fee per side"), ("--cash", "starting cash"), ("--force", "another symbol"),
                       ("--timeframe", "most common spacing"), ("--no-progress", "no progress bar")]:
        assert flag in done.stdout and text in done.stdout, flag


def test_report_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(csv_text(SOME_ROWS))
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "backtest", "--data", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the report is written, as `| head -0` would leave it
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a Unix tool killed by the broken pipe
    assert err == ""  # no BrokenPipeError, no "Exception ignored"
    shell = subprocess.run(f"{sys.executable} -m engine.cli backtest --data '{path}' | head -1", shell=True,
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert shell.stdout == "Backtest BTCUSDT · sma-cross(10,30) · 2,000 candles\n"
    assert shell.stderr == ""


def test_config_asking_for_a_model_is_refused_without_one(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(csv_text(SOME_ROWS))
    config = tmp_path / "trading.toml"
    config.write_text('[trading]\nstrategy = "model"\n')
    one_line_error(cli("backtest", "--data", path, "--config", config, "--json", tmp_path / "bt.json"),
                   f'error: {config} sets strategy = "model": pass --model DIR to backtest a trained model')
    assert not (tmp_path / "bt.json").exists()


def test_config_fast_and_slow_are_used_unless_flags_say_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(csv_text(SOME_ROWS))
    config = tmp_path / "trading.toml"
    config.write_text("[trading]\nfast = 5\nslow = 20\n")
    assert cli("backtest", "--data", path, "--config", config).stdout.startswith("Backtest BTCUSDT · sma-cross(5,20)")
    done = cli("backtest", "--data", path, "--config", config, "--slow", "40")
    assert done.stdout.startswith("Backtest BTCUSDT · sma-cross(5,40)")
