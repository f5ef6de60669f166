"""The forms of a candle file people have (BOM, CRLF, header case, ISO dates, seconds, µs, any name) give
the same candles and the same backtest, trade for trade, as the clean file; gaps are reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.common import HEAD, ROWS, cli, csv_text, iso, with_ts

SOME = ROWS[:2000]
DATE_HEAD = "date,open,high,low,close,volume"

VARIANTS: dict[str, tuple[bytes, str | None]] = {  # name -> (file bytes, the note it must print on stderr)
    "bom": (("\ufeff" + csv_text(SOME)).encode(), None),
    "crlf": (csv_text(SOME, newline="\r\n").encode(), None),
    "header_case": (csv_text(SOME, head=HEAD.title()).encode(), None),
    "header_order": (csv_text([",".join(r.split(",")[i] for i in (0, 5, 1, 2, 3, 4)) for r in SOME],
                              head="Timestamp,Volume,Open,High,Low,Close").encode(), None),
    "iso_z": (csv_text(with_ts(SOME, iso("%Y-%m-%dT%H:%M:%SZ")), head=DATE_HEAD).encode(), None),
    "iso_offset_crlf_bom": (("\ufeff" + csv_text(with_ts(SOME, iso("%Y-%m-%d %H:%M:%S+00:00")),
                                                 head="Date,Open,High,Low,Close,Volume", newline="\r\n")).encode(),
                            None),
    "iso_naive": (csv_text(with_ts(SOME, iso("%Y-%m-%d %H:%M:%S")), head=DATE_HEAD).encode(),
                  "dates without a time zone read as UTC"),
    "seconds": (csv_text(with_ts(SOME, lambda ms, _k: ms // 1000)).encode(),
                "timestamps are in seconds: converted to milliseconds"),
    "microseconds": (csv_text(with_ts(SOME, lambda ms, _k: ms * 1000)).encode(),
                     "timestamps are in microseconds: converted to milliseconds"),
}


def _backtest(path: Path, out: Path, *extra: object) -> tuple[dict[str, Any], str, str]:
    done = cli("backtest", "--data", path, "--json", out, *extra)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout, done.stderr


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("clean")
    path = folder / "BTC_USDT-5m.csv"
    path.write_text(csv_text(SOME))
    report, _, err = _backtest(path, folder / "bt.json")
    assert err == ""  # a clean, well-named file: nothing to say
    assert report["candles"] == 2000 and len(report["trades"]) > 10
    return report


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_gives_the_same_backtest(tmp_path: Path, clean: dict[str, Any], name: str) -> None:
    content, note = VARIANTS[name]
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_bytes(content)
    report, out, err = _backtest(path, tmp_path / "bt.json")
    assert report["trades"] == clean["trades"]  # same entry and exit times (ms), prices, fees, pnl
    assert report["metrics"] == clean["metrics"]  # the CAGR too: seconds were read as ms (1970) before
    assert out.splitlines()[0] == "Backtest BTCUSDT · sma-cross(10,30) · 2,000 candles"
    assert err == ("" if note is None else f"note: {note}\n")


def test_any_file_name_with_symbol_or_inferred_timeframe(tmp_path: Path, clean: dict[str, Any]) -> None:
    path = tmp_path / "my candles.csv"
    path.write_text(csv_text(SOME))
    report, out, err = _backtest(path, tmp_path / "bt.json", "--symbol", "btcusdt")
    assert report["trades"] == clean["trades"] and report["timeframe"] == "5m"
    assert err == ("note: timeframe 5m inferred from the timestamps (their most common spacing); "
                   "pass --timeframe to set it\n")
    report, out, err = _backtest(path, tmp_path / "bt2.json", "--timeframe", "5m")
    assert report["symbol"] == "MYCANDLES" and out.startswith("Backtest MYCANDLES ")
    assert err == "note: symbol MYCANDLES taken from the file name (not BASE_QUOTE-TF.csv); pass --symbol to set it\n"


def test_gaps_are_a_warning_in_the_report_and_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    rows = [*SOME[:300], *SOME[800:1000], *SOME[1003:]]  # 500 and 3 candles missing
    path.write_text(csv_text(rows))
    after = iso("%Y-%m-%dT%H:%M:%SZ")(int(SOME[299].split(",")[0]), 0)
    warning = f"2 gaps in the candles (503 missing); the largest: 500 candles (1d 17h 40m) after {after}"
    report, out, _ = _backtest(path, tmp_path / "bt.json")
    assert out.splitlines()[:2] == [f"Backtest BTCUSDT · sma-cross(10,30) · {len(rows):,} candles",
                                    f"  warning: {warning}"]
    assert report["warnings"] == [warning]
    done = cli("check-lookahead", "--data", path, "--model", "sma-cross", "--cuts", "4")
    assert done.returncode == 0 and done.stderr == f"warning: {warning}\n"
    done = cli("train", "--data", path, "--out", tmp_path / "m", "--folds", "2", "--iterations", "20",
               "--depth", "3", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"warning: BTC_USDT-5m.csv: {warning}\n"
