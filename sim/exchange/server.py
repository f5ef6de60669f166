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
from sim.exchange.okx import OkxApi
from sim.exchange.venue import FakeMarketRules, PersonalityApi, Venue

log = structlog.get_logger(__name__)

PERSONALITIES: dict[str, type[PersonalityApi]] = {"binance": BinanceApi, "okx": OkxApi}


class FakeExchange(Venue):
    """In-memory market data, market rules and a fault queue, spoken as ``personality`` ("binance" or "okx");
    :meth:`app` builds the aiohttp application."""

    def __init__(self, markets: Mapping[str, CandleArrays], clock: Clock, timeframe: str, *,
                 retry_after_s: int = 1, hang_s: float = 30.0, personality: str = "binance",
                 rules: Mapping[str, FakeMarketRules] | None = None) -> None:
        if personality not in PERSONALITIES:
            raise ValueError(f"unknown personality {personality!r}; expected one of {', '.join(PERSONALITIES)}")
        super().__init__(markets, clock, timeframe, retry_after_s=retry_after_s, hang_s=hang_s, rules=rules)
        self.personality = personality

    def klines(self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[list[Any]]:
        """Binance kline rows for the request, by the clock (the current candle partial, as it is now)."""
        return klines(self, symbol, start_ms, end_ms, limit)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        for path, handler in PERSONALITIES[self.personality](self).routes():
            app.router.add_get(path, handler)
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
