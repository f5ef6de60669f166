"""The fake exchange's private half, whatever protocol speaks it: accounts (API key, secret, balances), orders,
fills against the candles and trades.

Amounts are :class:`~decimal.Decimal` (an exchange's books do not drift by float noise). Orders fill like this:

* MARKET: at once and whole, at the ticker price now (the open candle's close so far) moved ``slippage_bps``
  against the taker and rounded to the tick away from it; ``quote_qty`` (Binance's ``quoteOrderQty``) buys or
  sells as many lot steps as that much quote buys at that price.
* LIMIT (GTC): a buy at or above the price now (a sell at or below it) fills at once as a taker at the price now
  (slipped, never beyond the limit); otherwise it rests, with its cost locked, and fills whole at its limit price
  once the price has traded through it since it was placed. The path the price took is read from the candles:
  a candle wholly after the order by its low and high, a part of one by the straight line from its open to its
  close (the way the open candle's values so far are made), so nothing is seen before it happened. Resting
  orders are matched by :meth:`Book.settle`, which every private request calls first.

The commission (``commission``, 0.1 % by default, the same for maker and taker) is charged in the asset received,
as Binance does without BNB. Every fill is one trade.

Two settings make the book less kind, as a real one is (both off by default):

* ``fill_fraction`` (0 < f <= 1): one match fills only this share of a LIMIT order's quantity (floored to the lot
  step, at least one step, at most what is left), at once as a taker and then once per pass of the price
  through its limit; the order is PARTIALLY_FILLED (still open, the rest still locked) until the last part.
  Market orders always fill whole.
* ``fee_asset`` with ``fee_asset_price`` (its price in the order's quote asset), e.g. BNB at 600 USDT: a fill's
  commission, worth ``commission`` of the fill's value, is charged in that asset when the account holds enough
  of it free (as Binance does with "pay fees with BNB"; without the discount), else in the asset received.

A refused request raises :class:`Refused` with Binance's error code and message (the other personalities do not
trade yet): ``-1013`` filter failures (``LOT_SIZE``, ``PRICE_FILTER``, ``NOTIONAL``) and a closed market,
``-2010`` insufficient balance or a duplicate open client order id, ``-2013`` an order that does not exist,
``-2011`` cancelling one that is not open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from engine.feeds.csvio import plain

if TYPE_CHECKING:
    from sim.exchange.venue import Venue

EIGHT = Decimal("0.00000001")
MAX_PRICE = Decimal("1000000")
BUY, SELL = "BUY", "SELL"
MARKET, LIMIT = "MARKET", "LIMIT"
NEW, FILLED, CANCELED = "NEW", "FILLED", "CANCELED"
PARTIALLY_FILLED = "PARTIALLY_FILLED"

Amount = Decimal | float | int | str


def dec(x: Amount) -> Decimal:
    """A Decimal of ``x`` (a float by its shortest round-trip text, so 0.1 is 0.1)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(plain(x))
    return Decimal(x)


