"""The fake exchange speaks Binance and OKX well enough for REAL ccxt: markets with their rules, candles (paged),
ticker, time, and every injected fault seen through ccxt as the error class (or the bad rows) it would be.

Each ccxt exchange is made the agent's way (``engine.exchange.client.create`` with the fake's URL as base URL,
spot only) over real HTTP on 127.0.0.1, against the shipped sample candles.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.exchange.client import ExchangeSpec, create, retry_after_s
from engine.exchange.loader import async_support
from engine.feeds.csvio import read_csv
from sim.exchange import FakeExchange, FakeExchangeServer, FakeMarketRules, Fault, default_rules, parse_market_key
from tests.sample import ROOT, sample_path

TF = "5m"
STEP = 300_000
OPEN = 5000  # candle 5000 is open (2 minutes in), 0..4999 are closed
PERSONALITIES = ("binance", "okx")
MARKET_PATH = {"binance": "/api/v3/exchangeInfo", "okx": "/api/v5/public/instruments"}
CANDLE_PATHS = {"binance": {"/api/v3/klines"}, "okx": {"/api/v5/market/candles", "/api/v5/market/history-candles"}}
PAGE = {"binance": 1000, "okx": 300}

ccxt = async_support()


def make_exchange(personality: str, url: str, timeout_s: float = 10.0) -> Any:
    """The agent's ccxt exchange on the fake; plain HTTP, so no quarter-second wait for TLS shutdown in close()."""
    exchange = create(ExchangeSpec(id=personality, base_url=url, timeout_s=timeout_s))
    exchange.timeout_on_exit = 0
    return exchange


@dataclass
class Venue:
    fake: FakeExchange
    exchange: Any
    clock: SimClock
    url: str

    def candle_requests(self) -> list[dict[str, str]]:
        return [q for p, q in self.fake.request_log if p in CANDLE_PATHS[self.fake.personality]]


@pytest.fixture(scope="module")
def btc() -> CandleArrays:
    return read_csv(sample_path("BTC_USDT-5m.csv"), TF)


@pytest.fixture(scope="module")
def eth_btc() -> CandleArrays:
    return read_csv(sample_path("ETH_BTC-5m.csv"), TF)


@pytest.fixture(params=PERSONALITIES)
async def venue(request: pytest.FixtureRequest, btc: CandleArrays, eth_btc: CandleArrays) -> AsyncIterator[Venue]:
    clock = SimClock(int(btc.ts[OPEN]) + 120_000)
    fake = FakeExchange({"BTCUSDT": btc, "ETHBTC": eth_btc}, clock, TF, personality=request.param,
                        retry_after_s=3, hang_s=5.0)
    async with FakeExchangeServer(fake) as url:
        exchange = make_exchange(request.param, url, timeout_s=0.5)
        try:
            yield Venue(fake, exchange, clock, url)
        finally:
            await exchange.close()


def csv_rows(arrays: CandleArrays, lo: int, hi: int) -> list[list[float]]:
    return [[int(arrays.ts[i]), float(arrays.open[i]), float(arrays.high[i]), float(arrays.low[i]),
             float(arrays.close[i]), float(arrays.volume[i])] for i in range(lo, hi)]


# ---------------------------------------------------------------------------------- markets


async def test_load_markets_gives_each_market_its_rules(venue: Venue) -> None:
    markets = await venue.exchange.load_markets()
    assert [p for p, _ in venue.fake.request_log] == [MARKET_PATH[venue.fake.personality]]  # one request, spot only
    btc = markets["BTC/USDT"]
    assert btc["id"] == ("BTCUSDT" if venue.fake.personality == "binance" else "BTC-USDT")
    assert (btc["base"], btc["quote"], btc["spot"], btc["active"]) == ("BTC", "USDT", True, True)
    assert btc["precision"]["amount"] == 0.00001 and btc["precision"]["price"] == 0.01
    assert btc["limits"]["amount"]["min"] == 0.00001
    eth = markets["ETH/BTC"]
    assert (eth["base"], eth["quote"]) == ("ETH", "BTC") and eth["precision"]["amount"] == 0.0001
    if venue.fake.personality == "binance":
        assert btc["limits"]["cost"]["min"] == 5.0 and eth["limits"]["cost"]["min"] == 0.0001
    else:  # OKX has no least order value
        assert btc["limits"]["cost"]["min"] is None and eth["limits"]["cost"]["min"] is None


