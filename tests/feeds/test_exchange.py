"""ExchangeFeed against the fake exchange over 127.0.0.1, with the real aiohttp client."""

from __future__ import annotations

import math
import random
import socket
import time
from collections.abc import Callable

import aiohttp
import pytest
from structlog.testing import capture_logs

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.core.types import Candle
from engine.exchange.venue import _candle
from engine.feeds.base import MAX_BATCH, FeedError
from engine.feeds.exchange import ExchangeFeed, backoff_delay
from sim.exchange import FakeExchange, Fault

from .conftest import STEP, SYMBOL, TF, SleepRecorder

MakeFeed = Callable[..., ExchangeFeed]


def expected(arrays: CandleArrays, lo: int, hi: int) -> tuple[Candle, ...]:
    return tuple(arrays.candle(i) for i in range(lo, hi))


def assert_backoff(delays: list[float], attempts: list[int]) -> None:
    assert len(delays) == len(attempts)
    for delay, attempt in zip(delays, attempts, strict=True):
        base = min(2**attempt, 60)
        assert base <= delay <= base * 1.25, (delay, attempt)


# ------------------------------------------------------------------------------- happy path


async def test_poll_none_returns_last_history_closed_candles(make_feed: MakeFeed, arrays: CandleArrays) -> None:
    feed = make_feed(history=300)
    batch = await feed.poll(None)
    assert batch.candles == expected(arrays, 1700, 2000)  # exact floats, oldest first
    assert batch.rejected == ()


async def test_in_progress_candle_is_never_returned(make_feed: MakeFeed, arrays: CandleArrays,
                                                     clock: SimClock, fake: FakeExchange) -> None:
    feed = make_feed(history=5)
    open_ts = int(arrays.ts[2000])
    clock.set(open_ts + STEP - 1)  # one ms before candle 2000 closes: the fake still serves it as the last row
    rows = fake.klines(SYMBOL, None, None, 3)
    assert rows[-1][0] == open_ts
    batch = await feed.poll(None)
    assert batch.candles[-1].ts == int(arrays.ts[1999])
    assert all(c.ts != open_ts for c in batch.candles)
    clock.set(open_ts + STEP)  # now it is closed
    batch = await feed.poll(int(arrays.ts[1999]))
    assert batch.candles == expected(arrays, 2000, 2001)


async def test_incremental_polls(make_feed: MakeFeed, arrays: CandleArrays, clock: SimClock) -> None:
    feed = make_feed(history=10)
    first = await feed.poll(None)
    assert (await feed.poll(first.last_ts)).candles == ()
    clock.advance(3 * STEP)
    nxt = await feed.poll(first.last_ts)
    assert nxt.candles == expected(arrays, 2000, 2003)


async def test_pages_over_more_than_1000_candles(make_feed: MakeFeed, arrays: CandleArrays,
                                                  fake: FakeExchange) -> None:
    feed = make_feed(history=1500)
    batch = await feed.poll(None)
    assert batch.candles == expected(arrays, 500, 2000)
    klines = [q for path, q in fake.request_log if path == "/api/v3/klines"]
    assert len(klines) == 2
    assert all(q["limit"] == "1000" for q in klines)
    assert int(klines[1]["startTime"]) == int(arrays.ts[1500])
    assert not batch.more  # the first poll serves its whole history


async def test_catch_up_comes_in_bounded_batches(make_feed: MakeFeed, arrays: CandleArrays) -> None:
    """A poller far behind gets MAX_BATCH candles at a time, told there is more, never the whole backlog."""
    feed = make_feed()
    got: list[Candle] = []
    after = int(arrays.ts[0])  # a worker that was down for a long time: 1,999 closed candles behind
    sizes = []
    while True:
        batch = await feed.poll(after)
        sizes.append((len(batch.candles), batch.more))
        got.extend(batch.candles)
        if not batch.more:
            break
        after = batch.candles[-1].ts
    assert tuple(got) == expected(arrays, 1, 2000)
    assert sizes == [(MAX_BATCH, True), (999, False)]
    assert (await feed.poll(got[-1].ts)).candles == ()


async def test_fetch_range_pages_and_stops_at_closed(make_feed: MakeFeed, arrays: CandleArrays) -> None:
    feed = make_feed()
    batches = [b async for b in feed.fetch_range(int(arrays.ts[10]), int(arrays.ts[2500]), limit=700)]
    got = tuple(c for b in batches for c in b.candles)
    assert got == expected(arrays, 10, 2000)
    assert len(batches) == 3


# ------------------------------------------------------------------------------- transport faults


