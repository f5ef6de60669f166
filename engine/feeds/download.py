"""``trading-agent download``: fetch closed candles from any exchange ccxt knows (with OHLCV) into a CSV file.

Resumable: when ``OUT/SYMBOL-TF.csv`` exists, the download continues after its last timestamp and
appends. Every page is validated (unsound, duplicate and out-of-order candles are dropped and
counted), and only closed candles are written. Exit codes: 0 done, 1 the exchange failed, 2 bad
input (an argument, or an existing file that is not one this command wrote).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog
from tqdm import tqdm

from engine.cli import positive_float
from engine.core.clock import Clock
from engine.core.types import DAY_MS, timeframe_ms
from engine.errors import ConfigError, ExchangeError
from engine.exchange.client import ExchangeSpec, Sleep
from engine.exchange.venue import Venue
from engine.feeds.base import FeedError
from engine.feeds.candle_file import iso_utc, load_candles
from engine.feeds.csvio import CsvFormatError, append_csv, check_arrays
from engine.feeds.exchange import ExchangeFeed, exchange_clock
from engine.logs import configure_logging

log = structlog.get_logger(__name__)

EXCHANGE_ENV = "EXCHANGE"
BASE_URL_ENV = "EXCHANGE_BASE_URL"
SANDBOX_ENV = "EXCHANGE_SANDBOX"


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    rows_written: int
    first_ts: int | None  # first and last candle written by this run (None when nothing was new)
    last_ts: int | None
    resumed_after: int | None  # last timestamp already in the file, when resuming
    rejected: int  # candles the exchange sent that failed validation and were dropped
    asked: int = 0  # closed candles in the range asked for (the last N days, or since the file's last row)
    start_ts: int | None = None  # open time of the first candle asked for


def output_path(out_dir: str | os.PathLike[str], symbol: str, timeframe: str) -> Path:
    """``OUT/BTCUSDT-5m.csv`` for BTCUSDT, ``OUT/BTC_USDT-5m.csv`` for BTC/USDT (both read back as BTCUSDT)."""
    name = symbol.upper().replace("/", "_").replace("-", "_")
    return Path(out_dir) / f"{name}-{timeframe}.csv"


def _existing_last_ts(path: Path, symbol: str, timeframe: str) -> int | None:
    """Last timestamp of an existing output file, after checking the whole file (CsvFormatError if bad)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    # catches e.g. a half-written last row from an interrupted run, and says what else is wrong
    existing = load_candles(path, symbol=symbol, timeframe=timeframe, min_candles=0)
    if not existing.exact_header or existing.unit != "milliseconds":
        kind = "has ISO 8601 dates" if existing.unit == "ISO 8601" else (
            f"has timestamps in {existing.unit}" if existing.unit != "milliseconds" else "has another header")
        raise CsvFormatError(path, 0, f"{kind}; download appends only to files in its own format "
                                      f"(timestamp,open,high,low,close,volume; ms): move it away or pick another --out")
    check_arrays(existing.arrays, path=path, timeframe=timeframe)  # on the timeframe's grid, as fetched
    return int(existing.arrays.ts[-1]) if len(existing.arrays) else None


