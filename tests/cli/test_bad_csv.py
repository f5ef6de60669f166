"""Every bad candle file through the real commands (subprocesses): one line on stderr, exit 2, no
traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.common import HEAD, ROWS, cli, csv_text, iso, one_line_error, with_ts

SOME = ROWS[:400]


def _field(row: str, index: int, value: str) -> str:
    fields = row.split(",")
    fields[index] = value
    return ",".join(fields)


BAD_ISO = with_ts(SOME, iso("%Y-%m-%dT%H:%M:%SZ"))
BAD_ISO[5] = "2023-02-30T00:00:00Z," + BAD_ISO[5].split(",", 1)[1]
SHIFTED = with_ts(SOME, lambda ms, k: ms + 60_000 if k == 20 else ms)
SHIFTED_ISO = with_ts(SHIFTED, iso("%Y-%m-%dT%H:%M:%SZ"))

# name -> (file content, what the one line must say, and for the three readers where it differs)
BAD: dict[str, tuple[str, str]] = {
    "empty": ("", "the file is empty"),
    "header_only": (HEAD + "\n", "no candles, only a header"),
    "unsorted": (csv_text([*SOME[:10], SOME[11], SOME[10], *SOME[12:]]), "BTC_USDT-5m.csv:13: timestamp out of order"),
    "duplicate": (csv_text([*SOME[:11], SOME[10], *SOME[11:]]), "BTC_USDT-5m.csv:13: duplicate timestamp"),
    "unit_unknown": (csv_text(with_ts(SOME, lambda ms, k: 1_700_000_000 + 7 * k)),
                     "cannot tell the timestamps' unit: their most common spacing, 7, is no timeframe"),
    "unit_conflict": (csv_text(with_ts(SOME, lambda ms, k: 1_600_000_000_000_000 + 300_000 * k)),
                      "reads as 5m in milliseconds, their size (1600000000000000) as microseconds"),
    "name_says_5m": (csv_text(with_ts(SOME, lambda ms, k: 1_672_531_200_000 + 60_000 * k)),
                     "the candles are 1m apart (timestamps in milliseconds), but the file name says 5m; "
                     "pass --timeframe 1m"),
    "spacing_off_the_timeframe": (csv_text(SHIFTED), f":22: {SHIFTED_ISO[20].split(',')[0]} is 6m after the previous "
                                                     f"candle: not a whole number of 5m candles"),
    "bad_header": ("time,price\n1672531200000,16500\n", ":1: header must be exactly"),
    "bad_iso_date": (csv_text(BAD_ISO, head="date,open,high,low,close,volume"),
                     ":7: date '2023-02-30T00:00:00Z' is not an ISO 8601 time"),
    "text_in_a_price": (csv_text([*SOME[:3], _field(SOME[3], 2, "abc"), *SOME[4:]]), ":5: high 'abc' is not a number"),
}


def _bad_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(BAD[name][0])
    return path


@pytest.mark.parametrize("name", BAD)
def test_backtest(tmp_path: Path, name: str) -> None:
    path = _bad_file(tmp_path, name)
    done = cli("backtest", "--data", path, "--json", tmp_path / "bt.json", "--chart", tmp_path / "eq.png")
    one_line_error(done, "error: ", BAD[name][1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("name", BAD)
def test_train(tmp_path: Path, name: str) -> None:
    path = _bad_file(tmp_path, name)
    done = cli("train", "--data", path, "--out", tmp_path / "model", "--no-progress")
    one_line_error(done, "error: ", BAD[name][1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("name", BAD)
def test_check_lookahead(tmp_path: Path, name: str) -> None:
    one_line_error(cli("check-lookahead", "--data", _bad_file(tmp_path, name), "--model", "sma-cross"),
                   "error: ", BAD[name][1])


@pytest.mark.parametrize("name", ["unsorted", "duplicate", "bad_header", "text_in_a_price"])
def test_download_refuses_a_bad_file_to_resume_before_asking_the_exchange(tmp_path: Path, name: str) -> None:
    path = tmp_path / "BTCUSDT-5m.csv"
    path.write_text(BAD[name][0])
    # port 9 (discard) has no exchange: had the command asked, it would fail with exit code 1 after retries
    done = cli("download", "--symbol", "BTCUSDT", "--timeframe", "5m", "--out", tmp_path,
               "--base-url", "http://127.0.0.1:9")
    one_line_error(done, "error: ", BAD[name][1].replace("BTC_USDT-5m.csv", "BTCUSDT-5m.csv"))
    assert path.read_text() == BAD[name][0]


@pytest.mark.parametrize(("variant", "says"), [
    ("seconds", "has timestamps in seconds; download appends only to files in its own format"),
    ("iso", "has ISO 8601 dates; download appends only to files in its own format"),
])
def test_download_does_not_append_to_a_file_in_another_format(tmp_path: Path, variant: str, says: str) -> None:
    path = tmp_path / "BTCUSDT-5m.csv"
    if variant == "seconds":
        text = csv_text(with_ts(SOME, lambda ms, k: ms // 1000))
    else:
        text = csv_text(with_ts(SOME, iso("%Y-%m-%dT%H:%M:%SZ")), head="date,open,high,low,close,volume")
    path.write_text(text)
    done = cli("download", "--symbol", "BTCUSDT", "--timeframe", "5m", "--out", tmp_path,
               "--base-url", "http://127.0.0.1:9")
    one_line_error(done, says)
    assert path.read_text() == text


def test_too_few_candles_for_the_strategy(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(csv_text(SOME[:20]))
    one_line_error(cli("backtest", "--data", path), "BTC_USDT-5m.csv: 20 candles; a backtest of sma-cross(10,30) "
                                                    "needs at least 32")
    one_line_error(cli("backtest", "--data", path, "--fast", "3", "--slow", "25"),
                   "a backtest of sma-cross(3,25) needs at least 27")
    assert cli("backtest", "--data", path, "--fast", "3", "--slow", "18").returncode == 0
    one_line_error(cli("check-lookahead", "--data", path, "--model", "sma-cross"),
                   "20 candles; checking sma-cross(10,30) needs at least 32")
    one_line_error(cli("train", "--data", path, "--out", tmp_path / "m"), "data too short: BTC_USDT-5m.csv has 20")
    assert not (tmp_path / "m").exists()


def test_timeframe_given_against_the_data(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(csv_text(SOME))
    one_line_error(cli("backtest", "--data", path, "--timeframe", "1h"),
                   "the candles are 5m apart (timestamps in milliseconds), but --timeframe says 1h")
    one_line_error(cli("backtest", "--data", path, "--timeframe", "7m"), "unknown timeframe '7m'")


@pytest.mark.parametrize("args", [
    ["backtest", "--data", "x.csv", "--cash", "-5"],
    ["backtest", "--data", "x.csv", "--fee-bps", "nan"],
    ["backtest", "--data", "x.csv", "--fast", "0"],
    ["train", "--data", "x.csv", "--out", "m", "--iterations", "0"],
    ["check-lookahead", "--data", "x.csv", "--model", "sma-cross", "--cuts", "-1"],
    ["download", "--symbol", "BTCUSDT", "--timeframe", "5m", "--out", "d", "--days", "0"],
])
def test_bad_numbers_in_arguments(args: list[str]) -> None:
    one_line_error(cli(*args), f"trading-agent {args[0]}: error: argument {args[-2]}: must be")
