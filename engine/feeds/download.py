"""``trading-agent download``: fetch closed candles from a Binance-style exchange into a CSV file.

Resumable: when ``OUT/SYMBOL-TF.csv`` exists, the download continues after its last timestamp and
appends. Every page is validated (unsound, duplicate and out-of-order candles are dropped and
counted), and only closed candles are written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from tqdm import tqdm

from engine.core.clock import Clock
from engine.core.types import DAY_MS, timeframe_ms
from engine.feeds.base import FeedError
from engine.feeds.csvio import CsvFormatError, append_csv, read_csv
from engine.feeds.exchange import ExchangeFeed, Sleep, exchange_clock
from engine.logs import configure_logging

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.binance.com"
BASE_URL_ENV = "EXCHANGE_BASE_URL"


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    rows_written: int
    first_ts: int | None  # first and last candle written by this run (None when nothing was new)
    last_ts: int | None
    resumed_after: int | None  # last timestamp already in the file, when resuming
    rejected: int  # candles the exchange sent that failed validation and were dropped


def output_path(out_dir: str | os.PathLike[str], symbol: str, timeframe: str) -> Path:
    return Path(out_dir) / f"{symbol.upper()}-{timeframe}.csv"


def iso_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _existing_last_ts(path: Path, timeframe: str) -> int | None:
    """Last timestamp of an existing output file, after checking the whole file (CsvFormatError if bad)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    existing = read_csv(path, timeframe)  # catches e.g. a half-written last row from an interrupted run
    return int(existing.ts[-1]) if len(existing) else None


async def download(symbol: str, timeframe: str, days: float, out_dir: str | os.PathLike[str], base_url: str,
                   clock: Clock, progress: bool = True, *, sleep: Sleep = asyncio.sleep) -> DownloadResult:
    """Fetch the closed candles of the last ``days`` (or since the file's last row) and append them.

    ``sleep`` is the retry-backoff sleep handed to the ExchangeFeed (tests pass a recorder).
    """
    if days <= 0:
        raise ValueError("days must be > 0")
    step = timeframe_ms(timeframe)
    path = output_path(out_dir, symbol, timeframe)
    path.parent.mkdir(parents=True, exist_ok=True)
    end = (clock.now_ms() // step) * step  # open time of the current (unclosed) candle: exclusive end
    start = end - (int(days * DAY_MS) // step) * step
    resumed_after = _existing_last_ts(path, timeframe)
    if resumed_after is not None:
        start = resumed_after + step
    written, first, last, rejected = 0, None, None, 0
    feed = ExchangeFeed(base_url, symbol, timeframe, clock, sleep=sleep)
    bar = tqdm(total=max(0, (end - start) // step), unit="candle", desc=f"{symbol.upper()} {timeframe}",
               file=sys.stderr, disable=not progress, leave=False)
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
    return DownloadResult(path, written, first, last, resumed_after, rejected)


def summary(result: DownloadResult) -> str:
    if result.rows_written == 0 or result.first_ts is None or result.last_ts is None:
        return f"up to date: no new closed candles for {result.path}"
    text = (f"wrote {result.rows_written} rows, {iso_utc(result.first_ts)} .. {iso_utc(result.last_ts)} UTC, "
            f"to {result.path}")
    if result.resumed_after is not None:
        text += " (resumed)"
    if result.rejected:
        text += f"; dropped {result.rejected} invalid candles"
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", required=True, help="exchange symbol, e.g. BTCUSDT")
    parser.add_argument("--timeframe", required=True, help="candle timeframe, e.g. 5m")
    parser.add_argument("--days", type=float, default=30.0, help="days of history to fetch (default 30)")
    parser.add_argument("--out", required=True, help="output directory (file: OUT/SYMBOL-TF.csv)")
    parser.add_argument("--base-url", default=None,
                        help=f"exchange REST base URL (default ${BASE_URL_ENV} or {DEFAULT_BASE_URL})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


async def _download_synced(symbol: str, timeframe: str, days: float, out: str, base_url: str,
                           progress: bool) -> DownloadResult:
    """Download by the exchange's clock ("the last N days" as the exchange counts them)."""
    clock = await exchange_clock(base_url)
    return await download(symbol, timeframe, days, out, base_url, clock, progress=progress)


def run(args: argparse.Namespace) -> int:
    configure_logging(level="WARNING", stream=sys.stderr)  # stdout carries only the summary line
    base_url = args.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    try:
        timeframe_ms(args.timeframe)
        result = asyncio.run(_download_synced(args.symbol.upper(), args.timeframe, args.days, args.out, base_url,
                                              progress=not getattr(args, "quiet", False)))
    except (FeedError, CsvFormatError, ValueError, OSError) as exc:
        print(f"download failed: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0
