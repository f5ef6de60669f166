"""Shared fixtures. Each block belongs to the part of the code base named in its header."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from engine.store import Store

# ======================================================================================
# Database fixtures (engine/store).
#
# ``db_url`` is parametrized over SQLite and PostgreSQL and yields a fresh, empty database URL
# per test; ``store`` yields an opened, migrated ``Store`` on it. PostgreSQL comes from, in order:
#   1. ``TEST_DATABASE_URL`` (any postgres URL whose user may CREATE DATABASE);
#   2. a throwaway cluster started once per session with initdb/pg_ctl found on PATH or under
#      /usr/lib/postgresql/*/bin, in a temp dir, on a free port, trust auth, fsync off. initdb
#      refuses to run as root, so as root the server runs as the ``postgres`` unix user (via
#      ``runuser``; the Debian postgresql packages create it). We do this ourselves rather than
#      with pytest-postgresql's ``postgresql_proc``, which runs pg_ctl as the current user and so
#      fails as root, which is how CI runs here;
#   3. otherwise the postgres tests are skipped, with the reason. Set ``REQUIRE_POSTGRES=1`` to
#      make that an error instead.
# Each postgres test gets its own ``CREATE DATABASE t_<uuid>``, dropped afterwards (cheap; the
# cluster itself is created once).
# ======================================================================================

PG_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """Where to create per-test databases."""

    admin_url: URL  # a database we can connect to for CREATE/DROP DATABASE

    def libpq(self, database: str | None = None) -> str:
        url = self.admin_url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def async_url(self, database: str) -> str:
        url = self.admin_url.set(drivername="postgresql+asyncpg", database=database)
        return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class PostgresAvailability:
    server: PostgresServer | None
    reason: str


def _find_pg_bin() -> Path | None:
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", PG_USER, "--", *argv]


def _run(argv: list[str]) -> None:
    subprocess.run(_as_server_user(argv), check=True, capture_output=True, text=True, timeout=120)


class ClusterStartError(RuntimeError):
    pass


@contextlib.contextmanager
def _throwaway_cluster(bin_dir: Path) -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="trading-agent-pg-"))
    data, port = root / "data", _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam(PG_USER)
                os.chown(root, user.pw_uid, user.pw_gid)
            initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8"]
            _run([*initdb, "--no-sync", "--no-instructions"])
            _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"])
        except (subprocess.SubprocessError, OSError, KeyError) as exc:
            detail = getattr(exc, "stderr", None) or repr(exc)
            raise ClusterStartError(str(detail).strip()) from exc
        try:
            admin = URL.create("postgresql", username=PG_USER, host="127.0.0.1", port=port, database="postgres")
            yield PostgresServer(admin)
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresAvailability]:
    """The session's PostgreSQL, or why there is none."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        url = make_url(configured.replace("postgres://", "postgresql://", 1))
        yield PostgresAvailability(PostgresServer(url), "TEST_DATABASE_URL")
        return
    bin_dir = _find_pg_bin()
    if bin_dir is None:
        yield PostgresAvailability(None, "no TEST_DATABASE_URL and no PostgreSQL server binaries (pg_ctl)")
        return
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists(PG_USER)):
        yield PostgresAvailability(None, f"running as root without runuser or a {PG_USER!r} user for initdb")
        return
    cluster = _throwaway_cluster(bin_dir)
    try:
        server = cluster.__enter__()
    except ClusterStartError as exc:
        yield PostgresAvailability(None, f"could not start a throwaway PostgreSQL cluster: {exc}")
        return
    with contextlib.ExitStack() as stack:
        stack.push(cluster)
        yield PostgresAvailability(server, f"throwaway cluster from {bin_dir}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def _fresh_postgres_database(server: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(server.libpq(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.async_url(name)
    finally:
        with psycopg.connect(server.libpq(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL (async driver) per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    availability: PostgresAvailability = request.getfixturevalue("pg_server")
    if availability.server is None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required (REQUIRE_POSTGRES=1): {availability.reason}")
        pytest.skip(f"PostgreSQL unavailable: {availability.reason}")
    with _fresh_postgres_database(availability.server) as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """An opened, migrated Store on a fresh database; closed after the test."""
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()


# ======================================================================================
# End of database fixtures (engine/store).
# ======================================================================================
