"""The agent's exceptions, grouped by what the caller should do with them.

Every message is one line for a person (where and why, never a secret), so an edge can print ``str(exc)``
as it is. A refusal of an order by our own rules is a value (``engine.core.types.Refusal``), not one of
these: exceptions are for what stops a command or a component.

Hierarchy::

    TradingAgentError                 anything below; a process boundary prints it in one line
     ├── ConfigError                  a setting is missing or invalid: fix the configuration (exit code 2)
     ├── DataError                    input data cannot be used as asked (exit code 2 for a command)
     │    ├── CsvFormatError          a candle file is malformed (``<file>:<line>: <problem>``; also ValueError)
     │    ├── FeedError               a feed could not deliver candles or a price; try again later
     │    │    └── FeedUnavailable    ... because the exchange did not answer (also ExchangeUnavailable)
     │    └── ModelLoadError          a saved model cannot be used; ``check`` names the failed check
     ├── ExchangeError                the exchange failed or refused; ``retryable`` says whether to try again
     │    └── ExchangeUnavailable     network error, timeout, 5xx, rate limit: retryable
     ├── OrderRejected                an order was refused (by the exchange or its rules): tell the person
     ├── StateMismatch                our records and the world disagree: stop and let a person look
     ├── BacktestFailed               a backtest could not run to the end (a fold of a validation)
     └── StoreError                   the database failed
          ├── DatabaseUnavailable     it could not be opened (one line: where, no password, and why)
          ├── LockLost                the single-engine lock can no longer be vouched for: stop trading
          └── SnapshotUnreadable      the saved engine state is in a format this code cannot restore

Every class is defined here; the modules that raise them import them from here and keep their old names
(``engine.feeds.base.FeedError``, ``engine.feeds.csvio.CsvFormatError``, ``engine.store.db.DatabaseUnavailable``,
``config.settings.ConfigError``, ``engine.models.validation.DataError``,
``engine.models.catboost_model.ModelLoadError``, ``engine.lock.LockLost``). It imports only the standard library.
"""

from __future__ import annotations

import os
from typing import ClassVar

__all__ = [
    "BacktestFailed",
    "ConfigError",
    "CsvFormatError",
    "DataError",
    "DatabaseUnavailable",
    "ExchangeError",
    "ExchangeUnavailable",
    "FeedError",
    "FeedUnavailable",
    "LockLost",
    "ModelLoadError",
    "OrderRejected",
    "SnapshotUnreadable",
    "StateMismatch",
    "StoreError",
    "TradingAgentError",
]



class TradingAgentError(Exception):
    """Base of every error the agent raises on purpose; the message is one line for a person."""


class ConfigError(TradingAgentError):
    """A configuration value is missing or invalid; the message is one line for a person."""


class DataError(TradingAgentError):
    """Input data that cannot be used as asked (too short, horizon too long, unreadable): exit code 2."""


class CsvFormatError(DataError, ValueError):
    """A candle CSV file is malformed; the message is ``<file>:<line>: <problem>``. Also a ValueError, as before
    it had a place in this tree."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        where = f"{os.fspath(path)}:{line}" if line > 0 else os.fspath(path)  # line 0: the file as a whole
        super().__init__(f"{where}: {problem}")
        self.path = os.fspath(path)
        self.line = line
        self.problem = problem


class FeedError(DataError):
    """The feed could not deliver after its retries; the message says why (and holds no secrets)."""


class ModelLoadError(DataError):
    """A model on disk cannot be used. ``check`` names the failed check:
    missing | metadata | truncated | corrupt | features | version | unreadable."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


class ExchangeError(TradingAgentError):
    """The exchange failed or refused a request. ``retryable``: the same request may succeed later."""

    retryable: ClassVar[bool] = False


class ExchangeUnavailable(ExchangeError):
    """The exchange did not answer usefully (network error, timeout, 5xx, rate limit): try again later."""

    retryable: ClassVar[bool] = True


class FeedUnavailable(FeedError, ExchangeUnavailable):
    """The feed's exchange did not answer (network error, timeout, 5xx, rate limit): retryable."""


class OrderRejected(TradingAgentError):
    """An order was refused by the exchange or its rules; retrying the same order will not help."""


class StateMismatch(TradingAgentError):
    """The agent's records and the world (the exchange, the database) disagree in a way it cannot explain."""


class BacktestFailed(TradingAgentError):
    """A backtest could not be run to the end; the message says which one and why (exit code 1)."""


class StoreError(TradingAgentError):
    """The database failed; the message is one line for a person."""


class DatabaseUnavailable(StoreError):
    """The database could not be opened; the message is one line for a person: where (no password) and why."""


class LockLost(StoreError, RuntimeError):
    """The engine lock can no longer be vouched for; stop trading. Also a RuntimeError, as before it had a place
    in this tree."""


class SnapshotUnreadable(StoreError):
    """The saved engine state is in a format this code cannot restore (e.g. written by a newer version)."""
