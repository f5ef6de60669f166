"""Test helpers for the engine: real candles, and a live engine wired to real parts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.core.model import CandleArrays

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def real_candles(name: str) -> CandleArrays:
    """Real candles from ../shared/data, or skip the test saying why."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real candle data not found at {path} (the shared data folder is absent)")
    from engine.feeds.csvio import read_csv

    return read_csv(path)


async def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.001) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)
