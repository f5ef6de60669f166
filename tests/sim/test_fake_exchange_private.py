"""The fake exchange's private half (Binance spot) through REAL ccxt with API keys: balances, market and limit
orders filled against the candles with commission and slippage, cancel, queries by id and client order id, the
errors Binance answers (as the ccxt error classes they become), per-order faults, and the control API.

Each ccxt exchange is made the agent's way (``engine.exchange.client.create`` with credentials and the fake's URL
as base URL) over real HTTP on 127.0.0.1, against the shipped sample candles.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.exchange.client import ExchangeSpec, create
from engine.exchange.loader import async_support
from engine.feeds.csvio import read_csv
from sim.exchange import FakeExchange, FakeExchangeServer, Fault
from tests.sample import sample_path

TF = "5m"
STEP = 300_000
OPEN = 5000  # candle 5000 is open (2 minutes in), 0..4999 are closed
KEY, SECRET = "test-key", "test-secret"
SYMBOL = "BTC/USDT"

ccxt = async_support()


def make_exchange(url: str, api_key: str = KEY, secret: str = SECRET, timeout_s: float = 2.0) -> Any:
    exchange = create(ExchangeSpec(id="binance", base_url=url, timeout_s=timeout_s, rate_limit=False),
                      credentials={"apiKey": api_key, "secret": secret})
    exchange.timeout_on_exit = 0
    return exchange


@dataclass
class Live:
    fake: FakeExchange
    exchange: Any
    clock: SimClock
    url: str

    def price(self) -> Decimal:
        price = self.fake.price("BTCUSDT")
        assert price is not None
        return Decimal(str(price))

    def free(self, asset: str) -> Decimal:
        return self.fake.balances()[asset].free

    def locked(self, asset: str) -> Decimal:
        return self.fake.balances()[asset].locked


@pytest.fixture(scope="module")
def btc() -> CandleArrays:
    return read_csv(sample_path("BTC_USDT-5m.csv"), TF)


@pytest.fixture
async def live(btc: CandleArrays) -> AsyncIterator[Live]:
    clock = SimClock(int(btc.ts[OPEN]) + 120_000)
    fake = FakeExchange({"BTCUSDT": btc}, clock, TF, hang_s=3.0)
    fake.add_account(KEY, SECRET, {"USDT": 10_000})
    async with FakeExchangeServer(fake) as url:
        exchange = make_exchange(url)
        try:
            await exchange.load_markets()
            yield Live(fake, exchange, clock, url)
        finally:
            await exchange.close()


async def test_load_markets_with_keys_asks_for_currencies_and_margin_pairs(live: Live) -> None:
    paths = {p for p, _ in live.fake.request_log}
    assert {"/api/v3/exchangeInfo", "/sapi/v1/capital/config/getall", "/sapi/v1/margin/allPairs",
            "/sapi/v1/margin/isolated/allPairs"} <= paths
    assert {"BTC", "USDT"} <= set(live.exchange.currencies)
    balance = await live.exchange.fetch_balance()
    assert balance["USDT"] == {"free": 10_000.0, "used": 0.0, "total": 10_000.0}
    assert balance["BTC"]["total"] == 0.0


async def test_market_buy_and_sell_move_balances_with_the_commission(live: Live) -> None:
    price = live.price()
    order = await live.exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "agent-buy-1"})
    assert order["status"] == "closed" and order["clientOrderId"] == "agent-buy-1"
    assert Decimal(str(order["average"])) == price and order["filled"] == 0.01
    assert order["fee"] == {"currency": "BTC", "cost": 0.00001}  # 0.1 % in the asset received
    assert live.free("BTC") == Decimal("0.00999")
    assert live.free("USDT") == Decimal(10_000) - price * Decimal("0.01")

    sell = await live.exchange.create_order(SYMBOL, "market", "sell", 0.009)
    proceeds = (price * Decimal("0.009")).quantize(Decimal("0.00000001"))
    fee = (proceeds * Decimal("0.001")).quantize(Decimal("0.00000001"), rounding=ROUND_UP)
    assert sell["fee"]["currency"] == "USDT" and Decimal(str(sell["fee"]["cost"])) == fee
    assert live.free("BTC") == Decimal("0.00099")
    assert live.free("USDT") == Decimal(10_000) - price * Decimal("0.01") + proceeds - fee

    trades = await live.exchange.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["amount"], t["takerOrMaker"]) for t in trades] == [("buy", 0.01, "taker"),
                                                                              ("sell", 0.009, "taker")]
    assert trades[0]["order"] == order["id"] and trades[0]["fee"]["currency"] == "BTC"


async def test_market_buy_by_cost_and_slippage(live: Live) -> None:
    price = live.price()
    order = await live.exchange.create_market_buy_order_with_cost(SYMBOL, 100)
    assert order["status"] == "closed"
    qty = Decimal(str(order["filled"]))
    assert qty == (Decimal(100) / price).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    assert order["cost"] <= 100 and Decimal(str(order["cost"])) == qty * price

    live.fake.book.slippage_bps = 10  # 0.1 % against the taker, rounded to the tick away from it
    slipped = await live.exchange.create_order(SYMBOL, "market", "buy", 0.001)
    assert Decimal(str(slipped["average"])) == (price * Decimal("1.001")).quantize(Decimal("0.01"), rounding=ROUND_UP)


async def test_limit_buy_rests_then_fills_when_the_price_trades_through_it(live: Live, btc: CandleArrays) -> None:
    price = live.price()
    limit = (price * Decimal("0.998")).quantize(Decimal("0.01"))
    order = await live.exchange.create_order(SYMBOL, "limit", "buy", 0.01, float(limit),
                                             params={"clientOrderId": "agent-limit-1"})
    assert order["status"] == "open" and order["filled"] == 0
    assert live.locked("USDT") == limit * Decimal("0.01")
    assert [o["id"] for o in await live.exchange.fetch_open_orders(SYMBOL)] == [order["id"]]

    fill_candle = next(i for i in range(OPEN + 1, OPEN + 2000) if Decimal(str(btc.low[i])) <= limit)
    live.clock.set(int(btc.ts[fill_candle]))  # up to the candle that reaches the limit (the open candle's path,
    assert (await live.exchange.fetch_order(order["id"], SYMBOL))["status"] == "open"  # open to close, did not)
    live.clock.set(int(btc.ts[fill_candle]) + STEP)
    filled = await live.exchange.fetch_order(None, SYMBOL, params={"origClientOrderId": "agent-limit-1"})
    assert filled["status"] == "closed" and filled["id"] == order["id"]
    assert Decimal(str(filled["average"])) == limit and filled["filled"] == 0.01
    assert live.locked("USDT") == 0 and live.free("USDT") == Decimal(10_000) - limit * Decimal("0.01")
    assert live.free("BTC") == Decimal("0.00999")
    assert await live.exchange.fetch_open_orders(SYMBOL) == []
    trades = await live.exchange.fetch_my_trades(SYMBOL)
    assert len(trades) == 1 and trades[0]["takerOrMaker"] == "maker"


async def test_limit_sell_locks_the_base_and_fills_at_its_price(live: Live, btc: CandleArrays) -> None:
    live.fake.set_balance("BTC", "0.02")
    price = live.price()
    limit = (price * Decimal("1.002")).quantize(Decimal("0.01"))
    order = await live.exchange.create_order(SYMBOL, "limit", "sell", 0.01, float(limit))
    assert order["status"] == "open" and live.locked("BTC") == Decimal("0.01") and live.free("BTC") == Decimal("0.01")
    fill_candle = next(i for i in range(OPEN + 1, OPEN + 2000) if Decimal(str(btc.high[i])) >= limit)
    live.clock.set(int(btc.ts[fill_candle]) + STEP)
    filled = await live.exchange.fetch_order(order["id"], SYMBOL)
    proceeds = limit * Decimal("0.01")
    assert filled["status"] == "closed" and Decimal(str(filled["average"])) == limit
    assert live.locked("BTC") == 0 and live.free("BTC") == Decimal("0.01")
    assert live.free("USDT") == Decimal(10_000) + proceeds - (proceeds * Decimal("0.001")).quantize(
        Decimal("0.00000001"), rounding=ROUND_UP)


async def test_cancel_unlocks_and_a_client_id_may_be_reused_only_when_closed(live: Live) -> None:
    low = float((live.price() * Decimal("0.9")).quantize(Decimal("0.01")))
    order = await live.exchange.create_order(SYMBOL, "limit", "buy", 0.01, low, params={"clientOrderId": "dup-1"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent") as refused:
        await live.exchange.create_order(SYMBOL, "limit", "buy", 0.01, low, params={"clientOrderId": "dup-1"})
    assert type(refused.value) is ccxt.InvalidOrder
    assert len(live.fake.orders()) == 1
    canceled = await live.exchange.cancel_order(order["id"], SYMBOL)
    assert canceled["status"] == "canceled" and live.locked("USDT") == 0 and live.free("USDT") == 10_000
    with pytest.raises(ccxt.OrderNotFound):  # -2011 Unknown order sent.
        await live.exchange.cancel_order(order["id"], SYMBOL)
    again = await live.exchange.create_order(SYMBOL, "limit", "buy", 0.01, low, params={"clientOrderId": "dup-1"})
    fetched = await live.exchange.fetch_order(None, SYMBOL, params={"origClientOrderId": "dup-1"})
    assert fetched["id"] == again["id"] != order["id"]


async def test_unknown_orders_are_order_not_found(live: Live) -> None:
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await live.exchange.fetch_order("987654", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound, match="Order does not exist"):
        await live.exchange.fetch_order(None, SYMBOL, params={"origClientOrderId": "never-made"})


async def test_filters_and_balance_refusals(live: Live) -> None:
    live.fake.set_rules("BTCUSDT", min_qty=0.1)  # after ccxt read the markets: only the exchange refuses
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await live.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    live.fake.set_rules("BTCUSDT", min_qty=0.00001, tick_size=10.0)
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await live.exchange.create_order(SYMBOL, "limit", "buy", 0.01, float(live.price() * Decimal("0.9")) + 0.01)
    live.fake.set_rules("BTCUSDT", tick_size=0.01, min_notional=1000.0)
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL") as notional:  # -1013 without LOT_SIZE/PRICE_FILTER
        await live.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert type(notional.value) is ccxt.BadRequest
    live.fake.set_rules("BTCUSDT", min_notional=5.0)
    with pytest.raises(ccxt.InsufficientFunds):
        await live.exchange.create_order(SYMBOL, "market", "buy", 1.0)
    with pytest.raises(ccxt.InsufficientFunds):
        await live.exchange.create_order(SYMBOL, "market", "sell", 0.01)
    assert live.fake.orders() == [] and live.free("USDT") == 10_000


async def test_authentication_and_timestamp_refusals(live: Live) -> None:
    for api_key, secret in ((KEY, "not-the-secret"), ("unknown-key", SECRET)):
        other = make_exchange(live.url, api_key, secret)
        try:
            with pytest.raises(ccxt.AuthenticationError):  # -1022 bad signature, -2015 unknown key
                await other.fetch_balance()
        finally:
            await other.close()
    live.fake.book.time_offset_ms = 60_000  # the server's clock a minute ahead of ccxt's
    with pytest.raises(ccxt.InvalidNonce, match="recvWindow"):
        await live.exchange.fetch_balance()
    live.fake.book.time_offset_ms = -60_000  # ... and a minute behind
    with pytest.raises(ccxt.InvalidNonce, match="ahead"):
        await live.exchange.fetch_balance()
    live.fake.book.time_offset_ms = 0
    assert (await live.exchange.fetch_balance())["USDT"]["free"] == 10_000
    live.fake.book.timestamp_clock = "fake"  # ccxt stamps wall time; the fake's clock is in the sample's past
    with pytest.raises(ccxt.InvalidNonce):
        await live.exchange.fetch_balance()


async def test_reject_and_delay_faults(live: Live) -> None:
    live.fake.inject(Fault.REJECT, endpoint="order")
    with pytest.raises(ccxt.InvalidOrder, match="New order rejected"):
        await live.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert live.fake.orders() == []
    live.fake.inject(Fault.DELAY, endpoint="order", delay_s=0.3)
    started = time.monotonic()
    order = await live.exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert time.monotonic() - started >= 0.3 and order["status"] == "closed"
    assert live.fake.pending_faults == 0


async def test_hang_after_accept_times_out_but_the_order_exists(live: Live) -> None:
    impatient = make_exchange(live.url, timeout_s=0.5)
    try:
        await impatient.load_markets()
        live.fake.inject(Fault.HANG_AFTER_ACCEPT, endpoint="order")
        with pytest.raises(ccxt.RequestTimeout):
            await impatient.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "agent-hang-1"})
        found = await impatient.fetch_order(None, SYMBOL, params={"origClientOrderId": "agent-hang-1"})
    finally:
        await impatient.close()
    assert found["status"] == "closed" and found["filled"] == 0.01
    assert [o.client_id for o in live.fake.orders()] == ["agent-hang-1"]


async def test_error_after_accept_answers_503_but_the_order_exists(live: Live) -> None:
    live.fake.inject(Fault.ERROR_AFTER_ACCEPT, endpoint="order")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await live.exchange.create_order(SYMBOL, "limit", "buy", 0.01, float(live.price() * Decimal("0.9")),
                                         params={"clientOrderId": "agent-err-1"})
    found = await live.exchange.fetch_order(None, SYMBOL, params={"origClientOrderId": "agent-err-1"})
    assert found["status"] == "open"
    assert len(live.fake.orders(open_only=True)) == 1


async def test_control_api_sets_balances_behind_the_clients_back(live: Live) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{live.url}/control/balances",
                             json={"balances": {"USDT": "250.5", "BTC": {"free": "0.2", "locked": "0"}}}) as r:
            assert r.status == 200
            assert (await r.json())["balances"]["USDT"] == {"free": "250.5", "locked": "0"}
        balance = await live.exchange.fetch_balance()
        assert balance["USDT"]["free"] == 250.5 and balance["BTC"]["free"] == 0.2
        await live.exchange.create_order(SYMBOL, "market", "sell", 0.01)
        async with http.get(f"{live.url}/control/orders") as r:
            orders = await r.json()
        async with http.get(f"{live.url}/control/trades") as r:
            trades = await r.json()
        async with http.post(f"{live.url}/control/faults", json={"fault": "reject", "endpoint": "order"}) as r:
            assert (await r.json()) == {"pending_faults": 1}
        async with http.post(f"{live.url}/control/faults", json={"fault": "reject"}) as r:
            assert r.status == 400
    assert [(o["side"], o["status"]) for o in orders] == [("SELL", "FILLED")]
    assert len(trades) == 1 and trades[0]["commissionAsset"] == "USDT"
    with pytest.raises(ccxt.InvalidOrder):
        await live.exchange.create_order(SYMBOL, "market", "sell", 0.01)
