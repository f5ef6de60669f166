"""``trading-agent backtest --model DIR`` as a user meets it: a real subprocess over a model trained on real candles.

In its own training window the report says so on its first line; a model trained on another symbol or
timeframe is refused unless ``--force``; ``strategy = "model"`` in the config is honoured with a model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.core.model import CandleArrays
from engine.feeds.candle_file import iso_utc
from engine.feeds.csvio import read_csv, write_csv
from tests.models.conftest import DATA_DIR, TRAIN_FILE

ROOT = Path(__file__).resolve().parents[2]
YEAR_MS = 366 * 86_400_000


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


def test_in_sample_is_the_first_line(trained_dir: Path, tmp_path: Path) -> None:
    data = DATA_DIR / TRAIN_FILE
    arrays = read_csv(data)
    done = cli("backtest", "--data", data, "--model", trained_dir, "--json", tmp_path / "bt.json")
    assert done.returncode == 0, done.stderr
    n = len(arrays)
    first, last = int(arrays.ts[0]), int(arrays.ts[-1])
    assert done.stdout.splitlines()[0] == (
        f"IN-SAMPLE: {n:,} of {n:,} candles lie inside the model's training window ({iso_utc(first)} .. "
        f"{iso_utc(last)}); these numbers are not out of sample")
    assert done.stdout.splitlines()[1].startswith("Backtest ETHBTC · eth-btc-test · ")
    report = json.loads((tmp_path / "bt.json").read_text())
    assert report["in_sample_candles"] == n and report["warnings"][0].startswith("IN-SAMPLE: ")


def test_after_the_training_window_no_in_sample_line(trained_dir: Path, tmp_path: Path) -> None:
    arrays = read_csv(DATA_DIR / TRAIN_FILE)
    later = tmp_path / TRAIN_FILE  # the same market shape a year on: outside the window
    write_csv(later, CandleArrays(arrays.ts + YEAR_MS - YEAR_MS % 300_000, arrays.open, arrays.high, arrays.low,
                                  arrays.close, arrays.volume))
    done = cli("backtest", "--data", later, "--model", trained_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Backtest ETHBTC · eth-btc-test · ")
    assert "IN-SAMPLE" not in done.stdout


def test_another_symbol_is_refused_unless_forced(trained_dir: Path, tmp_path: Path) -> None:
    other = DATA_DIR / "BTC_USDT-5m.csv"
    done = cli("backtest", "--data", other, "--model", trained_dir, "--json", tmp_path / "bt.json")
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr == ("error: model eth-btc-test was trained on ETH/BTC 5m candles, BTC_USDT-5m.csv holds "
                           "BTCUSDT 5m; pass --force to backtest it anyway\n")
    assert not (tmp_path / "bt.json").exists()
    forced = cli("backtest", "--data", other, "--model", trained_dir, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "Backtest BTCUSDT · eth-btc-test · " in forced.stdout
    assert forced.stderr == ("note: model eth-btc-test was trained on ETH/BTC 5m candles, BTC_USDT-5m.csv holds "
                             "BTCUSDT 5m (--force)\n")


def test_another_timeframe_is_refused_unless_forced(trained_dir: Path, tmp_path: Path) -> None:
    arrays = read_csv(DATA_DIR / TRAIN_FILE)
    keep = arrays.ts % 900_000 == 0  # every third 5m candle: 15m spacing (prices need not be resampled here)
    hourly = tmp_path / "ETH_BTC-15m.csv"
    write_csv(hourly, CandleArrays(*(getattr(arrays, k)[keep] for k in ("ts", "open", "high", "low", "close",
                                                                        "volume"))))
    done = cli("backtest", "--data", hourly, "--model", trained_dir)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("error: model eth-btc-test was trained on ETH/BTC 5m candles, ETH_BTC-15m.csv holds "
                           "ETHBTC 15m; pass --force to backtest it anyway\n")
    assert cli("backtest", "--data", hourly, "--model", trained_dir, "--force").returncode == 0


def test_config_strategy_model_is_honoured_with_a_model(trained_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    config.write_text('[trading]\nstrategy = "model"\n')
    done = cli("backtest", "--data", DATA_DIR / TRAIN_FILE, "--config", config, "--model", trained_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("Backtest ETHBTC · eth-btc-test · ")
