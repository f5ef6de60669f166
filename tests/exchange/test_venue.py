"""The agent's exchange layer on two exchanges with different protocols (Binance, OKX), over real ccxt and HTTP
against the fake exchange: the same feed code gives the same closed candles, the ticker, the clock and the
market rules on each; symbols are found however the user writes them; a wrong one names close matches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.core.rules import MarketRules
from engine.errors import ConfigError
from engine.exchange.client import ExchangeSpec
from engine.exchange.venue import Venue
from engine.feeds.base import FeedError
from engine.feeds.exchange import ExchangeFeed
from engine.feeds.synthetic import synthetic_arrays
from sim.exchange import FakeExchange, FakeExchangeServer, Fault
from sim.exchange.venue import FakeMarketRules

TF = "5m"
STEP = 300_000
START = 1_700_000_000_000 - 1_700_000_000_000 % STEP
RULES = FakeMarketRules(tick_size=0.01, step_size=0.0001, min_qty=0.001, min_notional=10.0)


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture(scope="module")
def arrays() -> CandleArrays:
    return synthetic_arrays(2500, seed=5, start_ms=START, timeframe=TF, start_price=30000.0)


@pytest.fixture(params=["binance", "okx"])
async def rig(request: pytest.FixtureRequest, arrays: CandleArrays) -> AsyncIterator[tuple[FakeExchange, Venue,
                                                                                            SimClock]]:
    clock = SimClock(int(arrays.ts[2000]) + 60_000)
    fake = FakeExchange({"BTCUSDT": arrays, "ETHUSDT": arrays}, clock, TF, personality=request.param,
                        rules={"BTCUSDT": RULES})
    async with FakeExchangeServer(fake) as url:
        venue = Venue(ExchangeSpec(request.param, base_url=url, timeout_s=2.0), sleep=_no_sleep)
        try:
            yield fake, venue, clock
        finally:
            await venue.close()


async def test_the_same_feed_reads_the_same_closed_candles_on_both_exchanges(
        rig: tuple[FakeExchange, Venue, SimClock], arrays: CandleArrays) -> None:
    fake, venue, clock = rig
    feed = ExchangeFeed(venue, "BTCUSDT", TF, clock, history=700)  # more than one page on each exchange
    batch = await feed.poll(None)
    assert batch.candles == tuple(arrays.candle(i) for i in range(1300, 2000)) and batch.rejected == ()
    clock.advance(3 * STEP)
    more = await feed.poll(batch.last_ts)
    assert more.candles == tuple(arrays.candle(i) for i in range(2000, 2003))
    tick = await feed.ticker()
    assert tick.price == pytest.approx(fake.price("BTCUSDT")) and tick.ts == clock.now_ms()
    assert await venue.server_time() == clock.now_ms()


async def test_markets_give_the_rules_and_symbols_are_found_as_written(
        rig: tuple[FakeExchange, Venue, SimClock]) -> None:
    _, venue, _ = rig
    await venue.load_markets()
    for written in ("BTCUSDT", "BTC/USDT", "btc-usdt"):
        assert venue.market(written).symbol == "BTC/USDT"
    rules = venue.rules("BTCUSDT")
    min_notional = 10.0 if venue.id == "binance" else 0.0  # OKX has no minimum order value
    assert rules == MarketRules("BTCUSDT", amount_step=0.0001, price_tick=0.01, min_amount=0.001,
                                min_notional=min_notional, base="BTC", quote="USDT")
    with pytest.raises(ConfigError, match=r"BTCUSDX is not a spot market on \w+; close matches: BTC/USDT"):
        venue.market("BTCUSDX")
    with pytest.raises(ConfigError, match="timeframe '7m' is not offered"):
        venue.check_timeframe("7m")


async def test_rules_that_change_are_read_again(rig: tuple[FakeExchange, Venue, SimClock]) -> None:
    fake, venue, _ = rig
    await venue.load_markets()
    assert venue.rules("BTCUSDT").min_amount == 0.001
    fake.set_rules("BTCUSDT", FakeMarketRules(tick_size=0.1, step_size=0.001, min_qty=0.01, min_notional=20.0))
    await venue.load_markets()  # within the TTL: nothing asked
    assert venue.rules("BTCUSDT").min_amount == 0.001
    await venue.load_markets(reload=True)  # as after the TTL, or an exchange's refusal for a filter
    assert venue.rules("BTCUSDT").amount_step == 0.001 and venue.rules("BTCUSDT").min_amount == 0.01


async def test_an_exchange_down_at_start_is_retried_and_bad_data_is_never_delivered(
        rig: tuple[FakeExchange, Venue, SimClock], arrays: CandleArrays) -> None:
    fake, venue, clock = rig
    fake.inject(Fault.SERVER_ERROR, times=2, endpoint="markets")
    feed = ExchangeFeed(venue, "BTCUSDT", TF, clock, history=5, max_attempts=2)
    with pytest.raises(FeedError, match="load_markets failed after 2 attempts"):
        await feed.poll(None)
    fake.inject(Fault.BAD_CANDLE, row=-2)  # the newest closed candle is unsound
    batch = await feed.poll(None)  # the markets load now
    assert batch.candles == tuple(arrays.candle(i) for i in range(1995, 1999))
    assert [c.ts for c, _ in batch.rejected if c] == [int(arrays.ts[1999])]
