"""The download sub-command end to end against the fake exchange, then resumed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.feeds.base import FeedError
from engine.feeds.csvio import CsvFormatError, read_csv, write_csv
from engine.feeds.download import download, summary
from engine.feeds.synthetic import synthetic_arrays
from sim.exchange import FakeExchange, Fault

from .conftest import STEP, SYMBOL, TF, SleepRecorder

ROOT = Path(__file__).resolve().parents[2]
DAY_CANDLES = 288  # 5m candles in a day


def same(a: CandleArrays, b: CandleArrays) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("ts", "open", "high", "low", "close", "volume"))


async def test_download_then_resume(base_url: str, clock: SimClock, arrays: CandleArrays, tmp_path: Path,
                                    fake: FakeExchange) -> None:
    # clock: candles 0..1999 closed, 2000 open; 5 days = 1440 candles -> 560..1999, over two pages
    result = await download(SYMBOL, TF, 5, tmp_path, base_url, clock, progress=False)
    assert result.path == tmp_path / f"{SYMBOL}-{TF}.csv"
    assert result.rows_written == 1440 and result.resumed_after is None and result.rejected == 0
    assert (result.first_ts, result.last_ts) == (int(arrays.ts[560]), int(arrays.ts[1999]))
    assert same(read_csv(result.path, TF), arrays.slice(560, 2000))
    assert sum(1 for path, _ in fake.request_log if path == "/api/v3/klines") == 2
    assert summary(result).startswith("wrote 1440 rows, 2023-")
    assert str(result.path) in summary(result)

    clock.advance(150 * STEP)
    again = await download(SYMBOL, TF, 5, tmp_path, base_url, clock, progress=False)
    assert again.resumed_after == int(arrays.ts[1999]) and again.rows_written == 150
    on_disk = read_csv(again.path, TF)  # read_csv rejects duplicate or out-of-order rows
    assert same(on_disk, arrays.slice(560, 2150))

    nothing = await download(SYMBOL, TF, 5, tmp_path, base_url, clock, progress=False)
    assert nothing.rows_written == 0 and summary(nothing).startswith("up to date")
    assert same(read_csv(again.path, TF), on_disk)


async def test_download_survives_faults(base_url: str, clock: SimClock, arrays: CandleArrays, tmp_path: Path,
                                        fake: FakeExchange, sleeper: SleepRecorder) -> None:
    fake.inject(Fault.SERVER_ERROR)
    fake.inject(Fault.RATE_LIMIT)
    fake.inject(Fault.BAD_CANDLE, row=5)
    result = await download(SYMBOL, TF, 1, tmp_path, base_url, clock, progress=False, sleep=sleeper)
    assert len(sleeper.delays) == 2 and sleeper.delays[1] == 3.0
    assert result.rejected == 1 and result.rows_written == DAY_CANDLES - 1
    on_disk = read_csv(result.path, TF)
    expected = [i for i in range(2000 - DAY_CANDLES, 2000) if i != 2000 - DAY_CANDLES + 5]
    assert on_disk.ts.tolist() == [int(arrays.ts[i]) for i in expected]
    assert "dropped 1 invalid candles" in summary(result)


async def test_download_of_unknown_symbol_fails(base_url: str, clock: SimClock, tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="NOPEUSDT is not a spot market on binance"):
        await download("NOPEUSDT", TF, 1, tmp_path, base_url, clock, progress=False)


def _start_fake_exchange_cli(csv: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.exchange", "--csv", str(csv), "--timeframe", TF, "--port", "0",
         "--speed", "1", "--history", str(2 * DAY_CANDLES)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # logs go to stderr; stdout is just this line
    assert " at http://127.0.0.1:" in line, line
    return proc, line.rsplit(" at ", 1)[1].strip()


def test_cli_download_against_fake_exchange_process(tmp_path: Path) -> None:
    """``trading-agent download`` (real clock) against ``python -m sim.exchange`` (speed 1)."""
    now = time.time_ns() // 1_000_000
    first = (now // STEP) * STEP - 2 * DAY_CANDLES * STEP
    data = synthetic_arrays(3 * DAY_CANDLES, seed=5, start_ms=first, timeframe=TF, start_price=100.0)
    csv = tmp_path / "BTC_USDT-5m.csv"
    write_csv(csv, data)
    proc, url = _start_fake_exchange_cli(csv)
    try:
        out = tmp_path / "out"
        env = {**os.environ, "EXCHANGE_BASE_URL": url}
        cli = [sys.executable, "-m", "engine.cli", "download", "--symbol", "btcusdt", "--timeframe", TF,
               "--days", "1", "--out", str(out)]
        done = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("\n") == 1 and done.stdout.startswith("wrote ")
        got = read_csv(out / "BTCUSDT-5m.csv", TF)
        assert len(got) >= DAY_CANDLES - 1 and got.ts[-1] + STEP <= time.time_ns() // 1_000_000
        index = int(np.searchsorted(data.ts, got.ts[0]))
        assert same(got, data.slice(index, index + len(got)))

        bad = subprocess.run([*cli[:5], "NOPEUSDT", *cli[6:], "--base-url", url, "--quiet"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2  # a symbol the exchange does not list: bad input, named with close matches
        assert bad.stdout == "" and bad.stderr.strip().count("\n") == 0
        assert bad.stderr == "error: NOPEUSDT is not a spot market on binance; close matches: BTC/USDT\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0  # SIGTERM is a clean shutdown


async def test_short_page_from_a_gap_does_not_end_the_download(base_url: str, clock: SimClock,
                                                               arrays: CandleArrays, tmp_path: Path,
                                                               fake: FakeExchange) -> None:
    fake.inject(Fault.GAP, row=100, span=3)  # the first page of 1000 comes back with 997 rows
    result = await download(SYMBOL, TF, 5, tmp_path, base_url, clock, progress=False)
    assert result.rows_written == 1437 and result.last_ts == int(arrays.ts[1999])
    missing = {int(arrays.ts[i]) for i in (660, 661, 662)}
    assert set(read_csv(result.path, TF).ts.tolist()) == set(arrays.ts[560:2000].tolist()) - missing


async def test_resume_refuses_a_corrupt_file(base_url: str, clock: SimClock, arrays: CandleArrays,
                                             tmp_path: Path) -> None:
    path = tmp_path / f"{SYMBOL}-{TF}.csv"
    write_csv(path, arrays.slice(0, 10))
    with path.open("a") as f:
        f.write(f"{int(arrays.ts[10])},30000.5")  # an interrupted append
    with pytest.raises(CsvFormatError, match=rf"{path.name}:12: expected 6 fields, got 2"):
        await download(SYMBOL, TF, 1, tmp_path, base_url, clock, progress=False)
