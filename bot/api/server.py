"""uvicorn in the worker's event loop: ``ApiServer.start`` binds the port (an error is one line, raised), loads the
tokens and runs ``uvicorn.Server.serve`` as a task beside the bot; ``stop`` ends it within a bounded time.

The worker owns SIGTERM and SIGINT (``bot.__main__``): uvicorn's own signal capture is switched off, and it does
not configure logging (its lines go through the worker's structlog set-up). Its access log is off: it would log
the WebSocket's ``?token=``; failed authentications are logged by ``bot.api.auth`` without the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Generator
from typing import Any

import structlog
import uvicorn

from bot.api.app import create_app
from bot.api.failure import ApiUnavailable
from bot.api.idempotency import KEEP_MS, IdempotencyRecords
from bot.api.tokens import TokenBook
from config.settings import ApiSettings
from engine.events import EventBus
from engine.facade import EngineFacade

log = structlog.get_logger("bot.api.server")

STARTUP_TIMEOUT_S = 5.0
GRACEFUL_S = 1  # s; open requests and WebSockets get this long at shutdown; within the worker's 3 s step
WS_MAX_BYTES = 64 * 1024  # a client's message; the only one we read is {"type": "ping"}


QUERY_TOKEN_RE = re.compile(r"([?&]token=)[^&\s\"']*")


class HideQueryToken(logging.Filter):
    """uvicorn logs each WebSocket's path with its query string ("WebSocket /api/v1/ws?token=..." [accepted]): the
    token's value is replaced by *** before the line is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "token=" in text:
            record.msg, record.args = QUERY_TOKEN_RE.sub(r"\1***", text), None
        return True


def hide_query_tokens() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideQueryToken) for f in logger.filters):
            logger.addFilter(HideQueryToken())


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket. Made with ``IPPROTO_TCP`` named: asyncio sets TCP_NODELAY only on sockets that say
    so, and ``socket.create_server``'s (protocol 0) would leave Nagle's algorithm on, which with the client's
    delayed ACK holds every response ~40 ms (measured: 44 ms a request instead of 0.2)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the worker's handlers stay in place

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class ApiServer:
    def __init__(self, facade: EngineFacade, settings: ApiSettings, *, tokens: TokenBook,
                 idempotency: IdempotencyRecords, bus: EventBus, **app_options: Any) -> None:
        self.settings = settings
        self.tokens = tokens
        self.idempotency = idempotency
        self.app = create_app(facade, settings, tokens=tokens, idempotency=idempotency, bus=bus, **app_options)
        self.config = uvicorn.Config(self.app, host=settings.host, port=settings.port, lifespan="off",
                                     log_config=None, access_log=False, server_header=False, http="h11",
                                     ws="websockets-sansio", ws_max_size=WS_MAX_BYTES, ws_ping_interval=None,
                                     ws_per_message_deflate=False,
                                     timeout_graceful_shutdown=GRACEFUL_S, proxy_headers=True)
        self.server = _Server(self.config)
        hide_query_tokens()
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    def take_webhook(self, application: Any, url_path: str, secret_token: str) -> str:
        """One port: this server also takes Telegram's webhook (``bot.api.webhook``); the route's path. Called
        before ``start``."""
        from bot.api.webhook import add_webhook_route

        return add_webhook_route(self.app, application, url_path, secret_token)

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the system's pick for port 0)."""
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Bind, load the tokens, forget old idempotency keys, serve; ApiUnavailable when it cannot listen."""
        host, port = self.settings.host, self.settings.port
        try:
            self._socket = listen(host, port, self.config.backlog)
        except OSError as exc:
            raise ApiUnavailable(f"the HTTP API cannot listen on {host}:{port}: {exc.strerror or exc} (API_HOST, "
                                 f"API_PORT or PORT)") from None
        await self.tokens.load()
        forgotten = await self.idempotency.purge_idempotency_keys(int(time.time() * 1000) - KEEP_MS)
        self._task = asyncio.create_task(self.server.serve(sockets=[self._socket]), name="http-api")
        ready = asyncio.ensure_future(self.server.ready.wait())
        await asyncio.wait({ready, self._task}, timeout=STARTUP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not self.server.started:  # uvicorn's log says why
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
            self._socket.close()
            raise ApiUnavailable(f"the HTTP API stopped while starting on {host}:{port}")
        log.info("api_listening", host=host, port=self.port, docs=f"http://{host}:{self.port}/api/v1/docs",
                 idempotency_keys_forgotten=forgotten, cors=list(self.settings.cors_origins))

    async def stop(self) -> None:
        """Stop taking requests, let open ones finish (``GRACEFUL_S``), close the WebSockets."""
        if self._task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), GRACEFUL_S + 1.0)
        except TimeoutError:
            self.server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        except Exception:  # the server's task failed earlier: it is stopped either way
            log.exception("api_stop_failed")
        finally:
            self._task = None
            if self._socket is not None:
                self._socket.close()
