"""The Binance spot personality's private half: signed requests and the trading endpoints ccxt's ``binance`` uses
with API keys, over the fake's :class:`~sim.exchange.book.Book`.

Signed requests are checked as Binance checks them: the ``X-MBX-APIKEY`` header (missing: ``-2014``, unknown:
``-2015``, both HTTP 401), ``signature`` = hex HMAC-SHA256 with the account's secret of the query string followed
by the body, without the ``signature`` parameter (wrong: ``-1022``), and ``timestamp`` within ``recvWindow``
(default 5000 ms, at most 60000) of the server's time, at most 1000 ms ahead of it (else ``-1021``). The server's
time for this check is WALL time (``time.time()``) plus ``Book.time_offset_ms``, because ccxt stamps requests
with its own wall clock (``milliseconds()``; ``/api/v3/time`` serves the fake's simulated clock, so a client with
``adjustForTimeDifference`` would be off by the simulated offset: set ``Book.timestamp_clock = "fake"`` for one).
Move ``time_offset_ms`` a minute to see ``-1021``.

Endpoints: ``GET /api/v3/account``, ``POST /api/v3/order`` (MARKET by ``quantity`` or ``quoteOrderQty``, LIMIT
GTC; ``newClientOrderId``; ``newOrderRespType`` ACK, RESULT or FULL, FULL by default), ``GET /api/v3/order`` (by
``orderId`` or ``origClientOrderId``), ``DELETE /api/v3/order``, ``GET /api/v3/openOrders``,
``GET /api/v3/myTrades``, and what ``load_markets`` asks for with keys: ``/sapi/v1/capital/config/getall`` (each
asset of the markets, deposits and withdrawals enabled), ``/sapi/v1/margin/allPairs`` and
``/sapi/v1/margin/isolated/allPairs`` (none: the fake has no margin).

Faults injected for ``endpoint="order"`` are consumed one per new-order request: SERVER_ERROR, RATE_LIMIT,
TIMEOUT before anything is made; REJECT (``-2010`` "New order rejected."); DELAY, HANG_AFTER_ACCEPT and
ERROR_AFTER_ACCEPT after the order is made (and filled, if it fills at once). Faults injected for
``endpoint="account"`` are consumed one per ``/api/v3/account`` request, for ``"open_orders"`` one per
``/api/v3/openOrders`` (after the signature is checked): SERVER_ERROR, RATE_LIMIT, TIMEOUT (then the answer) and
MALFORMED_JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sim.exchange.binance import BinanceApi, decimal8, error
from sim.exchange.book import LIMIT, MARKET, Account, Book, Order, Refused, Trade
from sim.exchange.venue import ACCOUNT, OPEN_ORDERS, ORDER, Fault

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60_000
DEFAULT_TRADES_LIMIT = 500
MAX_TRADES_LIMIT = 1000

_SIGNATURE = re.compile(r"(^|&)signature=[^&]*")
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]
Signed = Callable[[Account, dict[str, str]], Awaitable[web.StreamResponse]]


def mandatory(name: str) -> Refused:
    return Refused(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def number(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not _NUMBER.match(raw):
            raise InvalidOperation
        return Decimal(raw)
    except InvalidOperation:
        raise Refused(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                             "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None


def integer(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise Refused(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.") \
            from None


def amount8(d: Decimal) -> str:
    """Binance's fixed-point strings for an amount: at least 8 places (``Decimal("0.5")`` -> ``"0.50000000"``)."""
    exponent = d.as_tuple().exponent
    places = max(8, -exponent if isinstance(exponent, int) else 8)
    return f"{d:.{places}f}"


def order_json(order: Order, *, kind: str = "query") -> dict[str, Any]:
    """An order as Binance shows it: ``kind`` "query" (GET order, openOrders), "result" (a new order's RESULT),
    "ack", or "cancel"."""
    head: dict[str, Any] = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                            "clientOrderId": order.client_id}
    if kind == "ack":
        return head | {"transactTime": order.time}
    if kind == "result":
        head["transactTime"] = order.time
    body: dict[str, Any] = {
        "price": amount8(order.price), "origQty": amount8(order.orig_qty), "executedQty": amount8(order.executed_qty),
        "cummulativeQuoteQty": amount8(order.cum_quote), "status": order.status,
        "timeInForce": order.time_in_force or "GTC", "type": order.type, "side": order.side}
    if kind == "query":
        body |= {"stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": order.time,
                 "updateTime": order.update_time, "isWorking": True, "workingTime": order.time,
                 "origQuoteOrderQty": amount8(order.orig_quote_qty)}
    elif kind == "result":
        body |= {"workingTime": order.time, "origQuoteOrderQty": amount8(order.orig_quote_qty)}
    return head | body | {"selfTradePreventionMode": "NONE"}


