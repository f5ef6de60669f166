"""The fake exchange's control API, outside any exchange's namespace (``/control/...``, JSON, no signing): what a
test or the demo does behind the trading client's back.

* ``POST /control/accounts`` ``{"api_key", "secret", "balances": {"USDT": "10000"}}`` adds an account;
* ``GET /control/balances[?api_key=]``; ``POST /control/balances`` ``{"api_key"?, "balances": {"USDT": "250",
  "BTC": {"free": "0.1", "locked": "0"}}}`` sets them;
* ``GET /control/orders[?api_key=&symbol=&open=1]`` and ``GET /control/trades[?api_key=&symbol=]`` (Binance's
  shapes, so "exactly one order on the exchange" can be asserted);
* ``POST /control/faults`` ``{"fault": "hang_after_accept", "endpoint": "order", "times": 1, "delay_s",
  "status", "row", "span", "nan"}`` injects one; ``DELETE /control/faults`` clears them;
* ``POST /control/settings`` ``{"commission", "slippage_bps", "time_offset_ms", "timestamp_clock", "fill_fraction",
  "fee_asset", "fee_asset_price"}``.

Without ``api_key`` the only (or first) account is meant. Errors: HTTP 400 ``{"error": ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sim.exchange.binance_private import order_json, trade_json
from sim.exchange.book import Balance, Book, dec
from sim.exchange.venue import Fault

if TYPE_CHECKING:
    from sim.exchange.venue import Venue

Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


def balances_json(balances: dict[str, Balance]) -> dict[str, dict[str, str]]:
    return {asset: {"free": str(b.free), "locked": str(b.locked)} for asset, b in balances.items()}


class ControlApi:
    def __init__(self, venue: Venue, book: Book) -> None:
        self.venue = venue
        self.book = book

    def routes(self) -> list[Route]:
        return [("POST", "/control/accounts", self.add_account), ("GET", "/control/balances", self.get_balances),
                ("POST", "/control/balances", self.set_balances), ("GET", "/control/orders", self.orders),
                ("GET", "/control/trades", self.trades), ("POST", "/control/faults", self.inject),
                ("DELETE", "/control/faults", self.clear_faults), ("POST", "/control/settings", self.settings),
                ("POST", "/control/clock/release", self.release_clock)]

    async def release_clock(self, request: web.Request) -> web.Response:
        """Start a clock held at its start (``--hold``): candle time runs from now on. Harmless when running."""
        release = getattr(self.venue.clock, "release", None)
        if release is not None:
            release()
        return web.json_response({"now_ms": self.venue.clock.now_ms()})

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='{"error": "the body is not JSON"}', content_type="application/json") \
                from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}', content_type="application/json")
        return body

    @staticmethod
    def _refuse(exc: Exception) -> web.Response:
        return web.json_response({"error": str(exc).strip("'\"")}, status=400)

    async def add_account(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            self.book.add_account(str(body["api_key"]), str(body["secret"]), body.get("balances") or {})
            return web.json_response({"balances": balances_json(self.book.balances(str(body["api_key"])))})
        except (KeyError, ValueError, ArithmeticError) as exc:
            return self._refuse(exc)

    async def get_balances(self, request: web.Request) -> web.Response:
        try:
            return web.json_response({"balances": balances_json(self.book.balances(request.query.get("api_key")))})
        except KeyError as exc:
            return self._refuse(exc)

    async def set_balances(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        api_key = body.get("api_key")
        try:
            for asset, value in dict(body.get("balances") or {}).items():
                if isinstance(value, dict):
                    self.book.set_balance(asset, str(value.get("free", "0")),
                                          str(value["locked"]) if "locked" in value else None, api_key=api_key)
                else:
                    self.book.set_balance(asset, str(value), api_key=api_key)
            return web.json_response({"balances": balances_json(self.book.balances(api_key))})
        except (KeyError, ValueError, ArithmeticError) as exc:
            return self._refuse(exc)

    async def orders(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            orders = self.book.orders(q.get("api_key"), q.get("symbol"), open_only=q.get("open") in ("1", "true"))
        except KeyError as exc:
            return self._refuse(exc)
        return web.json_response([order_json(o) for o in orders])

    async def trades(self, request: web.Request) -> web.Response:
        try:
            trades = self.book.trades(request.query.get("api_key"), request.query.get("symbol"))
        except KeyError as exc:
            return self._refuse(exc)
        return web.json_response([trade_json(t) for t in trades])

    async def inject(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            fault = Fault(str(body["fault"]).lower())
            self.venue.inject(fault, int(body.get("times", 1)), row=int(body.get("row", 0)),
                              span=int(body.get("span", 1)),
                              status=int(body["status"]) if body.get("status") is not None else None,
                              nan=bool(body.get("nan", False)), endpoint=body.get("endpoint"),
                              delay_s=float(body.get("delay_s", 1.0)))
        except (KeyError, ValueError, TypeError) as exc:
            return self._refuse(exc)
        return web.json_response({"pending_faults": self.venue.pending_faults})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.venue.clear_faults()
        return web.json_response({"pending_faults": 0})

    async def settings(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            if "commission" in body:
                self.book.commission = float(body["commission"])
            if "slippage_bps" in body:
                self.book.slippage_bps = float(body["slippage_bps"])
            if "time_offset_ms" in body:
                self.book.time_offset_ms = int(body["time_offset_ms"])
            if "ticker_at" in body:
                if body["ticker_at"] not in ("now", "open"):
                    raise ValueError("ticker_at must be 'now' or 'open'")
                self.venue.ticker_at = str(body["ticker_at"])
            if "timestamp_clock" in body:
                if body["timestamp_clock"] not in ("wall", "fake"):
                    raise ValueError("timestamp_clock must be 'wall' or 'fake'")
                self.book.timestamp_clock = str(body["timestamp_clock"])
            self._fill_settings(body)
        except (ValueError, TypeError, ArithmeticError) as exc:
            return self._refuse(exc)
        price = self.book.fee_asset_price
        return web.json_response({"commission": self.book.commission, "slippage_bps": self.book.slippage_bps,
                                  "time_offset_ms": self.book.time_offset_ms,
                                  "timestamp_clock": self.book.timestamp_clock, "ticker_at": self.venue.ticker_at,
                                  "fill_fraction": self.book.fill_fraction, "fee_asset": self.book.fee_asset,
                                  "fee_asset_price": None if price is None else str(price)})

    def _fill_settings(self, body: dict[str, Any]) -> None:
        """``fill_fraction`` (0 < f <= 1), ``fee_asset`` (or null) and ``fee_asset_price`` (see sim.exchange.book)."""
        if "fill_fraction" in body:
            fraction = float(body["fill_fraction"])
            if not 0 < fraction <= 1:
                raise ValueError("fill_fraction must be in (0, 1]")
            self.book.fill_fraction = fraction
        if "fee_asset_price" in body:
            price = None if body["fee_asset_price"] is None else dec(str(body["fee_asset_price"]))
            if price is not None and not price > 0:
                raise ValueError("fee_asset_price must be > 0")
            self.book.fee_asset_price = price
        if "fee_asset" in body:
            self.book.fee_asset = None if body["fee_asset"] is None else str(body["fee_asset"]).upper()
