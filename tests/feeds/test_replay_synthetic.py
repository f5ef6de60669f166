"""ReplayFeed and SyntheticFeed: closed-candle poll semantics by an injected clock, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.feeds.base import MAX_BATCH, Feed, FeedBatch, validate
from engine.feeds.csvio import check_arrays, write_csv
from engine.feeds.replay import ReplayFeed
from engine.feeds.synthetic import SyntheticFeed, synthetic_arrays

from .conftest import STEP, TF


async def test_replay_serves_closed_candles_by_clock(arrays: CandleArrays) -> None:
    clock = SimClock(int(arrays.ts[100]) + STEP - 1)  # candle 100 is still open
    feed = ReplayFeed(arrays, "BTCUSDT", TF, clock, history=30)
    assert isinstance(feed, Feed) and feed.synthetic is False
    batch = await feed.poll(None)
    assert batch.candles == tuple(arrays.candle(i) for i in range(70, 100))
    assert (await feed.poll(batch.last_ts)).candles == ()
    clock.advance(1)
    assert (await feed.poll(batch.last_ts)).candles == (arrays.candle(100),)
    clock.set(int(arrays.ts[0]) - 1)
    assert (await feed.poll(None)).candles == ()


async def test_replay_from_csv_path(arrays: CandleArrays, tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    write_csv(path, arrays.slice(0, 50))
    feed = ReplayFeed(path, "BTCUSDT", TF, SimClock(int(arrays.ts[49]) + STEP))
    batch = await feed.poll(int(arrays.ts[9]))
    assert batch.candles == tuple(arrays.candle(i) for i in range(10, 50))
    await feed.close()


async def test_synthetic_is_deterministic_whenever_polled() -> None:
    start = 1_704_067_200_000
    clock = SimClock(start + 3000 * STEP + 7)
    feed = SyntheticFeed("BTCUSDT", TF, clock, seed=3, start_ms=start, history=3000)
    assert isinstance(feed, Feed) and feed.synthetic is True
    everything = await feed.poll(None)
    assert len(everything.candles) == 3000 and everything.rejected == ()
    assert everything.candles[0].ts == start and everything.candles[0].open == 30000.0
    # another instance, polled step by step from a different point in time, sees the same candles
    clock2 = SimClock(start + 1500 * STEP)
    other = SyntheticFeed("BTCUSDT", TF, clock2, seed=3, start_ms=start, history=10)
    got = list((await other.poll(None)).candles)
    while clock2.now_ms() < clock.now_ms():
        clock2.set(min(clock2.now_ms() + 7 * STEP, clock.now_ms()))
        got.extend((await other.poll(got[-1].ts)).candles)
    assert got == list(everything.candles[1490:3000])
    arrays = synthetic_arrays(3000, seed=3, start_ms=start, timeframe=TF, start_price=30000.0)
    assert tuple(arrays.candle(i) for i in range(3000)) == everything.candles
    different = synthetic_arrays(3000, seed=4, start_ms=start, timeframe=TF, start_price=30000.0)
    assert not np.array_equal(different.close, arrays.close)


async def drain(feed: Feed, after: int) -> tuple[list[FeedBatch], list[int]]:
    batches = []
    while True:
        batch = await feed.poll(after)
        batches.append(batch)
        if not batch.more:
            return batches, [len(b.candles) for b in batches]
        after = batch.candles[-1].ts


async def test_replay_and_synthetic_catch_up_in_bounded_batches(arrays: CandleArrays) -> None:
    """Far behind, both feeds serve MAX_BATCH candles per poll with ``more`` set, and lose none."""
    clock = SimClock(int(arrays.ts[-1]) + STEP)
    replay = ReplayFeed(arrays, "BTCUSDT", TF, clock, history=30)
    batches, sizes = await drain(replay, int(arrays.ts[0]))
    n = len(arrays.ts) - 1
    assert sizes == [MAX_BATCH] * (n // MAX_BATCH) + [n % MAX_BATCH]
    assert tuple(c for b in batches for c in b.candles) == tuple(arrays.candle(i) for i in range(1, n + 1))

    start = 1_704_067_200_000
    sclock = SimClock(start + 2500 * STEP)
    synthetic = SyntheticFeed("BTCUSDT", TF, sclock, seed=3, start_ms=start, history=10)
    batches, sizes = await drain(synthetic, start)
    assert sizes == [MAX_BATCH, MAX_BATCH, 499]
    everything = synthetic_arrays(2500, seed=3, start_ms=start, timeframe=TF, start_price=30000.0)
    assert tuple(c for b in batches for c in b.candles) == tuple(everything.candle(i) for i in range(1, 2500))


def test_synthetic_candles_look_like_candles() -> None:
    arrays = synthetic_arrays(20_000, seed=7, start_ms=0, timeframe="1m", start_price=100.0)
    check_arrays(arrays, timeframe="1m")  # sound candles, strictly increasing, on grid
    assert np.array_equal(arrays.open[1:], arrays.close[:-1])  # continuous walk
    assert np.all(arrays.high > np.maximum(arrays.open, arrays.close))  # real wicks
    assert np.all(arrays.low < np.minimum(arrays.open, arrays.close))
    returns = np.diff(np.log(arrays.close))
    assert 0.0003 < returns.std() < 0.0015  # about 3 % a day at 1m
    assert np.all(arrays.volume > 0)


def test_validate_rules() -> None:
    arrays = synthetic_arrays(6, seed=1, start_ms=0, timeframe="1m", start_price=10.0)
    c = [arrays.candle(i) for i in range(6)]
    off_grid = arrays.candle(5).__class__(c[5].ts + 1, c[5].open, c[5].high, c[5].low, c[5].close, 1.0)
    batch = validate([c[0], c[1], c[1], c[3], c[2], off_grid, c[5]], None, "1m")
    assert batch.candles == (c[0], c[1], c[3], c[5])
    assert [r for _, r in batch.rejected] == ["duplicate ts 60000", "out-of-order ts 120000 after 180000",
                                              "ts 300001 is off the 1m grid"]
    assert validate(c, c[2].ts, "1m") == FeedBatch((c[3], c[4], c[5]))  # already delivered: skipped, not rejected
