"""What makes ``trading-agent backtest`` fast changes none of its output: the columnar cache (a second run
reads it, same report, same JSON to the byte) and the JSON writer (``json.dumps(indent=2)``, byte for byte)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from engine.backtest_cli import dumps_result
from engine.feeds.cache import MIN_BYTES, cache_path
from engine.feeds.csvio import write_csv
from engine.feeds.synthetic import synthetic_arrays
from tests.cli.common import cli
from tests.sample import sample_path

START = 1_700_000_000_000 - 1_700_000_000_000 % 300_000


def test_a_second_run_reads_the_cache_and_prints_the_same(tmp_path: Path) -> None:
    csv = tmp_path / "BTC_USDT-5m.csv"
    write_csv(csv, synthetic_arrays(110_000, seed=3, start_ms=START, timeframe="5m", start_price=30000.0))
    assert csv.stat().st_size >= MIN_BYTES

    first = cli("backtest", "--data", csv, "--json", tmp_path / "a.json", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert cache_path(csv).is_file()
    second = cli("backtest", "--data", csv, "--json", tmp_path / "b.json", "--no-progress")

    assert second.returncode == 0, second.stderr
    assert first.stderr == second.stderr == ""
    assert first.stdout.replace("a.json", "b.json") == second.stdout
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text())["metrics"]["trades"] > 100


def test_a_read_only_cache_place_is_silent(tmp_path: Path) -> None:
    csv = tmp_path / "BTC_USDT-5m.csv"
    write_csv(csv, synthetic_arrays(110_000, seed=4, start_ms=START, timeframe="5m", start_price=30000.0))
    cache_path(csv).mkdir()  # the cache cannot be written there (root ignores a read-only folder's mode)

    done = cli("backtest", "--data", csv, "--no-progress")

    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "Trades" in done.stdout


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.none(),
                    st.text(max_size=8))
trade = st.dictionaries(st.text(min_size=1, max_size=6), numbers, min_size=1, max_size=11)


@given(trades=st.lists(trade, max_size=5), extra=st.dictionaries(st.text(max_size=5), numbers, max_size=4))
def test_the_json_writer_is_json_dumps_indent_2_byte_for_byte(trades: list[dict[str, object]],
                                                                extra: dict[str, object]) -> None:
    doc = {**{k: v for k, v in extra.items() if k != "trades"}, "trades": trades}

    assert dumps_result(doc) == json.dumps(doc, indent=2)


def test_an_sma_cross_backtest_does_not_import_logging_machinery() -> None:
    # sma-cross's own path logs nothing: no structlog (nor asyncio, which it brings) in the process; a strategy's
    # code may log, so a backtest of one configures logging as before
    code = ("import sys; from engine.cli import main; code = main(['backtest', '--data', sys.argv[1], *sys.argv[2:]]);"
            " print(sorted({'structlog', 'asyncio'} & set(sys.modules)), code)")
    data = str(sample_path("BTC_USDT-5m.csv"))
    for extra, loaded in (([], "[]"), (["--strategy", "rsi-mean-reversion"], "['asyncio', 'structlog']")):
        out = subprocess.run([sys.executable, "-c", code, data, "--no-progress", *extra], capture_output=True,
                             text=True, timeout=120, check=True)
        assert out.stdout.splitlines()[-1] == f"{loaded} 0", out.stdout + out.stderr
