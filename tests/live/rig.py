"""A fake exchange served over HTTP, a real database and an ``OrderManager`` over real ccxt: what the live-order
tests share. ``Rig.restart()`` is a new manager (new Store, new ccxt exchange) over the same database, as after a
crash; ``exchange_orders`` reads the fake's orders through its control API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.core.types import Side
from engine.exchange.client import ExchangeSpec, create
from engine.exchange.venue import Venue
from engine.feeds.csvio import read_csv
from engine.live.orders import OrderManager
from engine.live.types import OrderIntent, OrderSettings, OrderType
from engine.store import Store
from sim.exchange import FakeExchange, FakeExchangeServer
from tests.sample import sample_path

TF = "5m"
OPEN = 5000  # candle 5000 is open (2 minutes in)
KEY, SECRET = "live-key", "live-secret"
SYMBOL = "BTCUSDT"  # as the engine writes it; ccxt's is BTC/USDT
DECIDED = 1_700_000_000_000
TIMEOUT_S = 0.5  # ccxt's request timeout: a hang after accept is a RequestTimeout this soon
SETTINGS = OrderSettings(grace_s=30.0, limit_timeout_s=60.0)

_CANDLES: dict[str, CandleArrays] = {}


def candles() -> CandleArrays:
    if "btc" not in _CANDLES:
        _CANDLES["btc"] = read_csv(sample_path("BTC_USDT-5m.csv"), TF)
    return _CANDLES["btc"]


def intent(side: Side = Side.BUY, type_: OrderType = OrderType.MARKET, amount: float = 0.01,
           price: float | None = None, *, decided_ts: int = DECIDED, reason: str = "signal", seq: int = 0,
           timeout_s: float | None = None) -> OrderIntent:
    return OrderIntent(symbol=SYMBOL, side=side, type=type_, amount=amount, decided_ts=decided_ts, reason=reason,
                       price=price, seq=seq, timeout_s=timeout_s)


async def open_venue(url: str, timeout_s: float = TIMEOUT_S) -> Venue:
    exchange = create(ExchangeSpec(id="binance", base_url=url, timeout_s=10.0, rate_limit=False),
                      credentials={"apiKey": KEY, "secret": SECRET})
    exchange.timeout_on_exit = 0
    venue = Venue(ExchangeSpec(id="binance", base_url=url), exchange=exchange, attempts=1)
    try:
        await venue.load_markets()  # with an ordinary timeout: the markets are not what these tests time
    except BaseException:
        await venue.close()
        raise
    exchange.timeout = int(timeout_s * 1000)  # the orders' requests: a hang after accept times out this soon
    return venue


@dataclass
class Rig:
    fake: FakeExchange
    url: str
    db_url: str
    clock: SimClock  # the manager's clock (grace periods, limit timeouts)
    market_clock: SimClock  # the fake exchange's candle clock
    manager: OrderManager
    _closers: list[Any] = field(default_factory=list)

    @property
    def store(self) -> Store:
        store = self.manager.store
        assert isinstance(store, Store)
        return store

    def price(self) -> float:
        price = self.fake.price(SYMBOL)
        assert price is not None
        return float(price)

    async def manager_on(self, url: str | None = None, *, timeout_s: float = TIMEOUT_S,
                         settings: OrderSettings = SETTINGS) -> OrderManager:
        """A new manager (its own Store and ccxt exchange) over the same database: a restarted process."""
        return await build_manager(self.db_url, url or self.url, self.clock, self._closers, timeout_s, settings)

    async def restart(self) -> OrderManager:
        self.manager = await self.manager_on()
        return self.manager

    async def exchange_orders(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """The orders on the exchange (Binance's JSON), read through the control API."""
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/control/orders") as response:
            orders: list[dict[str, Any]] = await response.json()
        return [o for o in orders if client_id is None or o["clientOrderId"] == client_id]

    async def exchange_trades(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/control/trades") as response:
            trades: list[dict[str, Any]] = await response.json()
        return trades


async def build_manager(db_url: str, url: str, clock: SimClock, closers: list[Any], timeout_s: float = TIMEOUT_S,
                        settings: OrderSettings = SETTINGS) -> OrderManager:
    store = await Store.open(db_url)
    closers.append(store)
    venue = await open_venue(url, timeout_s)
    closers.append(venue)
    return OrderManager(store, venue, clock, settings)


@asynccontextmanager
async def live_rig(db_url: str, *, balances: dict[str, Any] | None = None,
                   settings: OrderSettings = SETTINGS) -> AsyncIterator[Rig]:
    btc = candles()
    market_clock = SimClock(int(btc.ts[OPEN]) + 120_000)
    fake = FakeExchange({SYMBOL: btc}, market_clock, TF, hang_s=5.0)
    fake.add_account(KEY, SECRET, balances or {"USDT": 100_000})
    async with FakeExchangeServer(fake) as url:
        closers: list[Any] = []
        clock = SimClock(DECIDED)
        try:
            manager = await build_manager(db_url, url, clock, closers, settings=settings)
            rig = Rig(fake, url, db_url, clock, market_clock, manager, closers)
            yield rig
        finally:
            for closer in reversed(closers):
                await closer.close()
