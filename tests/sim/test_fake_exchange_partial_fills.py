"""The fake exchange's partial fills (``fill_fraction``) and commissions in another asset (``fee_asset``), through
REAL ccxt with keys over HTTP: a limit order fills part by part (PARTIALLY_FILLED, the rest locked, a cancel
unlocks only the rest), a fee paid in BNB when the account holds enough of it, and the control API's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Any

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.exchange.client import ExchangeSpec, create
from engine.feeds.csvio import read_csv
from sim.exchange import FakeExchange, FakeExchangeServer
from tests.sample import sample_path

TF = "5m"
OPEN = 5000
KEY, SECRET = "partial-key", "partial-secret"
SYMBOL = "BTC/USDT"
EIGHT = Decimal("0.00000001")


@dataclass
class Rig:
    fake: FakeExchange
    exchange: Any
    clock: SimClock
    url: str

    def price(self) -> Decimal:
        price = self.fake.price("BTCUSDT")
        assert price is not None
        return Decimal(str(price))


@pytest.fixture(scope="module")
def btc() -> CandleArrays:
    return read_csv(sample_path("BTC_USDT-5m.csv"), TF)


@pytest.fixture
async def rig(btc: CandleArrays) -> AsyncIterator[Rig]:
    clock = SimClock(int(btc.ts[OPEN]) + 120_000)
    fake = FakeExchange({"BTCUSDT": btc}, clock, TF)
    fake.add_account(KEY, SECRET, {"USDT": 10_000})
    async with FakeExchangeServer(fake) as url:
        exchange = create(ExchangeSpec(id="binance", base_url=url, timeout_s=2.0, rate_limit=False),
                          credentials={"apiKey": KEY, "secret": SECRET})
        exchange.timeout_on_exit = 0
        try:
            await exchange.load_markets()
            yield Rig(fake, exchange, clock, url)
        finally:
            await exchange.close()


async def test_a_limit_order_fills_part_by_part_and_stays_open_until_the_last_part(rig: Rig) -> None:
    rig.fake.book.fill_fraction = 0.4
    limit = (rig.price() * Decimal("1.002")).quantize(Decimal("0.01"))  # above the market: a taker at once
    order = await rig.exchange.create_order(SYMBOL, "limit", "buy", 0.01, float(limit))
    assert order["status"] == "open" and order["filled"] == 0.004  # 40 % of 0.01, then the rest rests
    assert rig.fake.orders()[0].status == "PARTIALLY_FILLED"
    assert rig.fake.balances()["USDT"].locked == Decimal("0.006") * limit
    fills = [Decimal("0.004")]
    for _ in range(50):  # each later pass of the price through the limit fills one more part
        rig.clock.advance(30_000)
        fetched = await rig.exchange.fetch_order(order["id"], SYMBOL)
        if Decimal(str(fetched["filled"])) > sum(fills):
            fills.append(Decimal(str(fetched["filled"])) - sum(fills))
        if fetched["status"] == "closed":
            break
    assert fetched["status"] == "closed" and fills == [Decimal("0.004"), Decimal("0.004"), Decimal("0.002")]
    trades = await rig.exchange.fetch_order_trades(order["id"], SYMBOL)
    assert [t["amount"] for t in trades] == [0.004, 0.004, 0.002]
    assert [t["takerOrMaker"] for t in trades] == ["taker", "maker", "maker"]
    assert rig.fake.balances()["USDT"].locked == 0
    assert rig.fake.balances()["BTC"].free == Decimal("0.01") - sum(
        Decimal(str(t["fee"]["cost"])) for t in trades)


async def test_cancelling_a_partly_filled_order_unlocks_only_the_rest(rig: Rig) -> None:
    rig.fake.book.fill_fraction = 0.25
    limit = (rig.price() * Decimal("1.002")).quantize(Decimal("0.01"))
    order = await rig.exchange.create_order(SYMBOL, "limit", "buy", 0.01, float(limit))
    spent = Decimal("0.0025") * rig.price()
    canceled = await rig.exchange.cancel_order(order["id"], SYMBOL)
    assert canceled["status"] == "canceled" and canceled["filled"] == 0.0025
    balances = rig.fake.balances()
    assert balances["USDT"].locked == 0 and balances["USDT"].free == Decimal(10_000) - spent
    assert (await rig.exchange.fetch_order(order["id"], SYMBOL))["filled"] == 0.0025


async def test_market_orders_fill_whole_whatever_the_fill_fraction(rig: Rig) -> None:
    rig.fake.book.fill_fraction = 0.1
    order = await rig.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01


async def test_the_commission_is_paid_in_bnb_while_the_account_holds_enough(rig: Rig) -> None:
    rig.fake.book.fee_asset, rig.fake.book.fee_asset_price = "BNB", Decimal("600")
    rig.fake.set_balance("BNB", "0.001")
    price = rig.price()
    order = await rig.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    bnb_fee = (price * Decimal("0.01") * Decimal("0.001") / 600).quantize(EIGHT, rounding=ROUND_UP)
    trades = await rig.exchange.fetch_order_trades(order["id"], SYMBOL)
    assert trades[0]["fee"] == {"currency": "BNB", "cost": float(bnb_fee)}
    balances = rig.fake.balances()
    assert balances["BTC"].free == Decimal("0.01")  # the whole amount bought: the fee came out of BNB
    assert balances["BNB"].free == Decimal("0.001") - bnb_fee
    rig.fake.set_balance("BNB", "0")  # not enough BNB: back to the asset received
    again = await rig.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert (await rig.exchange.fetch_order_trades(again["id"], SYMBOL))[0]["fee"]["currency"] == "BTC"


async def test_the_control_api_sets_the_fill_fraction_and_the_fee_asset(rig: Rig) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rig.url}/control/settings",
                             json={"fill_fraction": 0.5, "fee_asset": "bnb", "fee_asset_price": "600"}) as r:
            body = await r.json()
        assert r.status == 200 and body["fill_fraction"] == 0.5 and body["fee_asset"] == "BNB"
        assert body["fee_asset_price"] == "600"
        for bad in ({"fill_fraction": 0}, {"fill_fraction": 1.5}, {"fee_asset_price": "-1"},
                    {"fee_asset_price": "x"}):
            async with http.post(f"{rig.url}/control/settings", json=bad) as r:
                assert r.status == 400, bad
    assert rig.fake.book.fill_fraction == 0.5 and rig.fake.book.fee_asset_price == Decimal("600")
