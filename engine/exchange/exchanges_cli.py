"""``trading-agent exchanges``: the exchange ids ccxt knows, and whether each has candle (OHLCV) history.

Any id listed with OHLCV works for ``EXCHANGE`` and ``trading-agent download --exchange``. Finding out loads
every exchange's class once (about a second); ``--ids`` lists the ids alone, without loading any.
"""

from __future__ import annotations

import argparse
import sys

from engine.exchange.loader import exchange_class, exchange_ids


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ids", action="store_true", help="only the ids, one per line (fast)")
    parser.add_argument("--ohlcv", action="store_true", help="only the exchanges with candle history")


def describe(exchange_id: str) -> tuple[str, bool]:
    """The exchange's display name and whether ccxt can fetch its candles."""
    cls = exchange_class(exchange_id)
    exchange = cls()
    return str(exchange.name or exchange_id), bool(exchange.has.get("fetchOHLCV"))


def run(args: argparse.Namespace) -> int:
    ids = exchange_ids()
    if args.ids:
        print("\n".join(ids))
        return 0
    rows = []
    for exchange_id in ids:
        try:
            name, ohlcv = describe(exchange_id)
        except Exception as exc:  # one exchange's class failing to build must not hide the others
            print(f"warning: {exchange_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if ohlcv or not args.ohlcv:
            rows.append((exchange_id, name, "yes" if ohlcv else "no"))
    width = max(len(r[0]) for r in rows) if rows else 2
    name_width = max(len(r[1]) for r in rows) if rows else 4
    print(f"{'id':<{width}}  {'name':<{name_width}}  ohlcv")
    for exchange_id, name, has in rows:
        print(f"{exchange_id:<{width}}  {name:<{name_width}}  {has}")
    with_ohlcv = sum(r[2] == "yes" for r in rows)
    print(f"{len(rows)} exchanges, {with_ohlcv} with candle history "
          "(EXCHANGE=id; trading-agent download --exchange id)", file=sys.stderr)
    return 0
