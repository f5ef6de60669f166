"""The feed port: what every market-data feed (exchange, replay, synthetic) offers the engine.

A feed delivers CLOSED candles only: a candle is closed when ``candle.ts + timeframe_ms(tf) <= now``
by the feed's injected clock. Every batch goes through :func:`validate`, which drops unsound,
duplicate, out-of-order and off-grid candles (reporting each one in ``FeedBatch.rejected``) and logs
gaps in the time grid. ``ticker`` is the latest price between candles, for display and the manual
order preview only: decisions, fills and stops use closed candles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import structlog

from engine.core.rules import MarketRules
from engine.core.types import Candle, timeframe_ms
from engine.errors import FeedError as FeedError  # defined with the whole tree; raised and caught by this name

log = structlog.get_logger(__name__)

DEFAULT_HISTORY = 1000  # the config default (feed.history): /retrain needs 600
MAX_BATCH = 1000  # candles per poll after the first: a worker far behind catches up in bounded steps


@dataclass(frozen=True)
class FeedBatch:
    """Validated closed candles (oldest first) and what was dropped from the source, with why.

    ``more``: the source had more closed candles than one batch holds (a feed serves at most
    ``MAX_BATCH`` after ``after_ts``); the caller polls again at once instead of waiting.
    """

    candles: tuple[Candle, ...]
    rejected: tuple[tuple[Candle | None, str], ...] = ()
    more: bool = False

    @property
    def last_ts(self) -> int | None:
        return self.candles[-1].ts if self.candles else None


@dataclass(frozen=True, slots=True)
class Tick:
    """The latest price and its time (ms, on the feed's clock): when it was received from an exchange, or
    the close time of the candle whose close it is."""

    price: float
    ts: int
    kind: str = "ticker"  # "ticker" (an exchange's) or "close" (a replayed or synthetic candle's close)


@runtime_checkable
class Feed(Protocol):
    symbol: str
    timeframe: str
    synthetic: bool  # True for the seeded synthetic feed, so its prices can be labelled as such

    async def poll(self, after_ts: int | None) -> FeedBatch:
        """CLOSED candles with ts > after_ts, oldest first, validated; the last ``history`` when None.

        After ``after_ts`` at most about ``MAX_BATCH`` candles, with ``more`` set when there are more:
        memory stays bounded however far behind the caller is."""
        ...

    async def ticker(self) -> Tick:
        """The latest price (an exchange's ticker; a replayed or synthetic series' latest close).
        FeedError when there is none or it cannot be fetched."""
        ...

    def rules(self) -> MarketRules | None:
        """The exchange's trading rules for this market, once its markets are read (None: no exchange, or not
        read yet); read again after the markets' TTL, so a change reaches the engine."""
        ...

    async def close(self) -> None:
        ...


def last_closed_ts(now_ms: int, timeframe: str) -> int:
    """Open time of the newest candle that is closed at ``now_ms`` (may be negative near the epoch)."""
    step = timeframe_ms(timeframe)
    return (now_ms // step) * step - step


def is_closed(ts: int, timeframe: str, now_ms: int) -> bool:
    return ts + timeframe_ms(timeframe) <= now_ms


def cap_batch(lo: int, hi: int, after_ts: int | None) -> tuple[int, bool]:
    """The index range [lo, hi) of candles after ``after_ts`` cut to ``MAX_BATCH``: the new ``hi``, and
    whether candles were left for the next poll. The history range (``after_ts`` None) is not cut."""
    if after_ts is not None and hi - lo > MAX_BATCH:
        return lo + MAX_BATCH, True
    return hi, False


def validate(candles: Iterable[Candle], after_ts: int | None, timeframe: str, *, symbol: str = "",
             more: bool = False) -> FeedBatch:
    """Keep sound candles with strictly increasing, on-grid ``ts > after_ts``; report the rest.

    Candles at or before ``after_ts`` are not errors (already delivered) and are skipped silently
    (debug log). A candle with ``Candle.problem()``, a duplicate, an out-of-order or an off-grid
    candle is dropped, logged and listed in ``rejected``. Gaps are allowed and logged as warnings
    with the number of missing candles (measured from ``after_ts`` too when it is given). ``more`` is
    passed on to the batch.
    """
    step = timeframe_ms(timeframe)
    kept: list[Candle] = []
    rejected: list[tuple[Candle | None, str]] = []
    prev = after_ts

    def reject(candle: Candle, reason: str) -> None:
        rejected.append((candle, reason))
        log.warning("feed.candle_dropped", symbol=symbol, timeframe=timeframe, ts=candle.ts, reason=reason)

    for candle in candles:
        if after_ts is not None and candle.ts <= after_ts and not kept:
            log.debug("feed.candle_skipped", symbol=symbol, ts=candle.ts, reason="already delivered")
            continue
        problem = candle.problem()
        if problem is not None:
            reject(candle, problem)
            continue
        if candle.ts % step != 0:
            reject(candle, f"ts {candle.ts} is off the {timeframe} grid")
            continue
        if prev is not None and candle.ts == prev:
            reject(candle, f"duplicate ts {candle.ts}")
            continue
        if prev is not None and candle.ts < prev:
            reject(candle, f"out-of-order ts {candle.ts} after {prev}")
            continue
        if prev is not None and candle.ts - prev > step and prev % step == 0:
            missing = (candle.ts - prev) // step - 1
            log.warning("feed.gap", symbol=symbol, timeframe=timeframe, after_ts=prev, next_ts=candle.ts,
                        missing=missing)
        kept.append(candle)
        prev = candle.ts
    return FeedBatch(tuple(kept), tuple(rejected), more)