async def test_market_rules_change_while_running(venue: Venue) -> None:
    await venue.exchange.load_markets()
    venue.fake.set_rules("BTC/USDT", tick_size=0.1, step_size=0.001, min_qty=0.002, min_notional=10.0)
    venue.fake.set_rules("ETHBTC", FakeMarketRules(trading=False))
    markets = await venue.exchange.load_markets(reload=True)
    btc = markets["BTC/USDT"]
    assert (btc["precision"]["price"], btc["precision"]["amount"], btc["limits"]["amount"]["min"]) == (0.1, 0.001,
                                                                                                       0.002)
    assert btc["limits"]["cost"]["min"] == (10.0 if venue.fake.personality == "binance" else None)
    assert markets["ETH/BTC"]["active"] is False  # Binance status BREAK, OKX state suspend
    with pytest.raises(KeyError):
        venue.fake.set_rules("NOPEUSDT", tick_size=1.0)


async def test_rules_given_to_the_constructor_are_served(btc: CandleArrays) -> None:
    rules = {"BTC/USDT": FakeMarketRules(tick_size=0.5, step_size=0.01, min_qty=0.05, max_qty=100.0, min_notional=1)}
    for personality in PERSONALITIES:
        fake = FakeExchange({"BTCUSDT": btc}, SimClock(int(btc.ts[OPEN])), TF, personality=personality, rules=rules)
        async with FakeExchangeServer(fake) as url:
            exchange = make_exchange(personality, url)
            try:
                market = (await exchange.load_markets())["BTC/USDT"]
            finally:
                await exchange.close()
        assert market["precision"] == {**market["precision"], "price": 0.5, "amount": 0.01}
        assert market["limits"]["amount"] == {"min": 0.05, "max": 100.0}


def test_symbols_split_on_known_quotes_and_rules_default_by_price() -> None:
    assert parse_market_key("BTCUSDT") == ("BTCUSDT", "BTC", "USDT")
    assert parse_market_key("ethfdusd") == ("ETHFDUSD", "ETH", "FDUSD")
    assert parse_market_key("XRPETH") == ("XRPETH", "XRP", "ETH")
    assert parse_market_key("BTC/EUR") == parse_market_key("BTC-EUR") == ("BTCEUR", "BTC", "EUR")
    with pytest.raises(ValueError, match="quote asset"):
        parse_market_key("FOOBAR")
    assert default_rules("USDT", 30000.0) == FakeMarketRules(0.01, 0.00001, 0.00001, 9000.0, 5.0)
    doge = default_rules("USDT", 0.08)
    assert doge.step_size == 1.0 and doge.min_notional == 5.0 and doge.tick_size < 0.001
    assert default_rules("BTC", 0.05).min_notional == 0.0001


# ---------------------------------------------------------------------------------- candles, ticker, time


async def test_fetch_ohlcv_since_limit_returns_the_csv_candles(venue: Venue, btc: CandleArrays) -> None:
    rows = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[100]), limit=50)
    assert rows == csv_rows(btc, 100, 150)
    # since between two open times: from the next candle on, as the exchanges do
    rows = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[200]) - 1, limit=3)
    assert rows == csv_rows(btc, 200, 203)


async def test_latest_candles_end_with_the_open_one(venue: Venue, btc: CandleArrays) -> None:
    rows = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, limit=5)
    assert rows[:4] == csv_rows(btc, OPEN - 4, OPEN)
    ts, o, h, lo, c, v = rows[4]
    assert (ts, o) == (int(btc.ts[OPEN]), float(btc.open[OPEN]))
    assert c == venue.fake.price("BTCUSDT") != float(btc.close[OPEN])  # 2 of 5 minutes: values so far
    assert h >= max(o, c) and lo <= min(o, c) and v == pytest.approx(float(btc.volume[OPEN]) * 0.4)
    future = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[OPEN + 1]), limit=5)
    assert future == []  # nothing that has not opened yet


async def test_fetch_ohlcv_pages_through_history_up_to_the_open_candle(venue: Venue, btc: CandleArrays) -> None:
    first, got = 2500, []
    since = int(btc.ts[first])
    while True:
        page = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=since, limit=PAGE[venue.fake.personality])
        got += page
        if len(page) < PAGE[venue.fake.personality]:
            break
        since = page[-1][0] + STEP
    assert [r[0] for r in got] == btc.ts[first:OPEN + 1].tolist()
    assert got[:-1] == csv_rows(btc, first, OPEN) and got[-1][4] == venue.fake.price("BTCUSDT")
    assert len(venue.candle_requests()) == math.ceil((OPEN + 1 - first) / PAGE[venue.fake.personality])


async def test_ccxt_pagination_on_the_fake_clock(venue: Venue, btc: CandleArrays) -> None:
    """ccxt plans its pages (and OKX's candles/history-candles choice) by its own clock: set to the fake's, its
    ``paginate`` walks the pages and OKX's recent candles come from /market/candles."""
    venue.exchange.milliseconds = venue.clock.now_ms
    first = OPEN - 1800
    rows = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[first]), params={"paginate": True})
    assert rows[:-1] == csv_rows(btc, first, OPEN) and rows[-1][0] == int(btc.ts[OPEN])
    assert len(venue.candle_requests()) > 1
    if venue.fake.personality == "okx":
        paths = {p for p, _ in venue.fake.request_log}
        assert {"/api/v5/market/candles", "/api/v5/market/history-candles"} <= paths  # older than 1440 candles
        venue.fake.request_log.clear()
        recent = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[OPEN - 10]), limit=5)
        assert recent == csv_rows(btc, OPEN - 10, OPEN - 5)
        assert [p for p, _ in venue.fake.request_log] == ["/api/v5/market/candles"]


