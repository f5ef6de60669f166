"""Real candles from the shipped sample (data/sample/) for the strategy tests."""

from __future__ import annotations

import pytest

from engine.core.model import CandleArrays
from engine.feeds.candle_file import load_candles
from tests.sample import sample_path

SAMPLE_FILES = ("BTC_USDT-5m.csv", "ETH_BTC-5m.csv", "BTC_USD-1h.csv", "XRP_ETH-5m.csv", "ETH_USD-1m.csv",
                "BTC_USDT-1m.csv", "BTC_USDT-1d.csv", "BTC_USDT-1h.csv")


def sample_arrays(name: str) -> CandleArrays:
    return load_candles(sample_path(name)).arrays


@pytest.fixture(scope="session")
def btc_5m() -> CandleArrays:
    return sample_arrays("BTC_USDT-5m.csv")


@pytest.fixture(scope="session")
def btc_1000(btc_5m: CandleArrays) -> CandleArrays:
    return btc_5m.slice(0, 1000)
