"""``trading-agent download`` as a person runs it: fewer candles on the exchange than asked, said in the
summary; nothing on stderr (no progress line left in a log or a pipe)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.feeds.candle_file import iso_utc
from engine.feeds.csvio import read_csv, write_csv
from engine.feeds.synthetic import synthetic_arrays

from .conftest import STEP, TF

ROOT = Path(__file__).resolve().parents[2]
HISTORY = 100  # the fake exchange's clock starts this many candles into its file


def test_fewer_candles_than_asked_are_counted_and_stderr_stays_clean(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    first = (now // STEP) * STEP - 2 * 288 * STEP
    data = synthetic_arrays(3 * 288, seed=7, start_ms=first, timeframe=TF, start_price=100.0)
    csv = tmp_path / "BTC_USDT-5m.csv"
    write_csv(csv, data)
    exchange = subprocess.Popen(
        [sys.executable, "-m", "sim.exchange", "--csv", str(csv), "--timeframe", TF, "--port", "0", "--speed", "1",
         "--history", str(HISTORY)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert exchange.stdout is not None
        url = exchange.stdout.readline().rsplit(" at ", 1)[1].strip()
        out = tmp_path / "out"
        done = subprocess.run([sys.executable, "-m", "engine.cli", "download", "--symbol", "BTCUSDT", "--timeframe",
                               TF, "--days", "1", "--out", str(out), "--base-url", url],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        exchange.terminate()
        exchange.wait(timeout=10)
        if exchange.stdout is not None:
            exchange.stdout.close()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # progress bars only on a terminal: no "\r..." left behind in a pipe or log
    got = read_csv(out / "BTCUSDT-5m.csv", TF)
    assert 0 < len(got) <= HISTORY and int(got.ts[0]) == int(data.ts[0])
    match = re.fullmatch(r"wrote (\d+) rows, .*; got (\d+) of the 288 candles asked for "
                         r"\(the exchange's history starts at (\S+)\)\n", done.stdout)
    assert match, done.stdout
    assert int(match[1]) == int(match[2]) == len(got) and match[3] == iso_utc(int(data.ts[0]))


@pytest.mark.parametrize(("args", "said"), [
    (["--exchange", "binanse"], "error: --exchange 'binanse' is not an exchange ccxt knows; did you mean binance"),
    (["--exchange", "upbit", "--sandbox"], "error: --sandbox: upbit has no sandbox (testnet) in ccxt"),
    (["--exchange", "kraken", "--timeframe", "3m"], "error: timeframe '3m' is not offered by kraken; it offers 1m"),
])
def test_a_wrong_exchange_flag_is_one_line_naming_the_flag_exit_2(tmp_path: Path, args: list[str], said: str) -> None:
    cli = [sys.executable, "-m", "engine.cli", "download", "--symbol", "BTC/USDT", "--timeframe", "5m", "--days", "1",
           "--out", str(tmp_path), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE")}
    done = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(said) and done.stderr.count("\n") == 1, done.stderr