async def test_server_errors_are_retried_with_backoff(make_feed: MakeFeed, fake: FakeExchange,
                                                      sleeper: SleepRecorder, arrays: CandleArrays) -> None:
    fake.inject(Fault.SERVER_ERROR, times=2)
    fake.inject(Fault.SERVER_ERROR, status=503)
    feed = make_feed(history=20)
    with capture_logs() as logs:
        batch = await feed.poll(None)
    assert batch.candles == expected(arrays, 1980, 2000)
    assert_backoff(sleeper.delays, [1, 2, 3])
    retries = [e for e in logs if e["event"] == "exchange.retry"]
    assert [e["attempt"] for e in retries] == [1, 2, 3]
    assert all(e["log_level"] == "warning" and "ExchangeNotAvailable" in e["reason"] and " 50" in e["reason"]
               for e in retries)
    assert not any("startTime" in str(v) for e in logs for v in e.values())  # no query strings in logs


async def test_jitter_varies_and_is_seeded(make_feed: MakeFeed, fake: FakeExchange, sleeper: SleepRecorder) -> None:
    fake.inject(Fault.SERVER_ERROR, times=3)
    await make_feed(history=2, rng=random.Random(5)).poll(None)
    first = list(sleeper.delays)
    sleeper.delays.clear()
    fake.inject(Fault.SERVER_ERROR, times=3)
    await make_feed(history=2, rng=random.Random(5)).poll(None)
    assert sleeper.delays == first
    assert_backoff(first, [1, 2, 3])
    assert any(d != min(2**a, 60) for d, a in zip(first, [1, 2, 3], strict=True))  # jitter was added


def test_backoff_is_capped_at_60_seconds() -> None:
    rng = random.Random(3)
    for attempt in range(1, 12):
        base = min(2**attempt, 60)
        delays = [backoff_delay(attempt, rng) for _ in range(50)]
        assert all(base <= d <= base * 1.25 for d in delays)
    assert max(backoff_delay(20, rng) for _ in range(100)) <= 75


async def test_persistent_5xx_raises_feed_error_after_max_attempts(make_feed: MakeFeed, fake: FakeExchange,
                                                                   sleeper: SleepRecorder) -> None:
    fake.inject(Fault.SERVER_ERROR, times=100)
    feed = make_feed(max_attempts=4)
    with pytest.raises(FeedError, match=r"after 4 attempts: ExchangeNotAvailable: binance GET /api/v3/klines 500") \
            as info:
        await feed.poll(None)
    assert "startTime" not in str(info.value)
    assert [path for path, _ in fake.request_log] == ["/api/v3/exchangeInfo"] + ["/api/v3/klines"] * 4
    assert_backoff(sleeper.delays, [1, 2, 3])


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limit_honours_retry_after(make_feed: MakeFeed, fake: FakeExchange, sleeper: SleepRecorder,
                                              arrays: CandleArrays, status: int) -> None:
    fake.inject(Fault.RATE_LIMIT, times=2, status=status)
    batch = await make_feed(history=3).poll(None)
    assert batch.candles == expected(arrays, 1997, 2000)
    assert sleeper.delays == [3.0, 3.0]  # exactly Retry-After, not the backoff


async def test_timeout_is_retried(make_feed: MakeFeed, fake: FakeExchange, sleeper: SleepRecorder,
                                  arrays: CandleArrays) -> None:
    fake.inject(Fault.TIMEOUT)  # the server hangs 5 s, the client gives up after 0.2 s
    started = time.monotonic()
    batch = await make_feed(history=3, timeout_s=0.2).poll(None)
    assert time.monotonic() - started < 3.0
    assert batch.candles == expected(arrays, 1997, 2000)
    assert_backoff(sleeper.delays, [1])


async def test_malformed_json_is_retried(make_feed: MakeFeed, fake: FakeExchange, sleeper: SleepRecorder,
                                         arrays: CandleArrays) -> None:
    fake.inject(Fault.MALFORMED_JSON, times=2)
    with capture_logs() as logs:
        batch = await make_feed(history=50).poll(None)
    assert batch.candles == expected(arrays, 1950, 2000)
    assert len(sleeper.delays) == 2
    assert all("malformed JSON" in e["reason"] for e in logs if e["event"] == "exchange.retry")


async def test_other_4xx_fails_at_once(base_url: str, clock: SimClock, session: aiohttp.ClientSession,
                                       sleeper: SleepRecorder, fake: FakeExchange) -> None:
    feed = ExchangeFeed(base_url, "NOPEUSDT", TF, clock, sleep=sleeper)
    with pytest.raises(FeedError, match=r"NOPEUSDT is not a spot market on binance; close matches: BTC/USDT"):
        await feed.poll(None)
    await feed.close()
    assert [path for path, _ in fake.request_log] == ["/api/v3/exchangeInfo"]  # refused before any candle request
    assert sleeper.delays == []


