"""Where a study lives: Optuna's RDB storage on a SQLite file (the default, beside the results) or on PostgreSQL.

- ``None``: ``sqlite:///<out>/study.db``; the file is opened in WAL mode with ``synchronous=NORMAL`` (a commit
  waits for no disk flush: a crash may lose the last trials, never corrupt the file) and a 60 s busy timeout, so
  the processes of ``--jobs`` share it;
- ``sqlite:///PATH``;
- ``postgresql://...`` (or ``postgres://``): run through psycopg 3 (``postgresql+psycopg://``), the synchronous
  driver Optuna's storage needs; several processes, on one machine or many, then work on one study;
- ``PATH.log``: Optuna's journal file (``JournalFileBackend``: an append-only log, locked for the processes of one
  machine, resumable like the others). Not an RDB: each trial costs a few appended lines instead of ~30 SQL
  statements, which is most of a fast strategy's trial time (bench/optimize.py).

``open_storage`` connects at once: an unreachable server or an unwritable file is one ``StorageError`` line,
with the URL's password hidden.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from engine.errors import ConfigError

CONNECT_TIMEOUT = 10  # seconds to reach a PostgreSQL server
JOURNAL = "journal:"  # how a normalised journal file's path is told from a database URL
JOURNAL_SUFFIX = ".log"


class StorageError(ConfigError):
    """The study's storage cannot be used: a bad URL, an unreachable server, an unwritable file."""


def normalise(url: str) -> str:
    """The SQLAlchemy URL Optuna is handed: ``postgresql://`` runs on psycopg 3; StorageError for another kind."""
    text = url.strip()
    if text.endswith(JOURNAL_SUFFIX) and "://" not in text:
        return JOURNAL + str(Path(text).expanduser().resolve())
    try:
        parsed = make_url(text)
    except ArgumentError:
        raise StorageError(f"--storage {text!r}: not a database URL (sqlite:///FILE, "
                           "postgresql://USER:PASSWORD@HOST/DATABASE or a journal FILE.log)") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise StorageError(f"--storage {shown(text)}: the optimiser's storage runs on psycopg 3; write "
                               "postgresql://... without a driver")
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite" and driver == "" and parsed.database:
        return text
    raise StorageError(f"--storage {shown(text)}: not a storage the optimiser uses (sqlite:///FILE, "
                       "postgresql://USER:PASSWORD@HOST/DATABASE or a journal FILE.log)")


def shown(url: str) -> str:
    """``url`` for people and files: the password replaced by ``***``."""
    if url.startswith(JOURNAL):
        return url[len(JOURNAL):]
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a URL>"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _engine_kwargs(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        database = str(parsed.database)

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(database, timeout=60, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            return connection

        return {"creator": connect}
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}, "pool_pre_ping": True}


def _journal(path: Path) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise StorageError(f"storage {path} cannot be used: {exc.strerror or exc}") from None


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Close an RDB storage's connections now (a journal file holds none open)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna's storage at ``url`` (normalised): an RDB one, its tables made if missing, or a journal file;
    StorageError (one line) when it cannot be reached or written. Two processes making the tables at once: the
    second one retries."""
    if url.startswith(JOURNAL):
        return _journal(Path(url[len(JOURNAL):]))
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        folder = Path(str(parsed.database)).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"storage {shown(url)}: cannot make folder {folder} ({exc.strerror})") from None
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            if attempt == 2 or ("already exists" not in str(exc) and "duplicate key" not in str(exc)):
                first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
                reason = first[0] if first else type(exc).__name__
                raise StorageError(f"storage {shown(url)} cannot be used: {reason}") from None
            time.sleep(0.5)
    raise AssertionError("unreachable")