async def test_fetch_ticker_is_the_open_candles_close_so_far(venue: Venue) -> None:
    ticker = await venue.exchange.fetch_ticker("BTC/USDT")
    assert ticker["last"] == ticker["close"] == venue.fake.price("BTCUSDT")
    assert ticker["timestamp"] == venue.clock.now_ms() and ticker["symbol"] == "BTC/USDT"
    assert ticker["high"] >= ticker["last"] >= ticker["low"] and ticker["baseVolume"] > 0
    venue.clock.advance(60_000)
    assert (await venue.exchange.fetch_ticker("BTC/USDT"))["last"] == venue.fake.price("BTCUSDT") != ticker["last"]


async def test_fetch_time_is_the_fakes_clock(venue: Venue) -> None:
    assert await venue.exchange.fetch_time() == venue.clock.now_ms()
    venue.clock.advance(12_345)
    assert await venue.exchange.fetch_time() == venue.clock.now_ms()


# ---------------------------------------------------------------------------------- faults through ccxt


@pytest.mark.parametrize(("fault", "status", "expected"), [
    (Fault.SERVER_ERROR, None, "ExchangeNotAvailable"),
    (Fault.SERVER_ERROR, 503, "ExchangeNotAvailable"),
    (Fault.RATE_LIMIT, None, "rate"),
    (Fault.RATE_LIMIT, 418, "rate"),
    (Fault.TIMEOUT, None, "RequestTimeout"),
])
async def test_transport_faults_are_ccxt_errors(venue: Venue, btc: CandleArrays, fault: Fault, status: int | None,
                                                expected: str) -> None:
    await venue.exchange.load_markets()
    venue.fake.inject(fault, status=status)
    with pytest.raises(ccxt.NetworkError) as caught:  # what the agent's client retries
        await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[100]), limit=5)
    if expected == "rate":  # Binance: DDoSProtection (429 and 418); OKX: RateLimitExceeded (code 50011)
        assert isinstance(caught.value, ccxt.DDoSProtection | ccxt.RateLimitExceeded)
        assert retry_after_s(venue.exchange) == 3.0
    else:
        assert isinstance(caught.value, getattr(ccxt, expected))
    assert venue.fake.pending_faults == 0
    assert await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[100]), limit=5) == csv_rows(btc, 100,
                                                                                                         105)


async def test_malformed_json_reaches_ccxt_as_a_bad_response(venue: Venue, btc: CandleArrays) -> None:
    """ccxt itself does not raise on a 200 whose JSON is cut (the body stays an unparsed string, and fetch_ohlcv
    makes no rows or rows without prices of it); the exchange the engine creates refuses such an answer as
    ``BadResponse``, which is retried. The truncated text is what ccxt saw (its last_http_response)."""
    await venue.exchange.load_markets()
    for kwargs in ({"since": int(btc.ts[100]), "limit": 5}, {"limit": 3}):
        venue.fake.inject(Fault.MALFORMED_JSON)
        with pytest.raises(async_support().BadResponse, match="malformed JSON"):
            await venue.exchange.fetch_ohlcv("BTC/USDT", TF, **kwargs)
        body = venue.exchange.last_http_response
        assert body[0] in "[{" and not body.endswith(("]", "}"))
    assert await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=int(btc.ts[100]), limit=5) == csv_rows(btc, 100,
                                                                                                         105)


async def test_data_faults_come_through_as_bad_rows(venue: Venue, btc: CandleArrays) -> None:
    await venue.exchange.load_markets()
    since, clean = int(btc.ts[100]), csv_rows(btc, 100, 105)
    ts = [r[0] for r in clean]

    async def fetch() -> list[list[float]]:
        rows: list[list[float]] = await venue.exchange.fetch_ohlcv("BTC/USDT", TF, since=since, limit=5)
        return rows

    venue.fake.inject(Fault.DUPLICATE, row=1)
    assert [r[0] for r in await fetch()] == [ts[0], ts[1], ts[1], ts[2], ts[3]]  # ccxt cuts at limit
    venue.fake.inject(Fault.GAP, row=1, span=2)
    assert [r[0] for r in await fetch()] == [ts[0], ts[3], ts[4]]
    venue.fake.inject(Fault.BAD_CANDLE, row=2)
    bad = (await fetch())[2]
    assert bad[0] == ts[2] and bad[2] < min(bad[1], bad[4])
    venue.fake.inject(Fault.BAD_CANDLE, row=0, nan=True)
    assert math.isnan((await fetch())[0][4])
    venue.fake.inject(Fault.OUT_OF_ORDER, row=1)
    assert await fetch() == clean  # ccxt sorts every answer by time: a swapped pair never reaches the agent
    assert venue.fake.pending_faults == 0


