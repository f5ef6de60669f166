"""Test helpers for the engine: real candles from the shipped sample, and a live engine wired to real parts."""

from __future__ import annotations

import asyncio

from engine.core.model import CandleArrays
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
