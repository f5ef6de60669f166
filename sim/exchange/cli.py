"""``python -m sim.exchange``: serve candle CSV files as a fake exchange a worker process can trade against."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from engine.core.clock import ScaledClock
from engine.core.model import CandleArrays
from engine.core.types import timeframe_ms
from engine.feeds.csvio import CsvFormatError, read_csv, symbol_from_filename
from engine.logs import configure_logging
from sim.exchange.server import PERSONALITIES, FakeExchange, FakeExchangeServer


class HeldClock(ScaledClock):
    """A ``ScaledClock`` that stands at its start until ``release()``: several workers then see the same first
    candles however long each takes to start."""

    def __init__(self, start_ms: int, speed: float) -> None:
        super().__init__(start_ms, speed)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._wall0 = self._wall()

    def now_ms(self) -> int:
        return self.start_ms if self.held else super().now_ms()


def load_markets(paths: Sequence[str], timeframe: str | None) -> tuple[dict[str, CandleArrays], str]:
    """Read the CSV files; every file's name must carry the same timeframe (and match ``timeframe``)."""
    markets: dict[str, CandleArrays] = {}
    chosen = timeframe
    for path in paths:
        symbol, file_tf = symbol_from_filename(path)
        if chosen is None:
            chosen = file_tf
        if file_tf != chosen:
            raise ValueError(f"{path}: timeframe {file_tf} in the file name, expected {chosen}")
        markets[symbol] = read_csv(path, chosen)
    if chosen is None:
        raise ValueError("no --csv file given")
    return markets, chosen


def _pair(text: str, sep: str, usage: str) -> tuple[str, str]:
    left, found, right = text.partition(sep)
    if not (left and found and right):
        raise ValueError(f"expected {usage}, not {text!r}")
    return left, right


async def serve(fake: FakeExchange, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeExchangeServer(fake, host, port) as base_url:
        print(f"fake exchange serving {', '.join(sorted(fake.markets))} {fake.timeframe} at {base_url}",
              flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.exchange",
                                     description="Serve candle CSV files as a fake exchange (Binance or OKX API).")
    parser.add_argument("--csv", action="append", required=True, metavar="FILE",
                        help="candle CSV named BASE_QUOTE-TF.csv (repeatable)")
    parser.add_argument("--timeframe", default=None, help="candle timeframe (default: from the file names)")
    parser.add_argument("--personality", choices=sorted(PERSONALITIES), default="binance",
                        help="which exchange's API to speak (default binance)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--speed", type=float, default=60.0, help="candle time per wall time (default 60)")
    parser.add_argument("--history", type=int, default=500,
                        help="candles already closed when the server starts (default 500)")
    parser.add_argument("--account", action="append", default=[], metavar="KEY:SECRET",
                        help="an API key and its secret that may trade (Binance; repeatable)")
    parser.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                        help="a free balance of every --account (repeatable), e.g. USDT=10000")
    parser.add_argument("--commission", type=float, default=0.001, help="commission per fill (default 0.001)")
    parser.add_argument("--hold", action="store_true",
                        help="hold candle time at its start until POST /control/clock/release (runs side by side)")
    parser.add_argument("--ticker-at", choices=("now", "open"), default="now",
                        help="the ticker and market fills at the open candle's close so far (now) or its open")
    parser.add_argument("--slippage-bps", type=float, default=0.0, help="market fill slippage (default 0)")
    args = parser.parse_args(argv)
    configure_logging(level="INFO", stream=sys.stderr)  # stdout: only the "serving ... at URL" line
    try:
        markets, timeframe = load_markets(args.csv, args.timeframe)
        first = min((int(a.ts[0]) for a in markets.values() if len(a)), default=0)
        start = first + args.history * timeframe_ms(timeframe)
        clock = HeldClock(start, args.speed) if args.hold else ScaledClock(start, args.speed)
        fake = FakeExchange(markets, clock, timeframe, personality=args.personality,
                            commission=args.commission, slippage_bps=args.slippage_bps)
        fake.ticker_at = args.ticker_at
        balances = dict(_pair(b, "=", "--balance ASSET=AMOUNT") for b in args.balance)
        for account in args.account:
            fake.add_account(*_pair(account, ":", "--account KEY:SECRET"), balances)
    except (OSError, ValueError, ArithmeticError, CsvFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(fake, args.host, args.port))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
