"""A local fake of the Binance public market-data API, for tests and the offline demo.

Serves ``/api/v3/klines``, ``/api/v3/ticker/price``, ``/api/v3/time`` and ``/api/v3/ping`` over HTTP
on 127.0.0.1 from in-memory candle arrays, by an injected clock. Klines follow Binance: ``startTime``/
``endTime`` filter on the open time, ``limit`` defaults to 500 (max 1000), and only candles with
``ts <= now`` are served, so the still-open current candle is the last row (with partial values, as on
Binance). The ticker's price is that still-open candle's close so far (``{"symbol", "price"}``, or a
list of them for every symbol without ``symbol=``).

Faults are injected through :meth:`FakeExchange.inject` and consumed one per klines request, in the
order they were injected::

    fake.inject(Fault.SERVER_ERROR, times=2)
    fake.inject(Fault.BAD_CANDLE, row=1)

CLI (a fake exchange a worker process can trade against; candle time runs ``speed`` times faster
than wall time, starting ``--history`` candles after the first candle)::

    python -m sim.exchange --csv data/BTC_USDT-5m.csv --timeframe 5m --port 8081 --speed 60
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from engine.core.clock import Clock, ScaledClock
from engine.core.model import CandleArrays
from engine.core.types import timeframe_ms
from engine.feeds.csvio import CsvFormatError, plain, read_csv, symbol_from_filename
from engine.logs import configure_logging

log = structlog.get_logger(__name__)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


class Fault(enum.Enum):
    SERVER_ERROR = "server_error"  # HTTP 500 (or ``status``)
    RATE_LIMIT = "rate_limit"  # HTTP 429 (or 418) with Retry-After
    TIMEOUT = "timeout"  # hang ``hang_s`` seconds before answering
    MALFORMED_JSON = "malformed_json"  # HTTP 200 with a truncated JSON body
    DUPLICATE = "duplicate"  # row ``row`` appears twice
    OUT_OF_ORDER = "out_of_order"  # rows ``row`` and ``row + 1`` are swapped
    GAP = "gap"  # ``span`` rows from ``row`` on are left out
    BAD_CANDLE = "bad_candle"  # row ``row`` gets high < close (or NaN close with ``nan=True``)


@dataclass
class _Injected:
    fault: Fault
    remaining: int
    row: int
    span: int
    status: int | None
    nan: bool


def _binance_error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


class FakeExchange:
    """In-memory market data plus a fault queue; :meth:`app` builds the aiohttp application."""

    def __init__(self, markets: dict[str, CandleArrays], clock: Clock, timeframe: str, *,
                 retry_after_s: int = 1, hang_s: float = 30.0) -> None:
        self.markets = {symbol.upper(): arrays for symbol, arrays in markets.items()}
        self.clock = clock
        self.timeframe = timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.requests = 0  # every HTTP request, any endpoint
        self.request_log: list[tuple[str, dict[str, str]]] = []  # (path, query) of each request
        self._faults: list[_Injected] = []
        self._closing = asyncio.Event()

    # ------------------------------------------------------------------------------ fault API

    def inject(self, fault: Fault, times: int = 1, *, row: int = 0, span: int = 1, status: int | None = None,
               nan: bool = False) -> None:
        """Make the next ``times`` klines requests (after earlier injected faults) suffer ``fault``.

        ``row`` (python indexing, -1 = the open candle) and ``span`` place data faults;
        ``status`` overrides the HTTP status of SERVER_ERROR (5xx) and RATE_LIMIT (429 or 418).
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(_Injected(fault, times, row, span, status, nan))

    @property
    def pending_faults(self) -> int:
        return sum(f.remaining for f in self._faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    def _next_fault(self) -> _Injected | None:
        if not self._faults:
            return None
        head = self._faults[0]
        head.remaining -= 1
        if head.remaining == 0:
            self._faults.pop(0)
        return head

    # ------------------------------------------------------------------------------ data

    def klines(self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list[Any]]:
        """Binance kline rows for the request, by the clock (the current candle partial, as it is now)."""
        arrays = self.markets[symbol]
        now = self.clock.now_ms()
        lo = 0 if start_ms is None else int(np.searchsorted(arrays.ts, start_ms, side="left"))
        hi_ts = now if end_ms is None else min(now, end_ms)
        hi = int(np.searchsorted(arrays.ts, hi_ts, side="right"))
        if hi <= lo:
            return []
        if start_ms is None:
            lo = max(lo, hi - limit)
        else:
            hi = min(hi, lo + limit)
        return [self._row(arrays, i, now) for i in range(lo, hi)]

    def price(self, symbol: str) -> float | None:
        """The ticker price now: the close so far of the newest candle that has opened (None before any)."""
        arrays = self.markets[symbol]
        now = self.clock.now_ms()
        i = int(np.searchsorted(arrays.ts, now, side="right")) - 1
        return None if i < 0 else float(self._row(arrays, i, now)[4])

    def _row(self, arrays: CandleArrays, i: int, now: int) -> list[Any]:
        ts = int(arrays.ts[i])
        o, h, lo, c, v = (float(arrays.open[i]), float(arrays.high[i]), float(arrays.low[i]),
                          float(arrays.close[i]), float(arrays.volume[i]))
        if ts + self.step_ms > now:  # still open: values so far (interpolated), like Binance's live row
            frac = max(0.0, (now - ts) / self.step_ms)
            c = o + (c - o) * frac
            h, lo, v = max(o, c), min(o, c), v * frac
        return [ts, plain(o), plain(h), plain(lo), plain(c), plain(v), ts + self.step_ms - 1,
                plain(v * c), 1, "0", "0", "0"]

    @staticmethod
    def _apply_data_fault(rows: list[list[Any]], fault: _Injected) -> None:
        if not rows:
            return
        i = fault.row if fault.row >= 0 else len(rows) + fault.row
        if not 0 <= i < len(rows):
            return
        if fault.fault is Fault.DUPLICATE:
            rows.insert(i + 1, list(rows[i]))
        elif fault.fault is Fault.OUT_OF_ORDER and i + 1 < len(rows):
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
        elif fault.fault is Fault.GAP:
            del rows[i:i + fault.span]
        elif fault.fault is Fault.BAD_CANDLE:
            bad = list(rows[i])
            if fault.nan:
                bad[4] = "NaN"
            else:
                bad[2] = plain(min(float(bad[1]), float(bad[4])) * 0.9)  # high below open and close
            rows[i] = bad

    # ------------------------------------------------------------------------------ HTTP

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/api/v3/klines", self._klines_handler)
        app.router.add_get("/api/v3/ticker/price", self._ticker_handler)
        app.router.add_get("/api/v3/time", self._time_handler)
        app.router.add_get("/api/v3/ping", self._ping_handler)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests += 1
        self.request_log.append((request.path, dict(request.query)))
        return await handler(request)

    async def _time_handler(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.clock.now_ms()})

    async def _ping_handler(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _ticker_handler(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "").upper()
        if symbol and symbol not in self.markets:
            return _binance_error(400, -1121, "Invalid symbol.")
        answers = []
        for name in [symbol] if symbol else sorted(self.markets):
            price = self.price(name)
            if price is not None:
                answers.append({"symbol": name, "price": plain(price)})
        if symbol:
            return web.json_response(answers[0]) if answers else _binance_error(400, -1121, "Invalid symbol.")
        return web.json_response(answers)

    async def _klines_handler(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = q.get("symbol", "").upper()
        if not symbol:
            return _binance_error(400, -1102, "Mandatory parameter 'symbol' was not sent.")
        if symbol not in self.markets:
            return _binance_error(400, -1121, "Invalid symbol.")
        if q.get("interval") != self.timeframe:
            return _binance_error(400, -1120, "Invalid interval.")
        try:
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
            limit = int(q.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _binance_error(400, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= MAX_LIMIT:
            return _binance_error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            return _binance_error(400, -1023, "Start time is greater than end time.")

        fault = self._next_fault()
        if fault is not None and fault.fault is Fault.SERVER_ERROR:
            return web.json_response({"code": -1001, "msg": "Internal error."}, status=fault.status or 500)
        if fault is not None and fault.fault is Fault.RATE_LIMIT:
            response = _binance_error(fault.status or 429, -1003, "Too many requests.")
            response.headers["Retry-After"] = str(self.retry_after_s)
            return response
        if fault is not None and fault.fault is Fault.TIMEOUT:
            try:
                await asyncio.wait_for(self._closing.wait(), self.hang_s)
            except TimeoutError:
                pass
        rows = self.klines(symbol, start, end, limit)
        if fault is not None and fault.fault is Fault.MALFORMED_JSON:
            text = json.dumps(rows)
            return web.Response(text=text[: max(1, len(text) // 2)] or "[", content_type="application/json")
        if fault is not None:
            self._apply_data_fault(rows, fault)
        return web.json_response(rows)

    def open(self) -> None:
        """Arm TIMEOUT hangs again (a server calls this when it starts)."""
        self._closing = asyncio.Event()

    def close(self) -> None:
        """Release requests hanging in a TIMEOUT fault."""
        self._closing.set()


class FakeExchangeServer:
    """``async with FakeExchangeServer(fake) as base_url:`` serves ``fake`` on 127.0.0.1 (random port)."""

    def __init__(self, fake: FakeExchange, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        self.fake.open()
        self._runner = web.AppRunner(self.fake.app(), access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        self.base_url = f"http://{self.host}:{self.port}"
        log.info("fake_exchange.started", base_url=self.base_url, markets=sorted(self.fake.markets),
                 timeframe=self.fake.timeframe)
        return self.base_url

    async def stop(self) -> None:
        self.fake.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


# ---------------------------------------------------------------------------------- CLI


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
                                     description="Serve candle CSV files as a fake Binance klines API.")
    parser.add_argument("--csv", action="append", required=True, metavar="FILE",
                        help="candle CSV named BASE_QUOTE-TF.csv (repeatable)")
    parser.add_argument("--timeframe", default=None, help="candle timeframe (default: from the file names)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--speed", type=float, default=60.0, help="candle time per wall time (default 60)")
    parser.add_argument("--history", type=int, default=500,
                        help="candles already closed when the server starts (default 500)")
    args = parser.parse_args(argv)
    configure_logging(level="INFO", stream=sys.stderr)  # stdout: only the "serving ... at URL" line
    try:
        markets, timeframe = load_markets(args.csv, args.timeframe)
    except (OSError, ValueError, CsvFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    first = min((int(a.ts[0]) for a in markets.values() if len(a)), default=0)
    start = first + args.history * timeframe_ms(timeframe)
    fake = FakeExchange(markets, ScaledClock(start, args.speed), timeframe)
    try:
        asyncio.run(serve(fake, args.host, args.port))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
