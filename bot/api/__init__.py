"""The HTTP API and WebSocket: a second front end over the same engine as the chat (``app``: the FastAPI app;
``server``: uvicorn in the worker's loop; ``tokens``: who may call it). FastAPI is imported only by the modules that
need it, which the worker imports only when the API is on (``tokens`` and ``limiter`` do without; ``parts`` builds
them for the worker)."""

from __future__ import annotations

from bot.api.failure import ApiUnavailable as ApiUnavailable  # raised by the server; caught by the worker