async def test_connection_refused_is_retried_then_fails(clock: SimClock, sleeper: SleepRecorder) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    feed = ExchangeFeed(f"http://127.0.0.1:{port}", SYMBOL, TF, clock, max_attempts=3, sleep=sleeper,
                        rng=random.Random(0))
    try:
        with pytest.raises(FeedError, match=r"ExchangeNotAvailable: .*\(ClientConnectorError\)"):
            await feed.poll(None)
    finally:
        await feed.close()
    assert_backoff(sleeper.delays, [1, 2])


# ------------------------------------------------------------------------------- data faults


async def test_duplicate_candle_is_dropped_and_reported(make_feed: MakeFeed, fake: FakeExchange,
                                                        arrays: CandleArrays, clock: SimClock) -> None:
    feed = make_feed(history=5)
    fake.inject(Fault.DUPLICATE, row=2)
    batch = await feed.poll(None)
    assert batch.candles == expected(arrays, 1995, 2000)
    assert [(c.ts if c else None) for c, _ in batch.rejected] == [int(arrays.ts[1997])]
    assert "duplicate" in batch.rejected[0][1]
    clock.advance(2 * STEP)
    assert (await feed.poll(batch.last_ts)).candles == expected(arrays, 2000, 2002)


async def test_out_of_order_rows_come_sorted_through_ccxt(make_feed: MakeFeed, fake: FakeExchange,
                                                          arrays: CandleArrays, clock: SimClock) -> None:
    """ccxt sorts the candles of an answer by time, so two swapped rows arrive in order: nothing is lost or
    doubled (a duplicate still is dropped, above)."""
    feed = make_feed(history=5)
    fake.inject(Fault.OUT_OF_ORDER, row=1)  # rows 1996 and 1997 swapped
    batch = await feed.poll(None)
    assert batch.candles == expected(arrays, 1995, 2000) and batch.rejected == ()
    clock.advance(STEP)
    assert (await feed.poll(batch.last_ts)).candles == expected(arrays, 2000, 2001)


async def test_gap_is_allowed_and_logged(make_feed: MakeFeed, fake: FakeExchange, arrays: CandleArrays,
                                         clock: SimClock) -> None:
    feed = make_feed(history=6)
    fake.inject(Fault.GAP, row=2, span=2)
    with capture_logs() as logs:
        batch = await feed.poll(None)
    assert batch.candles == tuple(arrays.candle(i) for i in (1994, 1995, 1998, 1999))
    assert batch.rejected == ()
    gaps = [e for e in logs if e["event"] == "feed.gap"]
    assert len(gaps) == 1 and gaps[0]["missing"] == 2 and gaps[0]["log_level"] == "warning"
    clock.advance(STEP)
    assert (await feed.poll(batch.last_ts)).candles == expected(arrays, 2000, 2001)


@pytest.mark.parametrize(("nan", "reason"), [(False, "high below open/close"), (True, "non-finite value")])
async def test_bad_candle_is_dropped_and_reported(make_feed: MakeFeed, fake: FakeExchange, arrays: CandleArrays,
                                                  clock: SimClock, nan: bool, reason: str) -> None:
    feed = make_feed(history=4)
    fake.inject(Fault.BAD_CANDLE, row=1, nan=nan)
    with capture_logs() as logs:
        batch = await feed.poll(None)
    assert batch.candles == tuple(arrays.candle(i) for i in (1996, 1998, 1999))
    assert len(batch.rejected) == 1
    bad, why = batch.rejected[0]
    assert bad is not None and bad.ts == int(arrays.ts[1997]) and why == reason
    assert all(c.problem() is None and math.isfinite(c.close) for c in batch.candles)
    dropped = [e for e in logs if e["event"] == "feed.candle_dropped"]
    assert [e["reason"] for e in dropped] == [reason]
    clock.advance(STEP)
    assert (await feed.poll(batch.last_ts)).candles == expected(arrays, 2000, 2001)


def test_a_ccxt_row_becomes_a_candle_and_a_malformed_one_is_refused() -> None:
    """ccxt has parsed the exchange's row; a missing value is NaN (validate drops the candle), a row that is not
    a candle at all is a ValueError (retried as a bad answer)."""
    assert _candle([60_000, 1, 2, 0.5, 1.5, 3]) == Candle(60_000, 1.0, 2.0, 0.5, 1.5, 3.0)
    assert math.isnan(_candle([60_000, 1, None, 0.5, 1.5, 3]).high)
    for bad in ([60_000, 1, 2], {"a": 1}, [None, 1, 2, 0.5, 1.5, 3], [True, 1, 2, 0.5, 1.5, 3]):
        with pytest.raises(ValueError):
            _candle(bad)
