"""The feed port's ticker: the latest price between candles, and how old it is.

The fake exchange serves Binance's ``/api/v3/ticker/price`` from its still-open candle (over HTTP);
the exchange feed reads it and times it on its clock; replay and synthetic feeds answer with the
newest closed candle's close, timed at that candle's close.
"""

from __future__ import annotations

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.feeds.base import Feed, FeedError, Tick
from engine.feeds.exchange import ExchangeFeed
from engine.feeds.replay import ReplayFeed
from engine.feeds.synthetic import SyntheticFeed, synthetic_arrays
from sim.exchange import FakeExchange, Fault

from .conftest import START, STEP, SYMBOL, TF
from .test_fake_exchange import get


async def test_fake_exchange_ticker_is_the_open_candle_so_far(base_url: str, session: aiohttp.ClientSession,
                                                             arrays: CandleArrays, clock: SimClock) -> None:
    url = f"{base_url}/api/v3/ticker/price"
    status, body = await get(session, url, symbol=SYMBOL.lower())
    # 2 of 5 minutes into candle 2000: 40 % of the way from its open to its (future) close
    expected = arrays.open[2000] + (arrays.close[2000] - arrays.open[2000]) * 0.4
    assert status == 200 and body["symbol"] == SYMBOL and isinstance(body["price"], str)
    assert float(body["price"]) == pytest.approx(expected, rel=1e-12)
    _, klines = await get(session, f"{base_url}/api/v3/klines", symbol=SYMBOL, interval=TF, limit=1)
    assert float(body["price"]) == float(klines[-1][4])  # the same price as the open kline's close so far
    clock.set(int(arrays.ts[2001]))  # the next candle has just opened: the ticker is its open
    _, body = await get(session, url, symbol=SYMBOL)
    assert float(body["price"]) == arrays.open[2001]
    status, every = await get(session, url)
    assert status == 200 and every == [body]  # without symbol=: a list, one entry per market
    status, err = await get(session, url, symbol="NOPE")
    assert status == 400 and err["code"] == -1121


async def test_exchange_feed_ticker_is_timed_on_its_clock(make_feed, fake: FakeExchange,  # type: ignore[no-untyped-def]
                                                          clock: SimClock) -> None:
    feed: ExchangeFeed = make_feed()
    assert isinstance(feed, Feed)
    tick = await feed.ticker()
    assert tick == Tick(fake.price(SYMBOL) or 0.0, clock.now_ms())
    assert fake.request_log[-1] == ("/api/v3/ticker/24hr", {"symbol": SYMBOL})  # ccxt's fetch_ticker


async def test_exchange_feed_ticker_makes_one_attempt_and_says_why(base_url: str, clock: SimClock,
                                                                   session: aiohttp.ClientSession,
                                                                   fake: FakeExchange) -> None:
    feed = ExchangeFeed(base_url, "NOPEUSDT", TF, clock)
    before = fake.requests
    with pytest.raises(FeedError, match=r"NOPEUSDT is not a spot market on binance"):
        await feed.ticker()
    await feed.close()
    assert fake.requests == before + 1  # the markets, no ticker request
    listed = ExchangeFeed(base_url, SYMBOL, TF, clock, timeout_s=0.5)
    await listed.ticker()
    fake.inject(Fault.SERVER_ERROR, endpoint="ticker")
    with pytest.raises(FeedError, match=r"fetch_ticker BTC/USDT failed \(one attempt\): ExchangeNotAvailable"):
        await listed.ticker()
    await listed.close()


async def test_replay_ticker_is_the_last_close_timed_at_its_close(arrays: CandleArrays) -> None:
    clock = SimClock(int(arrays.ts[100]) + STEP - 1)  # candle 100 is still open: its close is not known yet
    feed = ReplayFeed(arrays, SYMBOL, TF, clock)
    assert await feed.ticker() == Tick(float(arrays.close[99]), int(arrays.ts[99]) + STEP, "close")
    clock.advance(1)
    assert await feed.ticker() == Tick(float(arrays.close[100]), int(arrays.ts[100]) + STEP, "close")
    clock.set(int(arrays.ts[0]))
    with pytest.raises(FeedError, match="no closed candle yet"):
        await feed.ticker()


async def test_synthetic_ticker_is_the_last_close_timed_at_its_close() -> None:
    clock = SimClock(START + 50 * STEP + 7)
    feed = SyntheticFeed(SYMBOL, TF, clock, seed=3, start_ms=START)
    walk = synthetic_arrays(50, seed=3, start_ms=START, timeframe=TF)
    assert await feed.ticker() == Tick(float(walk.close[49]), START + 50 * STEP, "close")
    assert (await feed.poll(None)).candles[-1].close == walk.close[49]
    clock.set(START + STEP - 1)
    with pytest.raises(FeedError, match="no closed candle yet"):
        await feed.ticker()
