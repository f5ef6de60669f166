"""Market data: the Feed port and its implementations.

- ``engine.feeds.base``: ``Feed`` protocol, ``FeedBatch``, ``FeedError``, ``validate``
- ``engine.feeds.exchange``: ``ExchangeFeed`` (Binance-style REST klines, retries)
- ``engine.feeds.replay``: ``ReplayFeed`` (CSV / CandleArrays by an injected clock)
- ``engine.feeds.synthetic``: ``SyntheticFeed``, ``synthetic_arrays`` (seeded random walk)
- ``engine.feeds.csvio``: ``read_csv``, ``write_csv``, ``append_csv``, ``symbol_from_filename``
- ``engine.feeds.download``: the ``trading-agent download`` sub-command

The port's names load from ``engine.feeds.base`` on first use (PEP 562): reading a candle file
(``engine.feeds.csvio``, a backtest) imports neither it nor structlog (~30 ms), nor aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.feeds.base import Feed, FeedBatch, FeedError, validate

__all__ = ["Feed", "FeedBatch", "FeedError", "validate"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'engine.feeds' has no attribute {name!r}")
    value = getattr(importlib.import_module("engine.feeds.base"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
