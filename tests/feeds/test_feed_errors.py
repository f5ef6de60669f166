"""What a feed raises says whether to try again: the exchange down is retryable, a refused request is not."""

from __future__ import annotations

import random
import socket

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.errors import DataError, ExchangeError, FeedError, FeedUnavailable
from engine.feeds.exchange import ExchangeFeed
from sim.exchange import FakeExchange, Fault

from .conftest import SYMBOL, TF, SleepRecorder


async def test_a_server_that_keeps_failing_is_a_retryable_feed_error(base_url: str, clock: SimClock,
                                                                     session: aiohttp.ClientSession,
                                                                     sleeper: SleepRecorder,
                                                                     fake: FakeExchange) -> None:
    fake.inject(Fault.SERVER_ERROR, times=100)
    feed = ExchangeFeed(base_url, SYMBOL, TF, clock, sleep=sleeper, max_attempts=2)
    with pytest.raises(FeedUnavailable) as info:
        await feed.poll(None)
    await feed.close()
    assert isinstance(info.value, ExchangeError) and isinstance(info.value, DataError) and info.value.retryable
    assert "ExchangeNotAvailable: binance GET /api/v3/klines 500" in str(info.value)


async def test_no_exchange_listening_is_a_retryable_feed_error(clock: SimClock, sleeper: SleepRecorder) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    feed = ExchangeFeed(f"http://127.0.0.1:{port}", SYMBOL, TF, clock, max_attempts=2, sleep=sleeper,
                        rng=random.Random(0))
    try:
        with pytest.raises(FeedUnavailable, match=r"\(ClientConnectorError\)") as info:
            await feed.ticker()
    finally:
        await feed.close()
    assert info.value.retryable


async def test_a_refused_request_is_a_feed_error_that_is_not_retried(base_url: str, clock: SimClock,
                                                                    session: aiohttp.ClientSession,
                                                                    sleeper: SleepRecorder,
                                                                    fake: FakeExchange) -> None:
    feed = ExchangeFeed(base_url, "NOPEUSDT", TF, clock, sleep=sleeper)
    with pytest.raises(FeedError) as info:
        await feed.poll(None)
    await feed.close()
    assert not isinstance(info.value, ExchangeError)  # not listed: asking again will not help
    assert fake.requests == 1 and sleeper.delays == []