async def test_faults_on_the_other_endpoints(venue: Venue) -> None:
    venue.fake.inject(Fault.SERVER_ERROR, endpoint="markets")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await venue.exchange.load_markets()
    await venue.exchange.load_markets()
    venue.fake.inject(Fault.RATE_LIMIT, endpoint="ticker")
    with pytest.raises((ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        await venue.exchange.fetch_ticker("BTC/USDT")
    venue.fake.inject(Fault.TIMEOUT, endpoint="time")
    with pytest.raises(ccxt.RequestTimeout):
        await venue.exchange.fetch_time()
    assert await venue.exchange.fetch_time() == venue.clock.now_ms()
    with pytest.raises(ValueError, match="candle"):
        venue.fake.inject(Fault.GAP, endpoint="ticker")
    with pytest.raises(ValueError, match="endpoint"):
        venue.fake.inject(Fault.GAP, endpoint="orders")


# ---------------------------------------------------------------------------------- OKX's own protocol


async def test_okx_candles_protocol(btc: CandleArrays) -> None:
    """Newest first, strings, confirm "0" only for the open candle; after/before exclusive; limit cut to 300;
    /market/candles reaches back 1440 candles; OKX's error envelope."""
    clock = SimClock(int(btc.ts[OPEN]) + 120_000)
    fake = FakeExchange({"BTCUSDT": btc}, clock, TF, personality="okx")
    async with FakeExchangeServer(fake) as url, aiohttp.ClientSession() as session:
        async def get(path: str, **params: Any) -> tuple[int, Any]:
            async with session.get(f"{url}/api/v5/{path}", params={k: str(v) for k, v in params.items()}) as resp:
                return resp.status, await resp.json()

        t = btc.ts.tolist()
        _, body = await get("market/candles", instId="BTC-USDT", bar=TF, limit=3)
        assert body["code"] == "0" and [r[0] for r in body["data"]] == [str(t[OPEN - k]) for k in range(3)]
        assert [r[8] for r in body["data"]] == ["0", "1", "1"] and all(isinstance(x, str) for x in body["data"][1])
        _, body = await get("market/history-candles", instId="BTC-USDT", bar=TF, after=t[20], before=t[10], limit=5)
        assert [int(r[0]) for r in body["data"]] == t[15:20][::-1]  # the newest 5 of 11..19
        _, body = await get("market/history-candles", instId="BTC-USDT", bar=TF, before=t[10], limit=2)
        assert [int(r[0]) for r in body["data"]] == [t[OPEN], t[OPEN - 1]]  # before alone: the latest
        _, body = await get("market/history-candles", instId="BTC-USDT", bar=TF, after=t[1000], limit=1000)
        assert len(body["data"]) == 300
        _, body = await get("market/candles", instId="BTC-USDT", bar=TF, after=t[OPEN - 1430], limit=300)
        assert [int(r[0]) for r in body["data"]][-1] == t[OPEN + 1 - 1440]  # no further back than 1440 candles
        assert await get("market/candles", instId="NOPE-USDT", bar=TF) == (
            200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []})
        status, body = await get("market/candles", instId="BTC-USDT", bar="1H")
        assert (status, body["code"]) == (400, "51000")
        fake.inject(Fault.RATE_LIMIT)
        async with session.get(f"{url}/api/v5/market/candles", params={"instId": "BTC-USDT", "bar": TF}) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (429, "1")
            assert (await resp.json())["code"] == "50011"


# ---------------------------------------------------------------------------------- CLI


async def test_cli_serves_the_okx_personality() -> None:
    csv = sample_path("BTC_USDT-5m.csv")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim.exchange", "--csv", str(csv), "--personality", "okx", "--port", "0",
        cwd=Path(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("fake exchange serving BTCUSDT 5m at http://127.0.0.1:"), line
        exchange = make_exchange("okx", line.rsplit(" at ", 1)[1].strip())
        try:
            rows = await exchange.fetch_ohlcv("BTC/USDT", TF, limit=3)
        finally:
            await exchange.close()
        assert len(rows) == 3 and rows[0][0] == rows[2][0] - 2 * STEP
    finally:
        if proc.returncode is None:
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) in (0, -15)


def test_cli_rejects_an_unknown_personality() -> None:
    done = subprocess.run([sys.executable, "-m", "sim.exchange", "--csv", "x.csv", "--personality", "kraken"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice" in done.stderr
