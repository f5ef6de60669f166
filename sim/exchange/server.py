"""The fake exchange (markets, clock, faults, one personality) and the aiohttp server that serves it."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from engine.core.clock import Clock
from engine.core.model import CandleArrays
from sim.exchange.binance import BinanceApi, klines
from sim.exchange.binance_private import BinancePrivateApi
from sim.exchange.book import Amount, Balance, Book, Order, Trade
from sim.exchange.control import ControlApi
from sim.exchange.okx import OkxApi
from sim.exchange.venue import FakeMarketRules, PersonalityApi, Venue

log = structlog.get_logger(__name__)

PERSONALITIES: dict[str, type[PersonalityApi]] = {"binance": BinanceApi, "okx": OkxApi}


class FakeExchange(Venue):
    """In-memory market data, market rules, accounts and a fault queue, spoken as ``personality`` ("binance" or
    "okx"; only Binance trades); :meth:`app` builds the aiohttp application (with the ``/control`` API).

    ``commission`` (0.001 = 0.1 %) and ``slippage_bps`` apply to fills (see :mod:`sim.exchange.book`);
    ``accounts`` maps API key -> secret (add balances with :meth:`add_account` or :meth:`set_balance`)."""

    def __init__(self, markets: Mapping[str, CandleArrays], clock: Clock, timeframe: str, *,
                 retry_after_s: int = 1, hang_s: float = 30.0, personality: str = "binance",
                 rules: Mapping[str, FakeMarketRules] | None = None, commission: float = 0.001,
                 slippage_bps: float = 0.0, accounts: Mapping[str, str] | None = None) -> None:
        if personality not in PERSONALITIES:
            raise ValueError(f"unknown personality {personality!r}; expected one of {', '.join(PERSONALITIES)}")
        super().__init__(markets, clock, timeframe, retry_after_s=retry_after_s, hang_s=hang_s, rules=rules)
        self.personality = personality
        self.book = Book(self, commission=commission, slippage_bps=slippage_bps)
        for api_key, secret in (accounts or {}).items():
            self.book.add_account(api_key, secret)

    # ------------------------------------------------------------------------------ accounts (see Book)

    def add_account(self, api_key: str, secret: str, balances: Mapping[str, Amount] | None = None) -> None:
        """An account trading with ``api_key``/``secret``, holding ``balances`` (asset -> free amount)."""
        self.book.add_account(api_key, secret, balances)

    def set_balance(self, asset: str, free: Amount, locked: Amount | None = None, *,
                    api_key: str | None = None) -> Balance:
        """Set a balance behind the client's back (the only or first account without ``api_key``)."""
        return self.book.set_balance(asset, free, locked, api_key=api_key)

    def balances(self, api_key: str | None = None) -> dict[str, Balance]:
        return self.book.balances(api_key)

    def orders(self, api_key: str | None = None, symbol: str | None = None, *, open_only: bool = False) -> list[Order]:
        """The orders made on the exchange (of every account without ``api_key``; resting limit orders matched
        first), oldest first."""
        return self.book.orders(api_key, symbol, open_only=open_only)

    def trades(self, api_key: str | None = None, symbol: str | None = None) -> list[Trade]:
        return self.book.trades(api_key, symbol)

    def klines(self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list[Any]]:
        """Binance kline rows for the request, by the clock (the current candle partial, as it is now)."""
        return klines(self, symbol, start_ms, end_ms, limit)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        api = PERSONALITIES[self.personality](self)
        for path, handler in api.routes():
            app.router.add_get(path, handler)
        private = BinancePrivateApi(api, self.book).routes() if isinstance(api, BinanceApi) else []
        for method, path, private_handler in private + ControlApi(self, self.book).routes():
            app.router.add_route(method, path, private_handler)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests += 1
        self.request_log.append((request.path, dict(request.query)))
        return await handler(request)


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
        log.info("fake_exchange.started", base_url=self.base_url, personality=self.fake.personality,
                 markets=sorted(self.fake.markets), timeframe=self.fake.timeframe)
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
