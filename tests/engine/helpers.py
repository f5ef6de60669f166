"""Test helpers for the engine: real candles from the shipped sample, and a live engine wired to real parts."""

from __future__ import annotations

import asyncio

from engine.core.model import CandleArrays
from engine.core.rules import MarketRules
from engine.exchange.client import ExchangeSpec
from engine.exchange.venue import Venue
from tests.sample import sample_path


def real_candles(name: str) -> CandleArrays:
    """Real candles from the sample shipped in data/sample/."""
    from engine.feeds.csvio import read_csv

    return read_csv(sample_path(name))


async def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.001) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def exchange_rules(base_url: str, symbol: str, exchange_id: str = "binance") -> MarketRules:
    """The rules the fake exchange at ``base_url`` serves for ``symbol``, read through ccxt as the engine reads
    them: what the live side trades under, for a backtest to apply too."""
    venue = Venue(ExchangeSpec(exchange_id, base_url=base_url))
    try:
        await venue.load_markets()
        return venue.rules(symbol)
    finally:
        await venue.close()
