"""Reconciliation against the fake exchange over HTTP with real ccxt and a real database (SQLite and PostgreSQL):
books built from real fills through the OrderManager agree; balances changed behind the agent's back, a short
quote, unknown orders of ours and book orders the exchange lacks are mismatches naming the asset and both amounts;
extra quote, dust under a step, a person's own order, fees in BNB and fills not booked yet are not; an exchange
that does not answer is "could not reconcile"; accept() adopts the exchange's figures and sends nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from engine.core.clock import SimClock
from engine.core.rules import plain
from engine.core.types import Side
from engine.live.reconcile import ROUNDING_ABS, Books, Check, MismatchKind, Reconciler, Reconciliation, accept
from engine.live.types import FillDelta, OrderChange, OrderIntent, OrderState, OrderType, OrderUpdate
from sim.exchange import FakeExchange, FakeExchangeServer, Fault
from tests.engine.helpers import wait_until
from tests.live.rig import DECIDED, KEY, OPEN, SECRET, SYMBOL, TF, Rig, build_manager, candles, intent, live_rig

S = OrderState
K = MismatchKind
LIMIT = OrderType.LIMIT
BOOKS = Books(quote="USDT", cash=100_000.0, holdings={}, symbols={SYMBOL: ("BTC", "USDT")})
STRAY = "ta1-" + "0123456789ab" * 2  # our prefix, an order the books never made


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    async with live_rig(db_url) as made:
        yield made


async def no_sleep(_: float) -> None:
    return None


def reconciler(rig: Rig, manager_venue: Any = None) -> Reconciler:
    return Reconciler(manager_venue or rig.manager.venue, rig.store, rig.clock, attempts=3, sleep=no_sleep)


async def reconcile(rig: Rig, books: Books) -> Reconciliation:
    return await reconciler(rig).reconcile(books)


def booked(books: Books, updates: Iterable[OrderUpdate]) -> Books:
    """``books`` after the fills of ``updates`` (what the live core books from the order manager's updates)."""
    for update in updates:
        if update.fill is not None:
            books = books.with_fill(update.order.symbol, update.order.side, update.fill)
    return books


async def trade(rig: Rig, books: Books, *intents: OrderIntent) -> Books:
    for one in intents:
        done = await rig.manager.submit(one)
        assert done.order.state is S.FILLED, done.order.last_error
        books = booked(books, done.updates)
    return books


async def set_balances(rig: Rig, balances: dict[str, str]) -> None:
    """Behind the agent's back, through the fake's control API."""
    async with aiohttp.ClientSession() as http, http.post(f"{rig.url}/control/balances",
                                                          json={"balances": balances}) as response:
        assert response.status == 200, await response.text()


def check(result: Reconciliation, asset: str) -> Check:
    [found] = [c for c in result.checks if c.asset == asset]
    return found


def below(rig: Rig, fraction: float = 0.8) -> float:
    return round(rig.price() * fraction, 2)


async def test_books_built_from_real_fills_agree_with_the_exchange(rig: Rig) -> None:
    books = await trade(rig, BOOKS, intent(amount=0.05), intent(amount=0.02, reason="more"),
                        intent(side=Side.SELL, amount=0.03, reason="exit"))
    resting = await rig.manager.submit(intent(type_=LIMIT, amount=0.01, price=below(rig, 0.9), reason="dip"))
    assert resting.order.state is S.OPEN  # its money is locked on the exchange, still in the total
    rig.clock.advance(1_234)
    result = await reconcile(rig, books)
    assert result.ok and result.reconciled and result.mismatches == () and result.affected_symbols() == ()
    assert result.at == DECIDED + 1_234 and result.notes == () and result.deferred == ()
    btc, usdt = check(result, "BTC"), check(result, "USDT")
    assert btc.agrees and btc.rule == "equal" and btc.theirs == pytest.approx(0.03993, abs=1e-12)  # fees in BTC
    assert usdt.agrees and usdt.rule == "covers" and usdt.theirs == pytest.approx(books.cash, abs=1e-6)
    assert result.summary() == "the books agree with Binance (2 assets compared)"
    # books that leave out the fees taken in BTC hold more than the exchange: more than one step, a mismatch
    naive = Books(quote="USDT", cash=books.cash, holdings={"BTC": 0.05 + 0.02 - 0.03}, symbols=books.symbols)
    assert [(m.asset, m.kind) for m in (await reconcile(rig, naive)).mismatches] == [("BTC", K.BALANCE)]


async def test_a_balance_changed_behind_the_agents_back_is_a_mismatch_naming_the_asset_and_both_amounts(
        rig: Rig) -> None:
    books = await trade(rig, BOOKS, intent(amount=0.02))
    orders_before = await rig.exchange_orders()
    await set_balances(rig, {"BTC": "0.025"})
    result = await reconcile(rig, books)
    [mismatch] = result.mismatches
    assert (mismatch.asset, mismatch.symbols, mismatch.kind) == ("BTC", (SYMBOL,), K.BALANCE)
    assert mismatch.ours == pytest.approx(0.01998) and mismatch.theirs == 0.025
    assert mismatch.difference == pytest.approx(0.00502)
    assert mismatch.text == "BTC (BTCUSDT): the agent's books hold 0.01998, the exchange 0.025 (+0.00502)"
    assert result.lines() == (mismatch.text,) and not result.ok and result.reconciled
    assert result.affected_symbols() == (SYMBOL,)
    assert result.summary() == "1 mismatch with Binance: entries paused for BTCUSDT"
    await set_balances(rig, {"BTC": "0.01", "USDT": "1000"})  # a withdrawal of both
    again = await reconcile(rig, books)
    assert [(m.asset, m.kind, m.theirs) for m in again.mismatches] == [("USDT", K.CASH, 1000.0),
                                                                       ("BTC", K.BALANCE, 0.01)]
    assert again.mismatches[0].text == (f"USDT (BTCUSDT): the agent's cash is {plain(books.cash, 10)}, the exchange "
                                        f"holds only 1000 ({plain(1000 - books.cash, 10)})")
    assert await rig.exchange_orders() == orders_before  # the agent never trades a mismatch away


async def test_more_quote_on_the_account_than_the_agents_cash_is_fine_and_less_is_not(rig: Rig) -> None:
    budget = Books(quote="USDT", cash=10_000.0, holdings={}, symbols=BOOKS.symbols)  # 10,000 of the 100,000
    result = await reconcile(rig, budget)
    assert result.ok and check(result, "USDT").theirs == 100_000.0 and check(result, "USDT").agrees
    await set_balances(rig, {"USDT": "9999.99999"})  # 0.00001 short: within the rounding
    assert (await reconcile(rig, budget)).ok
    await set_balances(rig, {"USDT": "9999.5"})
    [short] = (await reconcile(rig, budget)).mismatches
    assert (short.asset, short.kind, short.ours, short.theirs, short.difference) == ("USDT", K.CASH, 10_000.0,
                                                                                     9999.5, -0.5)


async def test_dust_under_one_step_agrees_and_more_than_a_step_does_not(rig: Rig) -> None:
    step = rig.manager.venue.rules(SYMBOL).amount_step
    assert step == 0.00001
    dusty = Books(quote="USDT", cash=100_000.0, holdings={"BTC": 0.000004}, symbols=BOOKS.symbols)  # a sell's dust
    await set_balances(rig, {"BTC": "0.000004"})
    assert (await reconcile(rig, dusty)).ok
    await set_balances(rig, {"BTC": "0.000013"})  # 0.000009 more than the books: under one step
    result = await reconcile(rig, dusty)
    assert result.ok and check(result, "BTC").tolerance == pytest.approx(step + ROUNDING_ABS)
    assert (await reconcile(rig, BOOKS)).ok is False  # but 0.000013 the books never had is more than a step
    await set_balances(rig, {"BTC": "0.000009"})
    assert (await reconcile(rig, BOOKS)).ok  # under a step the books do not hold: fine
    await set_balances(rig, {"BTC": "0.000016"})
    [mismatch] = (await reconcile(rig, dusty)).mismatches
    assert mismatch.asset == "BTC" and mismatch.difference == pytest.approx(0.000012)


async def test_an_order_of_ours_open_on_the_exchange_that_the_books_do_not_have_open_is_a_mismatch(rig: Rig) -> None:
    low = below(rig)
    await rig.manager.venue.exchange.create_order("BTC/USDT", "limit", "buy", 0.002, low,
                                                  params={"clientOrderId": STRAY})
    result = await reconcile(rig, BOOKS)
    [mismatch] = result.mismatches
    assert (mismatch.kind, mismatch.asset, mismatch.order, mismatch.ours, mismatch.theirs) == (
        K.UNKNOWN_ORDER, "BTC", STRAY, 0.0, 0.002)
    assert mismatch.text == (f"BTC (BTCUSDT): order {STRAY} (buy, not in the books) is open on the exchange for "
                             "0.002 BTC, the agent's books have 0 of it open")
    assert result.affected_symbols() == (SYMBOL,) and check(result, "USDT").agrees  # locked money is in the total
    # an order the books recorded as final while the exchange still has it open
    done = await rig.manager.submit(intent(type_=LIMIT, amount=0.001, price=low, reason="dip"))
    cid = done.order.client_id
    assert await rig.store.change_live_order(cid, {S.OPEN}, OrderChange(state=S.CANCELED)) is not None
    second = [m for m in (await reconcile(rig, BOOKS)).mismatches if m.order == cid]
    assert [m.detail for m in second] == ["buy, the books have it CANCELED"]


async def test_an_order_the_books_think_open_that_the_exchange_does_not_have_is_a_mismatch(rig: Rig) -> None:
    ghost = "ta1-" + "feedfacecafe" * 2
    await rig.store.add_live_order(intent(type_=LIMIT, amount=0.01, price=below(rig), reason="ghost"), ghost,
                                   state=S.OPEN, amount=0.01, price=below(rig), sent_at=DECIDED, expires_at=None)
    result = await reconcile(rig, BOOKS)
    [mismatch] = result.mismatches
    assert (mismatch.kind, mismatch.asset, mismatch.order, mismatch.ours, mismatch.theirs) == (
        K.MISSING_ORDER, "BTC", ghost, 0.01, 0.0)
    assert mismatch.text == (f"BTC (BTCUSDT): order {ghost} (buy, OPEN in the books) is open in the agent's books "
                             "for 0.01 BTC, the exchange has 0 of it (no such order)")
    assert result.affected_symbols() == (SYMBOL,)


async def test_fills_the_order_manager_has_not_booked_yet_defer_their_assets_instead_of_a_mismatch(rig: Rig) -> None:
    rig.fake.book.fill_fraction = 0.4
    done = await rig.manager.submit(intent(type_=LIMIT, price=round(rig.price() * 1.002, 2), timeout_s=3600))
    assert done.order.state is S.PARTIALLY_FILLED and done.order.filled == 0.004
    books = booked(BOOKS, done.updates)
    assert (await reconcile(rig, books)).ok and (await reconcile(rig, books)).deferred == ()
    seen_more = False
    for _ in range(50):  # the price comes back through the limit: more fills on the exchange, no poll
        rig.market_clock.advance(30_000)
        [on_exchange] = rig.fake.orders()
        result = await reconcile(rig, books)
        if on_exchange.executed_qty > Decimal("0.004"):
            seen_more = True
            assert result.ok and result.deferred == ("BTC", "USDT") and result.checks == ()
        if on_exchange.status == "FILLED":
            assert [n for n in result.notes if done.order.client_id in n] == [
                f"BTCUSDT: order {done.order.client_id} (buy) is FILLED on the exchange, PARTIALLY_FILLED in the "
                "books (not booked yet): BTC and USDT not compared this time"]
            break
    assert seen_more and on_exchange.status == "FILLED"
    books = booked(books, await rig.manager.poll())
    settled = await reconcile(rig, books)
    assert settled.ok and settled.deferred == () and {c.asset for c in settled.checks} == {"BTC", "USDT"}


async def test_an_unresolved_order_defers_its_assets_until_the_manager_resolves_it(rig: Rig) -> None:
    rig.fake.inject(Fault.HANG_AFTER_ACCEPT, endpoint="order")
    done = await rig.manager.submit(intent())
    assert done.order.state is S.UNKNOWN  # made and filled on the exchange, the answer lost
    result = await reconcile(rig, BOOKS)
    assert result.ok and result.deferred == ("BTC", "USDT") and result.checks == ()
    assert "(the order manager resolves it)" in result.notes[0]
    books = booked(BOOKS, await rig.manager.resolve(done.order.client_id))
    settled = await reconcile(rig, books)
    assert settled.ok and settled.deferred == () and check(settled, "BTC").theirs == pytest.approx(0.00999)


async def test_an_order_submitted_while_the_exchange_is_read_is_in_flight_not_unknown(rig: Rig) -> None:
    rig.fake.inject(Fault.TIMEOUT, endpoint="account")  # the first balance read hangs past ccxt's timeout
    task = asyncio.create_task(reconcile(rig, BOOKS))  # the live orders are read before that
    await wait_until(lambda: any(path == "/api/v3/account" for path, _ in rig.fake.request_log))
    done = await rig.manager.submit(intent(type_=LIMIT, amount=0.001, price=below(rig), reason="meanwhile"))
    assert done.order.state is S.OPEN
    result = await task
    assert result.ok and result.mismatches == () and result.deferred == ("BTC", "USDT")
    assert result.notes == (f"BTCUSDT: order {done.order.client_id} (buy) was submitted while this reconciliation "
                            "read the exchange: BTC and USDT not compared this time",)
    assert (await reconcile(rig, BOOKS)).ok and (await reconcile(rig, BOOKS)).deferred == ()  # next time: known


async def test_a_persons_own_order_is_a_note_and_left_alone(rig: Rig) -> None:
    theirs = await rig.manager.venue.exchange.create_order("BTC/USDT", "limit", "buy", 0.001, below(rig))
    result = await reconcile(rig, BOOKS)
    assert result.ok and result.mismatches == () and result.affected_symbols() == ()
    assert result.notes == (f"BTCUSDT: an order not placed by the agent is open on the exchange (buy 0.001 BTC at "
                            f"{below(rig)}, id {theirs['id']}): left alone",)
    [on_exchange] = await rig.exchange_orders()
    assert on_exchange["status"] == "NEW"


async def test_fees_in_bnb_make_no_false_mismatch(rig: Rig) -> None:
    rig.fake.book.fee_asset, rig.fake.book.fee_asset_price = "BNB", Decimal("600")
    rig.fake.set_balance("BNB", "1")
    books = await trade(rig, BOOKS, intent(amount=0.05), intent(side=Side.SELL, amount=0.02, reason="exit"))
    result = await reconcile(rig, books)
    assert result.ok and {c.asset for c in result.checks} == {"BTC", "USDT"}  # BNB is not traded: ignored
    assert check(result, "BTC").theirs == 0.03  # every fee went to BNB: the base is what was filled
    assert rig.fake.balances()["BNB"].free < Decimal("1")


@asynccontextmanager
async def two_markets(db_url: str) -> AsyncIterator[Rig]:
    """BTCUSDT and BNBUSDT (on the same candles) on one account: BNB is traded and pays the fees."""
    market_clock = SimClock(int(candles().ts[OPEN]) + 120_000)
    fake = FakeExchange({SYMBOL: candles(), "BNBUSDT": candles()}, market_clock, TF, hang_s=5.0)
    fake.add_account(KEY, SECRET, {"USDT": 100_000})
    async with FakeExchangeServer(fake) as url:
        closers: list[Any] = []
        clock = SimClock(DECIDED)
        try:
            manager = await build_manager(db_url, url, clock, closers)
            yield Rig(fake, url, db_url, clock, market_clock, manager, closers)
        finally:
            for closer in reversed(closers):
                await closer.close()


async def test_fees_in_a_traded_bnb_land_on_its_holding(db_url: str) -> None:
    async with two_markets(db_url) as rig:
        books = Books(quote="USDT", cash=100_000.0, holdings={},
                      symbols={SYMBOL: ("BTC", "USDT"), "BNBUSDT": ("BNB", "USDT")})
        bnb = OrderIntent(symbol="BNBUSDT", side=Side.BUY, type=OrderType.MARKET, amount=0.01, decided_ts=DECIDED,
                          reason="bnb")
        books = await trade(rig, books, bnb)  # no BNB yet: the fee is taken in the BNB bought
        rig.fake.book.fee_asset, rig.fake.book.fee_asset_price = "BNB", Decimal("600")
        books = await trade(rig, books, intent(amount=0.05), intent(side=Side.SELL, amount=0.02, reason="exit"))
        result = await reconcile(rig, books)
        assert result.ok and {c.asset for c in result.checks} == {"BTC", "BNB", "USDT"}
        assert check(result, "BTC").theirs == 0.03 and check(result, "BNB").theirs < 0.00999
        # books that booked those fees anywhere but on BNB would hold more BNB than the exchange
        unpaid = Books(quote="USDT", cash=books.cash, holdings={**books.holdings, "BNB": 0.00999},
                       symbols=books.symbols)
        [mismatch] = (await reconcile(rig, unpaid)).mismatches
        assert (mismatch.asset, mismatch.symbols) == ("BNB", ("BNBUSDT",))
        await set_balances(rig, {"USDT": "50"})  # the quote short: every symbol quoted in it pauses
        assert (await reconcile(rig, books)).affected_symbols() == ("BNBUSDT", SYMBOL)


async def test_an_exchange_that_does_not_answer_is_could_not_reconcile_and_pauses_nothing(
        rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cut_off = await rig.manager_on(rig.url)
    cut_off.venue.exchange.urls["api"] = {k: v.replace(rig.url, dead) if isinstance(v, str) else v
                                          for k, v in cut_off.venue.exchange.urls["api"].items()}
    result = await reconciler(rig, cut_off.venue).reconcile(BOOKS)
    assert not result.reconciled and not result.ok
    assert result.mismatches == () and result.affected_symbols() == () and result.checks == ()
    error = result.error or ""
    assert error.startswith("binance fetch_balance failed after 3 attempts: ExchangeNotAvailable: "), error
    assert "\n" not in error and dead not in error and "127.0.0.1" not in error
    assert result.summary() == f"could not reconcile with Binance: {error}"
    out = capsys.readouterr()
    assert all(secret not in out.out + out.err + error for secret in (KEY, SECRET))
    with pytest.raises(ValueError, match="nothing to accept"):
        accept(result)


async def test_a_passing_fault_is_retried_and_a_lasting_or_refused_read_could_not_reconcile(rig: Rig) -> None:
    rig.fake.inject(Fault.SERVER_ERROR, endpoint="account")
    assert (await reconcile(rig, BOOKS)).ok
    rig.fake.inject(Fault.MALFORMED_JSON, endpoint="open_orders", times=3)
    lasting = await reconcile(rig, BOOKS)
    assert (lasting.error or "").startswith("binance fetch_open_orders BTC/USDT failed after 3 attempts: ")
    assert lasting.mismatches == ()
    rig.fake.book.accounts[KEY].secret = "rotated-by-a-person"  # our key no longer signs
    refused = await reconcile(rig, BOOKS)
    assert (refused.error or "").startswith("binance fetch_balance: AuthenticationError: ")
    assert SECRET not in (refused.error or "") and "signature=" not in (refused.error or "")


async def test_accept_adopts_the_exchanges_figures_and_sends_nothing(rig: Rig) -> None:
    books = await trade(rig, BOOKS, intent(amount=0.02))
    await rig.manager.venue.exchange.create_order("BTC/USDT", "limit", "buy", 0.002, below(rig),
                                                  params={"clientOrderId": STRAY})
    await set_balances(rig, {"BTC": "0.03", "USDT": "90000"})
    result = await reconcile(rig, books)
    assert [m.kind for m in result.mismatches] == [K.CASH, K.BALANCE, K.UNKNOWN_ORDER]
    requests = len(rig.fake.request_log)
    accepted = accept(result, current=books)
    assert len(rig.fake.request_log) == requests  # pure data: no request, no order
    usdt = rig.fake.balances()["USDT"]  # 90,000 free and what the stray order locks
    assert accepted.books.holdings == {"BTC": 0.03} and accepted.books.cash == float(usdt.free + usdt.locked)
    assert accepted.books.symbols == books.symbols and accepted.books.quote == "USDT"
    assert [m.kind for m in accepted.adopted] == [K.CASH, K.BALANCE]
    assert [m.order for m in accepted.left] == [STRAY]  # an order is settled by a person or the order manager
    with pytest.raises(ValueError, match="books changed"):
        accept(result, current=books.with_fill(SYMBOL, Side.BUY, FillDelta(amount=0.001, cost=30.0)))
    await rig.manager.venue.exchange.cancel_order(None, "BTC/USDT", params={"clientOrderId": STRAY})  # a person
    after = await reconcile(rig, accepted.books)
    assert after.ok and after.affected_symbols() == ()
    assert accept(after).books == accepted.books and accept(after).adopted == ()  # nothing to adopt when ok
    budget = Books(quote="USDT", cash=10_000.0, holdings={"BTC": 0.03}, symbols=books.symbols)
    assert accept(await reconcile(rig, budget)).books.cash == 10_000.0  # extra quote is not the agent's
