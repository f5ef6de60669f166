"""Market data: the Feed port and its implementations.

- ``engine.feeds.base``: ``Feed`` protocol, ``FeedBatch``, ``FeedError``, ``validate``
- ``engine.feeds.exchange``: ``ExchangeFeed`` (Binance-style REST klines, retries)
- ``engine.feeds.replay``: ``ReplayFeed`` (CSV / CandleArrays by an injected clock)
- ``engine.feeds.synthetic``: ``SyntheticFeed``, ``synthetic_arrays`` (seeded random walk)
- ``engine.feeds.csvio``: ``read_csv``, ``write_csv``, ``append_csv``, ``symbol_from_filename``
- ``engine.feeds.download``: the ``trading-agent download`` sub-command

Only the light port is imported here, so ``import engine.feeds`` does not pull in aiohttp.
"""

from engine.feeds.base import Feed, FeedBatch, FeedError, validate

__all__ = ["Feed", "FeedBatch", "FeedError", "validate"]