class Refused(Exception):
    """A request the exchange refuses: Binance's ``code`` and ``msg`` with HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status


class Balance(NamedTuple):
    free: Decimal
    locked: Decimal


@dataclass
class Account:
    api_key: str
    secret: str
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)

    def balance(self, asset: str) -> Balance:
        return Balance(self.free.get(asset, Decimal(0)), self.locked.get(asset, Decimal(0)))

    def move(self, asset: str, free: Decimal = Decimal(0), locked: Decimal = Decimal(0)) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + free
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + locked


@dataclass
class Order:
    order_id: int
    client_id: str
    api_key: str
    symbol: str
    side: str
    type: str
    price: Decimal  # the limit price; 0 for a market order, as Binance reports it
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    time_in_force: str = ""
    status: str = NEW
    executed_qty: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    update_time: int = 0
    checked_ms: int = 0  # the price path is matched up to here

    @property
    def is_open(self) -> bool:
        return self.status in (NEW, PARTIALLY_FILLED)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty


@dataclass(frozen=True)
class Trade:
    trade_id: int
    order_id: int
    api_key: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool


class Book:
    """Accounts, orders and trades over a venue's markets and clock."""

    def __init__(self, venue: Venue, *, commission: float = 0.001, slippage_bps: float = 0.0) -> None:
        self.venue = venue
        self.commission = commission
        self.slippage_bps = slippage_bps
        self.fill_fraction = 1.0  # share of a limit order one match fills (see the module's docstring)
        self.fee_asset: str | None = None  # e.g. "BNB": commissions charged in it while the account holds enough
        self.fee_asset_price: Decimal | None = None  # the fee asset's price in the quote asset
        self.time_offset_ms = 0  # added to the server time signed requests' timestamps are checked against
        self.timestamp_clock = "wall"  # or "fake": check them against the fake's (simulated) clock instead
        self.accounts: dict[str, Account] = {}
        self.all_orders: list[Order] = []
        self.all_trades: list[Trade] = []
        self._next_order_id = 1
        self._next_trade_id = 1

    # ------------------------------------------------------------------------------ accounts

    def add_account(self, api_key: str, secret: str, balances: Mapping[str, Amount] | None = None) -> Account:
        """An account for ``api_key`` (signing with ``secret``) holding ``balances`` free (asset -> amount)."""
        if not api_key or not secret:
            raise ValueError("api_key and secret must not be empty")
        account = self.accounts.setdefault(api_key, Account(api_key, secret))
        account.secret = secret
        for asset, amount in (balances or {}).items():
            self.set_balance(asset, amount, api_key=api_key)
        return account

    def account(self, api_key: str | None = None) -> Account:
        """The account of ``api_key``; without one, the only account (or the first added)."""
        if api_key is None:
            if not self.accounts:
                raise KeyError("no account: add one with add_account(api_key, secret)")
            return next(iter(self.accounts.values()))
        if api_key not in self.accounts:
            raise KeyError(f"no account for API key {api_key!r}")
        return self.accounts[api_key]

    def set_balance(self, asset: str, free: Amount, locked: Amount | None = None, *,
                    api_key: str | None = None) -> Balance:
        """Set an asset's free (and, if given, locked) amount behind the client's back."""
        account = self.account(api_key)
        asset = asset.upper()
        account.free[asset] = dec(free)
        if locked is not None:
            account.locked[asset] = dec(locked)
        return account.balance(asset)

    def balances(self, api_key: str | None = None) -> dict[str, Balance]:
        self.settle()
        account = self.account(api_key)
        assets = sorted(set(account.free) | set(account.locked))
        return {a: account.balance(a) for a in assets}

    def assets(self) -> list[str]:
        """Every asset of every market, as an account lists them (held or not)."""
        return sorted({a for pair in self.venue.pairs.values() for a in pair})

    # ------------------------------------------------------------------------------ reading

    def orders(self, api_key: str | None = None, symbol: str | None = None, *, open_only: bool = False) -> list[Order]:
        """The orders of ``api_key`` (of every account without one), oldest first, resting ones matched first."""
        self.settle()
        key = None if api_key is None else self.account(api_key).api_key
        symbol = None if symbol is None else self.venue.market_symbol(symbol)
        return [o for o in self.all_orders if (key is None or o.api_key == key)
                and (symbol is None or o.symbol == symbol) and (o.is_open or not open_only)]

    def trades(self, api_key: str | None = None, symbol: str | None = None) -> list[Trade]:
        """The fills of ``api_key`` (of every account without one), oldest first."""
        self.settle()
        key = None if api_key is None else self.account(api_key).api_key
        symbol = None if symbol is None else self.venue.market_symbol(symbol)
        return [t for t in self.all_trades if (key is None or t.api_key == key)
                and (symbol is None or t.symbol == symbol)]

    def find(self, api_key: str, symbol: str, order_id: int | None = None, client_id: str | None = None) -> Order:
        """An order by id or client order id (the newest with that client id); -2013 if there is none."""
        for order in reversed(self.all_orders):
            if order.api_key == api_key and order.symbol == symbol and (
                    order.order_id == order_id if order_id is not None else order.client_id == client_id):
                return order
        raise Refused(-2013, "Order does not exist.")

    # ------------------------------------------------------------------------------ placing

    def place(self, api_key: str, symbol: str, side: str, type_: str, *, quantity: Decimal | None = None,
              quote_qty: Decimal | None = None, price: Decimal | None = None, time_in_force: str = "",
              client_id: str | None = None) -> tuple[Order, list[Trade]]:
        """Make an order (and its fills at once, if any); :class:`Refused` as Binance refuses it."""
        self.settle()
        account = self.account(api_key)
        rules = self.venue.rules(symbol)
        base, quote = self.venue.pairs[symbol]
        now = self.venue.clock.now_ms()
        if client_id is not None and any(o.is_open and o.api_key == api_key and o.client_id == client_id
                                         for o in self.all_orders):
            raise Refused(-2010, "Duplicate order sent.")
        if not rules.trading:
            raise Refused(-1013, "Market is closed.")
        ticker = self.venue.price(symbol)
        if ticker is None:
            raise Refused(-1013, "Market is closed.")
        tick, step = dec(rules.tick_size), dec(rules.step_size)
        market_price = self._slipped(dec(ticker), side, tick)
        if type_ == LIMIT:
            assert price is not None and quantity is not None
            if price < tick or price > MAX_PRICE or price % tick != 0:
                raise Refused(-1013, "Filter failure: PRICE_FILTER")
            qty = quantity
        elif quantity is not None:
            qty = quantity
        else:
            assert quote_qty is not None
            qty = (quote_qty / market_price // step) * step
        if qty <= 0 or qty < dec(rules.min_qty) or qty > dec(rules.max_qty) or qty % step != 0:
            raise Refused(-1013, "Filter failure: LOT_SIZE")
        if type_ == MARKET or price is None:
            taker, fill_price = True, market_price
        elif side == BUY:
            taker, fill_price = price >= dec(ticker), min(market_price, price)
        else:
            taker, fill_price = price <= dec(ticker), max(market_price, price)
        value = qty * (fill_price if taker else (price or fill_price))
        if rules.min_notional is not None and value < dec(rules.min_notional):
            raise Refused(-1013, "Filter failure: NOTIONAL")
        part = self._part(qty, qty, step) if type_ == LIMIT else qty
        cost_asset, cost = (quote, value) if side == BUY else (base, qty)
        if side == BUY and taker and part < qty:  # the rest rests, locked at its limit price
            cost = part * fill_price + (qty - part) * (price or fill_price)
        if account.balance(cost_asset).free < cost:
            raise Refused(-2010, "Account has insufficient balance for requested action.")
        order = Order(self._next_order_id, client_id or f"fake{self._next_order_id}", api_key, symbol, side, type_,
                      price if type_ == LIMIT and price is not None else Decimal(0), qty,
                      quote_qty if quote_qty is not None else Decimal(0), now, time_in_force, update_time=now,
                      checked_ms=now)
        self._next_order_id += 1
        self.all_orders.append(order)
        if taker:
            trade = self._fill(order, fill_price, now, maker=False, qty=part)
            if order.is_open:
                self._lock_rest(order)
            return order, [trade]
        account.move(cost_asset, free=-cost, locked=cost)
        return order, []

    def _part(self, orig_qty: Decimal, remaining: Decimal, step: Decimal) -> Decimal:
        """What one match fills of an order of ``orig_qty`` with ``remaining`` left (``fill_fraction``)."""
        if self.fill_fraction >= 1:
            return remaining
        part = (orig_qty * dec(self.fill_fraction) // step) * step
        return min(max(part, step), remaining)

    def _lock_rest(self, order: Order) -> None:
        base, quote = self.venue.pairs[order.symbol]
        asset, amount = (quote, order.remaining * order.price) if order.side == BUY else (base, order.remaining)
        self.accounts[order.api_key].move(asset, free=-amount, locked=amount)

    def cancel(self, api_key: str, symbol: str, order_id: int | None = None, client_id: str | None = None) -> Order:
        self.settle()
        order = self.find(api_key, symbol, order_id, client_id)
        if not order.is_open:
            raise Refused(-2011, "Unknown order sent.")
        base, quote = self.venue.pairs[symbol]
        asset, amount = (quote, order.remaining * order.price) if order.side == BUY else (base, order.remaining)
        self.accounts[api_key].move(asset, free=amount, locked=-amount)
        order.status = CANCELED
        order.update_time = self.venue.clock.now_ms()
        return order

    # ------------------------------------------------------------------------------ matching

    def settle(self) -> None:
        """Fill the resting limit orders the price has traded through since they were last matched."""
        now = self.venue.clock.now_ms()
        for order in self.all_orders:
            if not order.is_open or now <= order.checked_ms:
                continue
            reach = self.price_range(order.symbol, order.checked_ms, now)
            order.checked_ms = now
            if reach is None:
                continue
            low, high = reach
            if (order.side == BUY and low <= order.price) or (order.side == SELL and high >= order.price):
                base, quote = self.venue.pairs[order.symbol]
                part = self._part(order.orig_qty, order.remaining, dec(self.venue.rules(order.symbol).step_size))
                asset, amount = (quote, part * order.price) if order.side == BUY else (base, part)
                self.accounts[order.api_key].move(asset, free=amount, locked=-amount)
                self._fill(order, order.price, now, maker=True, qty=part)

    def price_range(self, symbol: str, t0: int, t1: int) -> tuple[Decimal, Decimal] | None:
        """The lowest and highest price between ``t0`` and ``t1`` by the candles (see the module's docstring)."""
        arrays = self.venue.markets[symbol]
        step = self.venue.step_ms
        first = max(0, int(np.searchsorted(arrays.ts, t0, side="right")) - 1)
        last = int(np.searchsorted(arrays.ts, t1, side="right"))
        prices: list[float] = []
        for i in range(first, last):
            ts = int(arrays.ts[i])
            a, b = max(ts, t0), min(ts + step, t1)
            if a >= b:
                continue
            if a == ts and b == ts + step:
                prices += [float(arrays.low[i]), float(arrays.high[i])]
            else:
                o, c = float(arrays.open[i]), float(arrays.close[i])
                prices += [o + (c - o) * (a - ts) / step, o + (c - o) * (b - ts) / step]
        if not prices:
            return None
        return dec(min(prices)), dec(max(prices))

    def _slipped(self, price: Decimal, side: str, tick: Decimal) -> Decimal:
        factor = dec(self.slippage_bps) / Decimal(10_000)
        moved = price * (1 + factor) if side == BUY else price * (1 - factor)
        rounded = moved.quantize(tick, rounding=ROUND_UP if side == BUY else ROUND_DOWN)
        return max(rounded, tick)

    def _fill(self, order: Order, price: Decimal, now: int, *, maker: bool, qty: Decimal | None = None) -> Trade:
        """One trade of ``qty`` (all that is left without it) at ``price``."""
        base, quote = self.venue.pairs[order.symbol]
        account = self.accounts[order.api_key]
        qty = order.remaining if qty is None else qty
        quote_qty = (qty * price).quantize(EIGHT)
        rate = dec(self.commission)
        in_fee_asset = self._fee_in_fee_asset(account, quote_qty * rate)
        if order.side == BUY:
            commission, asset = (qty * rate).quantize(EIGHT, rounding=ROUND_UP), base
            account.move(quote, free=-quote_qty)
            account.move(base, free=qty - (commission if in_fee_asset is None else 0))
        else:
            commission, asset = (quote_qty * rate).quantize(EIGHT, rounding=ROUND_UP), quote
            account.move(base, free=-qty)
            account.move(quote, free=quote_qty - (commission if in_fee_asset is None else 0))
        if in_fee_asset is not None:
            commission, asset = in_fee_asset
            account.move(asset, free=-commission)
        trade = Trade(self._next_trade_id, order.order_id, order.api_key, order.symbol, order.side, price, qty,
                      quote_qty, commission, asset, now, maker)
        self._next_trade_id += 1
        self.all_trades.append(trade)
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.status = FILLED if order.executed_qty >= order.orig_qty else PARTIALLY_FILLED
        order.update_time = now
        return trade

    def _fee_in_fee_asset(self, account: Account, fee_value: Decimal) -> tuple[Decimal, str] | None:
        """The commission in ``fee_asset`` for a fee worth ``fee_value`` (quote), if set and the account has it."""
        if self.fee_asset is None or not self.fee_asset_price:
            return None
        amount = (fee_value / self.fee_asset_price).quantize(EIGHT, rounding=ROUND_UP)
        if account.balance(self.fee_asset).free < amount:
            return None
        return amount, self.fee_asset

    def order_trades(self, order: Order) -> Iterator[Trade]:
        return (t for t in self.all_trades if t.order_id == order.order_id)
