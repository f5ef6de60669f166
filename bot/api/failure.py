"""Why the API could not start, importable without FastAPI and without the package's own ``__init__`` (which
builds the server: importing it from the server would make an import cycle)."""

from __future__ import annotations


class ApiUnavailable(Exception):
    """The API could not start (its port is taken, the host is not this machine's); the message is one line."""
