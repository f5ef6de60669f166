"""Fixtures: a fake exchange on 127.0.0.1 over synthetic candles, a real aiohttp client, a sleep recorder."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.feeds.exchange import ExchangeFeed
from engine.feeds.synthetic import synthetic_arrays
from sim.exchange import FakeExchange, FakeExchangeServer

TF = "5m"
STEP = 300_000
START = 1_700_000_000_000 - 1_700_000_000_000 % STEP
N = 3000
SYMBOL = "BTCUSDT"


class SleepRecorder:
    """Stands in for asyncio.sleep: records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture(scope="session")
def arrays() -> CandleArrays:
    return synthetic_arrays(N, seed=11, start_ms=START, timeframe=TF, start_price=30000.0)


@pytest.fixture
def clock(arrays: CandleArrays) -> SimClock:
    """Mid-candle: candle 2000 is open (2 minutes in), candles 0..1999 are closed."""
    return SimClock(int(arrays.ts[2000]) + 120_000)


@pytest.fixture
def fake(arrays: CandleArrays, clock: SimClock) -> FakeExchange:
    return FakeExchange({SYMBOL: arrays}, clock, TF, retry_after_s=3, hang_s=5.0)


@pytest.fixture
async def base_url(fake: FakeExchange) -> AsyncIterator[str]:
    async with FakeExchangeServer(fake) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def sleeper() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def make_feed(base_url: str, clock: SimClock, sleeper: SleepRecorder):  # type: ignore[no-untyped-def]
    """Feeds over a Binance-protocol venue at the fake exchange; each is closed after the test."""
    made: list[ExchangeFeed] = []

    def make(**kwargs: object) -> ExchangeFeed:
        options: dict[str, object] = {"sleep": sleeper, "rng": random.Random(1), "timeout_s": 0.5}
        options.update(kwargs)
        feed = ExchangeFeed(base_url, SYMBOL, TF, clock, **options)  # type: ignore[arg-type]
        made.append(feed)
        return feed

    yield make
    for feed in made:
        await feed.close()
