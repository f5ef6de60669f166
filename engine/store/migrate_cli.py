"""``trading-agent migrate`` (or ``python -m engine.store.migrate_cli``): apply the database migrations.

The platform runs it as the ``release:`` phase (see the Procfile) before the new worker starts, so a
deploy never starts trading on an old schema. It reads DATABASE_URL (SQLITE_PATH without one), is a
no-op at head, prints one line, and exits 0; 2 on a configuration error; 1 if the database refuses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from config.settings import ConfigError, load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL, else sqlite at SQLITE_PATH")


def run(args: argparse.Namespace) -> int:
    from engine.logs import configure_logging
    from engine.store.db import migrate, normalize_database_url, redact_url

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    raw = args.database_url or (settings.database_url.get_secret_value() if settings.database_url else None)
    configure_logging(settings.log_level, settings.log_format, secrets=[raw])
    url = normalize_database_url(raw, settings.sqlite_path)
    try:
        asyncio.run(migrate(url))
    except Exception as exc:  # the process boundary: any driver's or Alembic's failure is one redacted line, exit 1
        from engine.logs import redact

        print(f"migration failed: {redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1
    print(f"database at head: {redact_url(url)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.store.migrate_cli", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
