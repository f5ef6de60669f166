"""One ccxt exchange, made the agent's way: only its class loaded, its REST hosts moved onto a base URL if asked,
spot markets only, and every call retried on what ccxt calls retryable.

ccxt does the protocol (URLs, signing, parsing, symbols, rate limits between calls). What it does not do is
kept here: retry with backoff and jitter on ``NetworkError`` (rate limits, timeouts, an exchange not available,
a bad response), honouring ``Retry-After``; one clear line per failure that never carries a query string (a
signed request's query holds its signature) or a key.
"""

from __future__ import annotations

import asyncio
import difflib
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from engine.errors import ConfigError, ExchangeError, ExchangeUnavailable
from engine.exchange.loader import async_support, exchange_class, exchange_ids

log = structlog.get_logger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

MAX_BACKOFF_S = 60.0
JITTER_FRACTION = 0.25
MAX_RETRY_AFTER_S = 600.0  # a longer ban (Binance's 418) is reported instead of slept through

# options that keep an exchange to its spot markets (fewer requests at start, no derivatives by mistake)
SPOT_OPTIONS: dict[str, Any] = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}}

_HOST = re.compile(r"^https?://[^/]+")
_QUERY = re.compile(r"\?\S*")
_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s]+", re.IGNORECASE)  # a proxy's URL may carry user:password
_MARKUP = re.compile(r"\s*<(!doctype|html|head|body)\b.*", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """Which exchange and how to reach it (``EXCHANGE``, ``EXCHANGE_BASE_URL``, ``EXCHANGE_SANDBOX``)."""

    id: str = "binance"
    base_url: str | None = None
    sandbox: bool = False
    timeout_s: float = 10.0
    rate_limit: bool = True  # ccxt's own spacing of requests by the exchange's limits (off only against a local fake)


def check_exchange_id(exchange_id: str) -> str:
    """``exchange_id`` if ccxt knows it, else ConfigError naming the closest ids."""
    ids = exchange_ids()
    wanted = exchange_id.strip().lower()
    if wanted in ids:
        return wanted
    close = difflib.get_close_matches(wanted, ids, n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"EXCHANGE={exchange_id!r} is not an exchange ccxt knows{hint} "
                      "(`trading-agent exchanges` lists them)")


def rebase_url(url: str, base: str) -> str:
    """``url`` with its scheme and host replaced by ``base`` (which may carry a path prefix); the path kept."""
    return _HOST.sub(base.rstrip("/"), url, count=1)


def rebase_urls(urls: Any, base: str) -> Any:
    """Every http(s) URL in ccxt's nested ``urls['api']`` moved onto ``base``; other values as they are."""
    if isinstance(urls, str):
        return rebase_url(urls, base) if _HOST.match(urls) else urls
    if isinstance(urls, Mapping):
        return {k: rebase_urls(v, base) for k, v in urls.items()}
    return urls


def create(spec: ExchangeSpec, credentials: Mapping[str, str] | None = None) -> Any:
    """A ccxt async exchange for ``spec``: ConfigError for an unknown id or a sandbox the exchange lacks."""
    exchange_id = check_exchange_id(spec.id)
    cls = exchange_class(exchange_id)
    config: dict[str, Any] = {"enableRateLimit": spec.rate_limit, "timeout": int(spec.timeout_s * 1000),
                              "options": dict(SPOT_OPTIONS)}
    config.update(credentials or {})
    exchange = cls(config)
    if spec.sandbox:
        try:
            if not exchange.urls.get("test"):
                raise async_support().NotSupported(exchange_id)
            exchange.set_sandbox_mode(True)
        except (async_support().NotSupported, TypeError, KeyError):
            raise ConfigError(f"EXCHANGE_SANDBOX=1: {exchange_id} has no sandbox (testnet) in ccxt") from None
    if spec.base_url:
        if not _HOST.match(spec.base_url):
            raise ConfigError(f"EXCHANGE_BASE_URL={spec.base_url!r} is not an http(s) URL")
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], spec.base_url)
    _refuse_broken_json(exchange)
    return exchange


