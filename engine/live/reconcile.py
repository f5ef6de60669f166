"""Reconciliation: the agent's books against the exchange's balances and open orders. It only reads.

Inputs: ``Books`` (cash in the agent's quote asset; per traded base asset, its symbols' positions plus dust), the
live orders not final, and the exchange through ccxt (``fetch_balance``, ``fetch_open_orders`` per symbol,
``fetch_order`` for a book order not among the open ones), each read retried as ``client.call``. Poll the order
manager first.

Rules:

* **A traded base asset** (BTC of BTCUSDT): the exchange's total (free plus what open orders lock) must EQUAL the
  books' holding within one amount step of the market (quantities are floored to it; a fee taken in the base
  leaves a fraction of one) plus rounding (``ROUNDING_ABS``: a hundred of the exchange's roundings at the 8th
  decimal; ``ROUNDING_REL``: float sums). More is a mismatch too: a sell of the whole position sells what the
  exchange holds, so coins the books do not know would go with it.
* **The quote asset**: the exchange's total must COVER the books' cash (within the rounding). More is fine: the
  account may hold more than the agent's budget (deposits, a person's own money); equality would alarm at each of
  those. Less is a mismatch (the agent would spend money that is not there): every symbol pauses.
* **Assets the agent does not trade** are ignored.
* **Fees land where the exchange charges them** (``Books.with_fill``): in the quote they lower the cash, in a
  traded base that holding (a buy's fee in the coin bought), in another asset (BNB with "pay fees with BNB")
  nothing compared, so a BNB fee moves neither quote nor base; if BNB is traded too, its holding pays it.
* **Books hold what was filled**: an open order changes nothing until it fills (the totals count what it locks).
* **Open orders**, matched by client order id: open on the exchange with our prefix (``ta1-``) but not open in
  the books (unknown, or recorded final) is a mismatch; OPEN / PARTIALLY_FILLED in the books but not open on the
  exchange is asked for: no such order is a mismatch, filled or cancelled there is a fill not booked yet (a race
  with the poll: pausing, and an accept that would book the fill twice, would be wrong), so its assets are
  DEFERRED (not compared this time, with a note), as while an order is unresolved (SUBMITTING / UNKNOWN), has
  more filled on the exchange than booked, or was submitted while the exchange was read (a buy defers the quote).
  A person's own order (no prefix) is a note, never touched.

``Reconciliation``: mismatches (one line each, naming the asset and both amounts), the comparisons, what was
deferred, notes, the time, ``ok``; ``affected_symbols()`` pause (a base asset: its symbols; the quote: all; an
order: its symbol). An exchange that does not answer gives ``error`` (one line, no host, query or key): could not
reconcile, no mismatch, nothing paused by that alone. ``accept(result)``: the books with the exchange's figures
for each balance mismatch, as data; never an order (the agent does not trade a mismatch away); order mismatches
are left to the order manager or a person.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import structlog

from engine.core.clock import Clock
from engine.core.rules import plain
from engine.core.types import Side
from engine.errors import ConfigError, ExchangeError
from engine.exchange import client
from engine.exchange.client import Sleep
from engine.exchange.venue import Market, Venue
from engine.live import answers
from engine.live.ids import is_ours
from engine.live.types import LIVE_STATES, FillDelta, LiveOrder, OrderState
from engine.store.live_orders import LiveOrders

log = structlog.get_logger(__name__)

T = TypeVar("T")

ROUNDING_ABS = 1e-6  # a hundred of the exchange's roundings at the 8th decimal (fees, quote amounts)
ROUNDING_REL = 1e-9  # float sums of many fills
FILL_EPSILON = 1e-12  # relative: more filled on the exchange than booked
OPEN_IN_BOOKS = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})
DIGITS = 10  # significant digits of an amount in a line


def _amount(x: float) -> str:
    return plain(x, DIGITS)


# ---------------------------------------------------------------------------------------------- the books


@dataclass(frozen=True, slots=True)
class Books:
    """What the agent's books hold: ``cash`` in its ``quote`` asset; ``holdings`` per traded base asset (the
    positions plus the dust of the symbols with that base; a missing asset holds 0); the traded ``symbols`` as the
    engine writes them, each with its (base, quote) assets (every quote the books' ``quote``)."""

    quote: str
    cash: float
    holdings: Mapping[str, float]
    symbols: Mapping[str, tuple[str, str]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "holdings", {str(k): float(v) for k, v in self.holdings.items()})
        object.__setattr__(self, "symbols", {str(s): (str(b), str(q)) for s, (b, q) in self.symbols.items()})
        if not (self.quote and self.symbols):
            raise ValueError("books: a quote asset and at least one traded symbol are needed")
        for name, value in (("cash", self.cash), *((f"the holding of {a}", v) for a, v in self.holdings.items())):
            if not math.isfinite(value):
                raise ValueError(f"books: {name} is not a finite number ({value!r})")
        for symbol, (base, quote) in self.symbols.items():
            if quote != self.quote:
                raise ValueError(f"books: {symbol} is quoted in {quote}, the cash is in {self.quote}")
            if not base or base == quote:
                raise ValueError(f"books: {symbol} has no base asset apart from its quote")

    @property
    def bases(self) -> dict[str, tuple[str, ...]]:
        """Each traded base asset and its symbols."""
        out: dict[str, list[str]] = {}
        for symbol, (base, _) in sorted(self.symbols.items()):
            out.setdefault(base, []).append(symbol)
        return {base: tuple(symbols) for base, symbols in out.items()}

    def symbols_of(self, asset: str) -> tuple[str, ...]:
        """The symbols that trade ``asset`` (every symbol for the quote)."""
        if asset == self.quote:
            return tuple(sorted(self.symbols))
        return self.bases.get(asset, ())

    def with_fill(self, symbol: str, side: Side, fill: FillDelta) -> Books:
        """These books after ``fill`` of an order of ``symbol``: the base bought (sold) and the quote paid
        (received), each fee where it landed (see the module's docstring)."""
        base, _ = self.symbols[symbol]
        sign = 1.0 if side is Side.BUY else -1.0
        holdings = dict(self.holdings)
        holdings[base] = holdings.get(base, 0.0) + sign * fill.amount
        cash = self.cash - sign * fill.cost
        for asset, fee in fill.fees.items():
            if asset == self.quote:
                cash -= fee
            elif asset in self.bases:
                holdings[asset] = holdings.get(asset, 0.0) - fee
        return replace(self, cash=cash, holdings=holdings)


# ---------------------------------------------------------------------------------------------- the result


class MismatchKind(enum.StrEnum):
    BALANCE = "balance"  # a traded base asset: the exchange holds another amount than the books
    CASH = "cash"  # the quote: the exchange holds less than the agent's cash
    UNKNOWN_ORDER = "unknown_order"  # open on the exchange with our prefix, not open in the books
    MISSING_ORDER = "missing_order"  # open in the books, the exchange has no such order


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The books (``ours``) and the exchange (``theirs``) disagree about ``asset``, traded by ``symbols``. For an
    order, the amounts are what each side has of it open (base units) and ``order`` its client order id."""

    asset: str
    symbols: tuple[str, ...]
    ours: float
    theirs: float
    kind: MismatchKind
    order: str | None = None
    detail: str = ""  # an order: its side, and what the books know of it

    @property
    def difference(self) -> float:
        """The exchange's amount minus the books'."""
        return self.theirs - self.ours

    @property
    def text(self) -> str:
        """One line for an admin's alert and ``/status``: the asset, its symbols and both amounts."""
        where = f"{self.asset} ({', '.join(self.symbols)})"
        ours, theirs = _amount(self.ours), _amount(self.theirs)
        diff = ("+" if self.difference > 0 else "") + _amount(self.difference)
        if self.kind is MismatchKind.BALANCE:
            return f"{where}: the agent's books hold {ours}, the exchange {theirs} ({diff})"
        if self.kind is MismatchKind.CASH:
            return f"{where}: the agent's cash is {ours}, the exchange holds only {theirs} ({diff})"
        if self.kind is MismatchKind.UNKNOWN_ORDER:
            return (f"{where}: order {self.order} ({self.detail}) is open on the exchange for {theirs} {self.asset}, "
                    f"the agent's books have {ours} of it open")
        return (f"{where}: order {self.order} ({self.detail}) is open in the agent's books for {ours} {self.asset}, "
                f"the exchange has {theirs} of it (no such order)")


@dataclass(frozen=True, slots=True)
class Check:
    """One asset compared: the books' figure, the exchange's total, the tolerance and the rule (``equal`` for a
    base asset, ``covers`` for the quote)."""

    asset: str
    symbols: tuple[str, ...]
    ours: float
    theirs: float
    tolerance: float
    rule: str
    agrees: bool


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The outcome of one reconciliation at ``at`` (ms) of ``books`` with ``exchange``. ``error``: it could not
    be made (the exchange did not answer): then there are no mismatches and nothing to pause."""

    at: int
    books: Books
    exchange: str
    mismatches: tuple[Mismatch, ...] = ()
    checks: tuple[Check, ...] = ()
    deferred: tuple[str, ...] = ()  # assets not compared this time: an order of theirs is in flight
    notes: tuple[str, ...] = ()
    error: str | None = None

    @property
    def reconciled(self) -> bool:
        return self.error is None

    @property
    def ok(self) -> bool:
        """Reconciled, and nothing disagrees."""
        return self.reconciled and not self.mismatches

    def lines(self) -> tuple[str, ...]:
        return tuple(m.text for m in self.mismatches)

    def summary(self) -> str:
        """One line: could not reconcile (why), the books agree, or how many mismatches."""
        if self.error is not None:
            return f"could not reconcile with {self.exchange}: {self.error}"
        if self.ok:
            later = f"; not compared this time: {', '.join(self.deferred)}" if self.deferred else ""
            return f"the books agree with {self.exchange} ({len(self.checks)} assets compared{later})"
        count = len(self.mismatches)
        return (f"{count} mismatch{'es' if count > 1 else ''} with {self.exchange}: entries paused for "
                f"{', '.join(self.affected_symbols())}")

    def affected_symbols(self) -> tuple[str, ...]:
        """The symbols whose new entries must pause."""
        return tuple(sorted({symbol for m in self.mismatches for symbol in m.symbols}))


@dataclass(frozen=True, slots=True)
class Accepted:
    """What ``/reconcile accept`` adopts: ``books`` with the exchange's figures for the ``adopted`` mismatches;
    ``left``: the order mismatches no figure settles (the order manager or a person does)."""

    books: Books
    adopted: tuple[Mismatch, ...] = ()
    left: tuple[Mismatch, ...] = ()


def accept(result: Reconciliation, current: Books | None = None) -> Accepted:
    """The books with the exchange's figures adopted: each mismatched base asset's holding becomes the exchange's
    total, a short cash the exchange's quote total. ``current``: the books now; ValueError when they changed since
    ``result`` (reconcile again) or when ``result`` could not reconcile."""
    if result.error is not None:
        raise ValueError(f"nothing to accept: the last reconciliation could not be made ({result.error})")
    if current is not None and current != result.books:
        raise ValueError("the books changed since this reconciliation: reconcile again before accepting")
    holdings, cash = dict(result.books.holdings), result.books.cash
    adopted, left = [], []
    for mismatch in result.mismatches:
        if mismatch.kind is MismatchKind.BALANCE:
            holdings[mismatch.asset] = mismatch.theirs
        elif mismatch.kind is MismatchKind.CASH:
            cash = mismatch.theirs
        else:
            left.append(mismatch)
            continue
        adopted.append(mismatch)
    return Accepted(replace(result.books, cash=cash, holdings=holdings), tuple(adopted), tuple(left))


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class _Seen:
    """What the exchange said: totals per asset, open orders per symbol, the orders asked for by client id (None:
    no such order), and the books' records of our orders not open in the books."""

    totals: dict[str, float] = field(default_factory=dict)
    open_orders: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    asked: dict[str, Mapping[str, Any] | None] = field(default_factory=dict)
    records: dict[str, LiveOrder | None] = field(default_factory=dict)


class Reconciler:
    """Reconciles books with the exchange of ``venue``, reading the live orders from ``orders``, timed by
    ``clock``. Each read is tried up to ``attempts`` times on what ccxt calls retryable."""

    def __init__(self, venue: Venue, orders: LiveOrders, clock: Clock, *, attempts: int = 3,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        self.venue = venue
        self.orders = orders
        self.clock = clock
        self.attempts = attempts
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def exchange(self) -> Any:
        return self.venue.exchange

    async def reconcile(self, books: Books) -> Reconciliation:
        """Compare ``books`` and the live orders not final with the exchange (see the module's docstring)."""
        at = self.clock.now_ms()
        book_orders = await self.orders.live_orders(LIVE_STATES)
        try:
            markets = await self._markets(books, book_orders)
            seen = await self._read(markets, book_orders)
        except (ExchangeError, ConfigError) as exc:
            reason = self._scrub(str(exc))
            log.warning("reconcile.unavailable", exchange=self.venue.id, reason=reason)
            return Reconciliation(at, books, self.venue.name, error=reason)
        result = _compare(at, self.venue.name, books, markets, book_orders, seen)
        if result.ok:
            log.info("reconcile.ok", exchange=self.venue.id, checks=len(result.checks), deferred=result.deferred,
                     notes=len(result.notes))
        else:
            log.warning("reconcile.mismatch", exchange=self.venue.id, mismatches=list(result.lines()),
                        symbols=result.affected_symbols())
        return result

    async def _markets(self, books: Books, book_orders: Sequence[LiveOrder]) -> dict[str, Market]:
        await self.venue.load_markets()
        symbols = sorted(set(books.symbols) | {o.symbol for o in book_orders})
        markets = {symbol: self.venue.market(symbol) for symbol in symbols}
        for symbol, (base, quote) in books.symbols.items():
            market = markets[symbol]
            if (market.base, market.quote) != (base, quote):
                raise ValueError(f"books: {symbol} is {base}/{quote} in the books, {market.base}/{market.quote} "
                                 f"on {self.venue.id}")
        return markets

    async def _read(self, markets: Mapping[str, Market], book_orders: Sequence[LiveOrder]) -> _Seen:
        seen = _Seen(totals=_totals(await self._call("fetch_balance", self.exchange.fetch_balance)))
        for symbol, market in markets.items():
            fetch = functools.partial(self.exchange.fetch_open_orders, market.symbol)
            seen.open_orders[symbol] = _orders(await self._call(f"fetch_open_orders {market.symbol}", fetch))
        open_ids = {str(o.get("clientOrderId") or "") for orders in seen.open_orders.values() for o in orders}
        books_open = {o.client_id for o in book_orders}
        for order in book_orders:
            if order.state in OPEN_IN_BOOKS and order.client_id not in open_ids:
                seen.asked[order.client_id] = await self._ask(markets[order.symbol], order)
        for client_id in sorted(open_ids - books_open):
            if is_ours(client_id):
                seen.records[client_id] = await self.orders.live_order(client_id)
        return seen

    async def _ask(self, market: Market, order: LiveOrder) -> Mapping[str, Any] | None:
        """The exchange's order of a book order (None: it has no such order)."""

        async def fetch() -> Mapping[str, Any] | None:
            try:
                if order.exchange_id:
                    found = await self.exchange.fetch_order(order.exchange_id, market.symbol)
                else:
                    found = await self.exchange.fetch_order(None, market.symbol,
                                                            params={"clientOrderId": order.client_id})
            except Exception as exc:
                if answers.not_found(exc):
                    return None
                raise
            if not isinstance(found, Mapping):
                raise ValueError("the order answer is not an order")
            return found

        return await self._call(f"fetch_order {market.symbol}", fetch)

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        return await client.call(self.exchange, what, fn, attempts=self.attempts, sleep=self._sleep, rng=self._rng)

    def _scrub(self, text: str) -> str:
        """One line, with any credential the exchange holds blanked (ccxt's messages do not carry them; an
        exchange's error body might)."""
        for name in ("apiKey", "secret", "password", "uid"):
            value = getattr(self.exchange, name, None)
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, "***")
        return " ".join(text.split())[:300]


def _totals(answer: Any) -> dict[str, float]:
    """Each asset's total of a ccxt balance (free + used where the total is missing); ValueError (retried as a bad
    answer) for a balance without totals."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("total"), Mapping):
        raise ValueError("the balance answer has no totals")
    totals: dict[str, float] = {}
    for asset, value in answer["total"].items():
        entry: Mapping[str, Any] = answer[asset] if isinstance(answer.get(asset), Mapping) else {}
        total = answers.number(value)
        parts = (answers.number(entry.get("free")) or 0.0, answers.number(entry.get("used")) or 0.0)
        totals[str(asset)] = total if total is not None else parts[0] + parts[1]
    return totals


def _orders(answer: Any) -> list[Mapping[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(o, Mapping) for o in answer):
        raise ValueError("the open orders answer is not a list of orders")
    return answer


# ---------------------------------------------------------------------------------------------- comparing


@dataclass
class _Compared:
    mismatches: list[Mismatch] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    deferred: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _compare(at: int, exchange: str, books: Books, markets: Mapping[str, Market], book_orders: Sequence[LiveOrder],
             seen: _Seen) -> Reconciliation:
    out = _Compared()
    _compare_orders(out, markets, book_orders, seen)
    _compare_balances(out, books, markets, seen.totals)
    order = {MismatchKind.CASH: 0, MismatchKind.BALANCE: 1, MismatchKind.UNKNOWN_ORDER: 2,
             MismatchKind.MISSING_ORDER: 3}
    mismatches = sorted(out.mismatches, key=lambda m: (order[m.kind], m.asset, m.order or ""))
    return Reconciliation(at, books, exchange, tuple(mismatches), tuple(out.checks), tuple(sorted(out.deferred)),
                          tuple(out.notes))


def _compare_orders(out: _Compared, markets: Mapping[str, Market], book_orders: Sequence[LiveOrder],
                    seen: _Seen) -> None:
    by_id = {o.client_id: o for o in book_orders}
    matched: set[str] = set()
    for symbol, orders in seen.open_orders.items():
        market = markets[symbol]
        for found in orders:
            client_id, left = str(found.get("clientOrderId") or ""), _left(found)
            book = by_id.get(client_id)
            if book is None and not is_ours(client_id):
                out.notes.append(f"{symbol}: an order not placed by the agent is open on the exchange "
                                 f"({found.get('side')} {_amount(left)} {market.base} at {found.get('price')}, "
                                 f"id {found.get('id')}): left alone")
            elif book is None and (record := seen.records.get(client_id)) is not None and not record.state.final:
                _defer(out, market, record, "was submitted while this reconciliation read the exchange")
            elif book is None:
                record = seen.records.get(client_id)
                known = f"the books have it {record.state}" if record else "not in the books"
                out.mismatches.append(Mismatch(market.base, (symbol,), 0.0, left, MismatchKind.UNKNOWN_ORDER,
                                               order=client_id, detail=f"{found.get('side')}, {known}"))
            else:
                matched.add(client_id)
                filled = answers.fills_of(found)[0]
                if filled > book.filled * (1 + FILL_EPSILON) + FILL_EPSILON:
                    _defer(out, market, book, f"has {_amount(filled)} filled on the exchange, "
                                              f"{_amount(book.filled)} booked")
    for book in book_orders:
        if book.client_id in matched:
            continue
        market = markets[book.symbol]
        if book.state.unresolved:
            _defer(out, market, book, f"is {book.state} (the order manager resolves it)")
        elif book.client_id in seen.asked and seen.asked[book.client_id] is None:
            out.mismatches.append(Mismatch(market.base, (book.symbol,), book.amount - book.filled, 0.0,
                                           MismatchKind.MISSING_ORDER, order=book.client_id,
                                           detail=f"{book.side}, {book.state} in the books"))
        else:
            state = answers.state_of(seen.asked.get(book.client_id) or {})
            _defer(out, market, book, f"is {state} on the exchange, {book.state} in the books (not booked yet)")


def _left(order: Mapping[str, Any]) -> float:
    """What an exchange's open order has still to fill (base units)."""
    left = answers.number(order.get("remaining"))
    return left if left is not None else (answers.number(order.get("amount")) or 0.0) - answers.fills_of(order)[0]


def _defer(out: _Compared, market: Market, order: LiveOrder, why: str) -> None:
    assets = (market.base, market.quote) if order.side is Side.BUY else (market.base,)
    out.deferred.update(assets)
    out.notes.append(f"{order.symbol}: order {order.client_id} ({order.side}) {why}: "
                     f"{' and '.join(assets)} not compared this time")


def _compare_balances(out: _Compared, books: Books, markets: Mapping[str, Market], totals: Mapping[str, float]) -> None:
    quote = books.quote
    if quote not in out.deferred:
        ours, theirs = books.cash, totals.get(quote, 0.0)
        tolerance = ROUNDING_ABS + ROUNDING_REL * max(abs(ours), abs(theirs))
        agrees = theirs >= ours - tolerance
        symbols = books.symbols_of(quote)
        out.checks.append(Check(quote, symbols, ours, theirs, tolerance, "covers", agrees))
        if not agrees:
            out.mismatches.append(Mismatch(quote, symbols, ours, theirs, MismatchKind.CASH))
    for base, symbols in books.bases.items():
        if base in out.deferred:
            continue
        ours, theirs = books.holdings.get(base, 0.0), totals.get(base, 0.0)
        step = max(markets[symbol].rules.amount_step for symbol in symbols)
        tolerance = step + ROUNDING_ABS + ROUNDING_REL * max(abs(ours), abs(theirs))
        agrees = abs(theirs - ours) <= tolerance
        out.checks.append(Check(base, symbols, ours, theirs, tolerance, "equal", agrees))
        if not agrees:
            out.mismatches.append(Mismatch(base, symbols, ours, theirs, MismatchKind.BALANCE))