def trade_json(trade: Trade) -> dict[str, Any]:
    return {"symbol": trade.symbol, "id": trade.trade_id, "orderId": trade.order_id, "orderListId": -1,
            "price": amount8(trade.price), "qty": amount8(trade.qty),
            "quoteQty": amount8(trade.quote_qty), "commission": amount8(trade.commission),
            "commissionAsset": trade.commission_asset, "time": trade.time, "isBuyer": trade.side == "BUY",
            "isMaker": trade.is_maker, "isBestMatch": True}


def fill_json(trade: Trade) -> dict[str, Any]:
    return {"price": amount8(trade.price), "qty": amount8(trade.qty),
            "commission": amount8(trade.commission), "commissionAsset": trade.commission_asset,
            "tradeId": trade.trade_id}


class BinancePrivateApi:
    """The signed half of Binance spot over ``book``; ``public`` gives the fault answers (5xx page, 429)."""

    def __init__(self, public: BinanceApi, book: Book) -> None:
        self.public = public
        self.venue = public.venue
        self.book = book

    def routes(self) -> list[Route]:
        s = self._signed
        return [("GET", "/api/v3/account", s(self.account)), ("POST", "/api/v3/order", s(self.new_order)),
                ("GET", "/api/v3/order", s(self.query_order)), ("DELETE", "/api/v3/order", s(self.cancel_order)),
                ("GET", "/api/v3/openOrders", s(self.open_orders)), ("GET", "/api/v3/myTrades", s(self.my_trades)),
                ("GET", "/sapi/v1/capital/config/getall", s(self.coins)),
                ("GET", "/sapi/v1/margin/allPairs", s(self.no_margin)),
                ("GET", "/sapi/v1/margin/isolated/allPairs", s(self.no_margin))]

    # ------------------------------------------------------------------------------ signing

    def server_ms(self) -> int:
        """The time a request's ``timestamp`` is checked against (see the module's docstring)."""
        if self.book.timestamp_clock == "fake":
            return self.venue.clock.now_ms() + self.book.time_offset_ms
        return int(time.time() * 1000) + self.book.time_offset_ms

    def _signed(self, handler: Signed) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                account, params = await self._authenticate(request)
                self.book.settle()
                return await handler(account, params)
            except Refused as refused:
                return error(refused.status, refused.code, refused.msg)

        return run

    async def _authenticate(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise Refused(-2014, "API-key format invalid.", 401)
        account = self.book.accounts.get(key)
        if account is None:
            raise Refused(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query = request.rel_url.raw_query_string
        body = await request.text() if request.can_read_body else ""
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        signature = params.pop("signature", "")
        if not signature:
            raise mandatory("signature")
        payload = _SIGNATURE.sub("", query).lstrip("&") + _SIGNATURE.sub("", body).lstrip("&")
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise Refused(-1022, "Signature for this request is not valid.")
        stamp = integer(params, "timestamp")
        if stamp is None:
            raise mandatory("timestamp")
        window = integer(params, "recvWindow")
        window = DEFAULT_RECV_WINDOW if window is None else window
        if window > MAX_RECV_WINDOW:
            raise Refused(-1131, "recvWindow must be less than 60000")
        server = self.server_ms()
        if stamp >= server + 1000:
            raise Refused(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server - stamp > window:
            raise Refused(-1021, "Timestamp for this request is outside of the recvWindow.")
        return account, params

    def _symbol(self, params: dict[str, str], *, required: bool = True) -> str | None:
        symbol = params.get("symbol", "").upper()
        if not symbol:
            if required:
                raise mandatory("symbol")
            return None
        if symbol not in self.venue.markets:
            raise Refused(-1121, "Invalid symbol.")
        return symbol

    # ------------------------------------------------------------------------------ account

    async def account(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        failed, fault = await self.public.begin(ACCOUNT)
        if failed is not None:
            return failed
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        assets = sorted(set(self.book.assets()) | set(account.free) | set(account.locked))
        balances = []
        for asset in assets:
            free, locked = account.balance(asset)
            if not omit_zero or free or locked:
                balances.append({"asset": asset, "free": amount8(free), "locked": amount8(locked)})
        bps = round(self.book.commission * 10_000)
        rate = decimal8(self.book.commission)
        return self.public.answer({
            "makerCommission": bps, "takerCommission": bps, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.venue.clock.now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1}, fault)

    async def coins(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        answer = []
        for asset in self.book.assets():
            free, locked = account.balance(asset)
            answer.append({
                "coin": asset, "name": asset, "depositAllEnable": True, "withdrawAllEnable": True, "trading": True,
                "isLegalMoney": False, "free": amount8(free), "locked": amount8(locked),
                "freeze": "0", "withdrawing": "0", "ipoing": "0", "ipoable": "0", "storage": "0",
                "networkList": [{"network": asset, "coin": asset, "name": asset, "isDefault": True,
                                 "depositEnable": True, "withdrawEnable": True, "withdrawFee": "0",
                                 "withdrawMin": "0", "withdrawMax": "9999999999.99999999",
                                 "withdrawIntegerMultiple": "0.00000001", "depositDust": "0.00000001",
                                 "minConfirm": 1, "unLockConfirm": 0, "busy": False}]})
        return web.json_response(answer)

    async def no_margin(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        return web.json_response([])

    # ------------------------------------------------------------------------------ orders

    async def new_order(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        fault = self.venue.next_fault(ORDER)
        if fault is not None:
            if fault.fault is Fault.SERVER_ERROR:
                return self.public.server_error(fault.status or 500)
            if fault.fault is Fault.RATE_LIMIT:
                response = self.public.rate_limited(fault.status or 429)
                response.headers["Retry-After"] = str(self.venue.retry_after_s)
                return response
            if fault.fault is Fault.TIMEOUT:
                await self.venue.hang()
            if fault.fault is Fault.REJECT:
                return error(400, -2010, "New order rejected.")
        answer = self._place(account, params)
        if fault is not None:
            if fault.fault is Fault.DELAY:
                await asyncio.sleep(fault.delay_s)
            elif fault.fault is Fault.HANG_AFTER_ACCEPT:
                await self.venue.hang()
            elif fault.fault is Fault.ERROR_AFTER_ACCEPT:
                return self.public.server_error(fault.status or 503)
        return web.json_response(answer)

    def _place(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._symbol(params)
        assert symbol is not None
        side, type_ = params.get("side", "").upper(), params.get("type", "").upper()
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise Refused(-1100, "Illegal characters found in parameter 'side'.")
        if not type_:
            raise mandatory("type")
        if type_ not in (MARKET, LIMIT):
            raise Refused(-1116, "Invalid orderType.")
        quantity, quote_qty, price = number(params, "quantity"), number(params, "quoteOrderQty"), \
            number(params, "price")
        tif = params.get("timeInForce", "")
        if type_ == LIMIT:
            for name, value in (("timeInForce", tif), ("quantity", quantity), ("price", price)):
                if value is None or value == "":
                    raise mandatory(name)
            if tif != "GTC":
                raise Refused(-1115, "Invalid timeInForce.")
            if quote_qty is not None:
                raise Refused(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        else:
            if quantity is None and quote_qty is None:
                raise Refused(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            for name, value in (("quoteOrderQty", quote_qty if quantity is not None else None), ("price", price),
                                ("timeInForce", tif or None)):
                if value is not None:
                    raise Refused(-1106, f"Parameter '{name}' sent when not required.")
        client_id = params.get("newClientOrderId") or None
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise Refused(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                 "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        resp_type = params.get("newOrderRespType", "FULL").upper()
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise Refused(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
        order, fills = self.book.place(account.api_key, symbol, side, type_, quantity=quantity, quote_qty=quote_qty,
                                       price=price, time_in_force=tif, client_id=client_id)
        if resp_type == "ACK":
            return order_json(order, kind="ack")
        answer = order_json(order, kind="result")
        if resp_type == "FULL":
            answer["fills"] = [fill_json(t) for t in fills]
        return answer

    def _order(self, account: Account, params: dict[str, str]) -> tuple[str, int | None, str | None]:
        symbol = self._symbol(params)
        assert symbol is not None
        order_id, client_id = integer(params, "orderId"), params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise Refused(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return symbol, order_id, client_id

    async def query_order(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        order = self.book.find(account.api_key, *self._order(account, params))
        return web.json_response(order_json(order))

    async def cancel_order(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        symbol, order_id, client_id = self._order(account, params)
        try:
            order = self.book.cancel(account.api_key, symbol, order_id, client_id)
        except Refused as refused:
            if refused.code == -2013:
                raise Refused(-2011, "Unknown order sent.") from None
            raise
        answer = order_json(order, kind="cancel")
        answer["origClientOrderId"] = order.client_id
        answer["clientOrderId"] = params.get("newClientOrderId") or f"cancel{order.order_id}"
        answer["transactTime"] = order.update_time
        return web.json_response(answer)

    async def open_orders(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        failed, fault = await self.public.begin(OPEN_ORDERS)
        if failed is not None:
            return failed
        symbol = self._symbol(params, required=False)
        orders = self.book.orders(account.api_key, symbol, open_only=True)
        return self.public.answer([order_json(o) for o in orders], fault)

    async def my_trades(self, account: Account, params: dict[str, str]) -> web.StreamResponse:
        symbol = self._symbol(params)
        order_id, from_id = integer(params, "orderId"), integer(params, "fromId")
        start, end, limit = integer(params, "startTime"), integer(params, "endTime"), integer(params, "limit")
        limit = DEFAULT_TRADES_LIMIT if limit is None else min(limit, MAX_TRADES_LIMIT)
        if limit < 1:
            raise Refused(-1100, "Illegal characters found in parameter 'limit'.")
        trades = [t for t in self.book.trades(account.api_key, symbol)
                  if (order_id is None or t.order_id == order_id) and (from_id is None or t.trade_id >= from_id)
                  and (start is None or t.time >= start) and (end is None or t.time <= end)]
        trades = trades[:limit] if start is not None or from_id is not None else trades[-limit:]
        return web.json_response([trade_json(t) for t in trades])