def _refuse_broken_json(exchange: Any) -> None:
    """ccxt hands back the raw text of an answer that is not valid JSON (a truncated body parses as nothing), and
    an exchange's parser then often makes an empty list of it: "no candles", silently. Such an answer is a
    ``BadResponse`` here (retried like any bad answer), checked per request, so concurrent calls cannot mix."""
    original = exchange.fetch
    bad_response = async_support().BadResponse

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        result = await original(url, method, headers, body)
        if isinstance(result, str) and result.lstrip()[:1] in ("[", "{"):
            raise bad_response(f"{exchange.id} {method} {url} answered with malformed JSON")
        return result

    exchange.fetch = fetch


def describe(exc: BaseException) -> str:
    """One line for a ccxt error: its class and message, without hosts (a base URL may hold a proxy's password),
    query strings (a signed request's holds its signature) or an HTML error page, cut at 200 characters."""
    text = _URL_HOST.sub("", _QUERY.sub("", _MARKUP.sub("", " ".join(str(exc).split()))))[:200]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and type(cause).__name__ not in text:  # e.g. ClientConnectorError, TimeoutError
        text = f"{text} ({type(cause).__name__})".strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Delay after the ``attempt``-th (1-based) failure: ``min(2**attempt, 60)`` plus 0-25 % jitter."""
    base = min(2.0**attempt, MAX_BACKOFF_S)
    return base + rng.uniform(0.0, base * JITTER_FRACTION)


def retry_after_s(exchange: Any) -> float | None:
    """The ``Retry-After`` seconds of the exchange's last answer, if it sent one."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    raw = next((v for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    try:
        value = float(str(raw).strip()) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def retryable(exc: BaseException) -> bool:
    """ccxt's transient failures (``OperationFailed``): network, rate limit, not available, timeout, a bad or empty
    response, an exchange's internal error.
    A parse failure inside ccxt on a malformed answer (a TypeError, KeyError …) counts as a bad response."""
    ccxt = async_support()
    if isinstance(exc, ccxt.OperationFailed):  # NetworkError, BadResponse, and e.g. Binance's -1001 "Internal error"
        return True
    if isinstance(exc, ccxt.ExchangeError) and type(exc) is ccxt.ExchangeError and _is_transport(exc.__cause__):
        return True  # ccxt's wrapping of any other aiohttp error (a broken payload, a closed connection)
    return not isinstance(exc, ccxt.BaseError) and isinstance(exc, TypeError | KeyError | ValueError | IndexError
                                                               | AttributeError)


def _is_transport(exc: BaseException | None) -> bool:
    import aiohttp

    return isinstance(exc, aiohttp.ClientError)


async def call(exchange: Any, what: str, fn: Callable[[], Awaitable[T]], *, attempts: int = 5,
               sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> T:
    """``await fn()`` with up to ``attempts`` tries; ExchangeUnavailable after the last retryable failure,
    ExchangeError at once for what retrying cannot fix (a bad symbol, a refused request)."""
    rng = rng or random.Random()
    reason = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not retryable(exc):
                raise ExchangeError(f"{exchange.id} {what}: {describe(exc)}") from None
            reason = describe(exc)
            limited = isinstance(exc, async_support().DDoSProtection | async_support().RateLimitExceeded)
            wait = retry_after_s(exchange) if limited else None
        if wait is not None and wait > MAX_RETRY_AFTER_S:
            raise ExchangeUnavailable(f"{exchange.id} {what}: rate limited, the exchange asks to wait {wait:g} s")
        if attempt == attempts:
            break
        delay = wait if wait is not None else backoff_delay(attempt, rng)
        log.warning("exchange.retry", exchange=exchange.id, call=what, attempt=attempt, max_attempts=attempts,
                    delay_s=round(delay, 3), reason=reason)
        await sleep(delay)
    tries = f"after {attempts} attempts" if attempts > 1 else "(one attempt)"
    raise ExchangeUnavailable(f"{exchange.id} {what} failed {tries}: {reason}")