async def download(symbol: str, timeframe: str, days: float, out_dir: str | os.PathLike[str], venue: Venue | str,
                   clock: Clock, progress: bool = True, *, sleep: Sleep = asyncio.sleep) -> DownloadResult:
    """Fetch the closed candles of the last ``days`` (or since the file's last row) from ``venue`` (given a URL:
    a Binance-protocol venue there, retrying with ``sleep``, which tests record) and append them."""
    if isinstance(venue, str):
        owned = Venue(ExchangeSpec("binance", base_url=venue), sleep=sleep)
        try:
            return await download(symbol, timeframe, days, out_dir, owned, clock, progress)
        finally:
            await owned.close()
    if days <= 0:
        raise ValueError("days must be > 0")
    step = timeframe_ms(timeframe)
    path = output_path(out_dir, symbol, timeframe)
    path.parent.mkdir(parents=True, exist_ok=True)
    end = (clock.now_ms() // step) * step  # open time of the current (unclosed) candle: exclusive end
    start = end - (int(days * DAY_MS) // step) * step
    resumed_after = _existing_last_ts(path, symbol, timeframe)
    if resumed_after is not None:
        start = resumed_after + step
    written, first, last, rejected = 0, None, None, 0
    feed = ExchangeFeed(venue, symbol, timeframe, clock, max_attempts=venue.attempts)
    asked = max(0, (end - start) // step)
    # disable=None: no bar unless stderr is a terminal, so a log or a pipe never gets a stray progress line
    bar = tqdm(total=asked, unit="candle", desc=f"{symbol.upper()} {timeframe}", file=sys.stderr,
               disable=None if progress else True, leave=False)
    try:
        if start < end:
            async for batch in feed.fetch_range(start, end):
                rejected += len(batch.rejected)
                if not batch.candles:
                    continue
                written += append_csv(path, batch.candles)
                first = batch.candles[0].ts if first is None else first
                last = batch.candles[-1].ts
                bar.update(len(batch.candles))
    finally:
        bar.close()
        await feed.close()
    log.info("download.done", symbol=symbol, timeframe=timeframe, rows=written, path=str(path),
             resumed_after=resumed_after, rejected=rejected)
    return DownloadResult(path, written, first, last, resumed_after, rejected, asked, start)


def summary(result: DownloadResult) -> str:
    if result.rows_written == 0 or result.first_ts is None or result.last_ts is None:
        if result.resumed_after is None and result.asked:
            return f"no candles: the exchange has none of the {result.asked:,} asked for; nothing written"
        return f"up to date: no new closed candles for {result.path}"
    text = (f"wrote {result.rows_written} rows, {iso_utc(result.first_ts)} .. {iso_utc(result.last_ts)} UTC, "
            f"to {result.path}")
    if result.resumed_after is not None:
        text += " (resumed)"
    if result.rows_written < result.asked:
        text += f"; got {result.rows_written:,} of the {result.asked:,} candles asked for"
        if result.start_ts is not None and result.first_ts > result.start_ts:
            text += f" (the exchange's history starts at {iso_utc(result.first_ts)})"
    if result.rejected:
        text += f"; dropped {result.rejected} invalid candles"
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", required=True, help="market, e.g. BTC/USDT (or BTCUSDT)")
    parser.add_argument("--timeframe", required=True, help="candle timeframe, e.g. 5m")
    parser.add_argument("--exchange", default=None,
                        help=f"a ccxt exchange id (default ${EXCHANGE_ENV} or binance; `trading-agent exchanges`)")
    parser.add_argument("--days", type=positive_float, default=30.0, help="days of history to fetch (default 30)")
    parser.add_argument("--out", required=True, help="output directory (file: OUT/SYMBOL-TF.csv)")
    parser.add_argument("--base-url", default=None,
                        help=f"move the exchange's REST hosts onto this URL, paths kept (default ${BASE_URL_ENV})")
    parser.add_argument("--sandbox", action="store_true", default=None,
                        help=f"the exchange's sandbox (testnet), where it has one (default ${SANDBOX_ENV})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


async def _download_synced(symbol: str, timeframe: str, days: float, out: str, spec: ExchangeSpec,
                           progress: bool) -> DownloadResult:
    """Download by the exchange's clock ("the last N days" as the exchange counts them)."""
    _existing_last_ts(output_path(out, symbol, timeframe), symbol, timeframe)  # a bad file: before any request
    venue = Venue(spec)
    try:
        venue.check_timeframe(timeframe)
        await venue.load_markets()
        venue.market(symbol)  # a symbol the exchange does not list: one line naming close matches
        clock = await exchange_clock(venue)
        return await download(symbol, timeframe, days, out, venue, clock, progress=progress)
    finally:
        await venue.close()


def spec_of(args: argparse.Namespace) -> ExchangeSpec:
    """The exchange of ``--exchange``/``--base-url``/``--sandbox``, else of the environment (as the worker's)."""
    sandbox = args.sandbox if args.sandbox is not None else os.environ.get(SANDBOX_ENV, "").strip().lower() in (
        "1", "true", "yes", "on")
    return ExchangeSpec(id=(args.exchange or os.environ.get(EXCHANGE_ENV) or "binance").strip().lower(),
                        base_url=args.base_url or os.environ.get(BASE_URL_ENV) or None, sandbox=sandbox)


def run(args: argparse.Namespace) -> int:
    configure_logging(level="WARNING", stream=sys.stderr)  # stdout carries only the summary line
    try:
        timeframe_ms(args.timeframe)
        result = asyncio.run(_download_synced(args.symbol.upper(), args.timeframe, args.days, args.out, spec_of(args),
                                              progress=not getattr(args, "quiet", False)))
    except (CsvFormatError, ConfigError, ValueError) as exc:
        text = str(exc)
        if args.exchange:  # the id came from the flag, not the environment: name the flag
            text = text.replace(f"EXCHANGE={args.exchange.strip().lower()!r}", f"--exchange {args.exchange!r}")
            text = text.replace("EXCHANGE_SANDBOX=1:", "--sandbox:") if args.sandbox else text
        print(f"error: {text}", file=sys.stderr)
        return 2
    except (FeedError, ExchangeError, OSError) as exc:
        print(f"download failed: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    if result.path.exists():
        with contextlib.suppress(CsvFormatError, ValueError):
            for line in load_candles(result.path, timeframe=args.timeframe, min_candles=0).warnings:
                print(f"warning: {result.path}: {line}", file=sys.stderr)
    return 0
