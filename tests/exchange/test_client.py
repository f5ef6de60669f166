"""The ccxt layer's own parts: loading one exchange, moving its hosts, naming a wrong id, retrying what is worth it."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from engine.errors import ConfigError, ExchangeError, ExchangeUnavailable
from engine.exchange import client
from engine.exchange.client import ExchangeSpec, check_exchange_id, describe, rebase_urls
from engine.exchange.loader import async_support, exchange_class


def test_only_the_configured_exchange_is_loaded() -> None:
    """In a fresh interpreter: binance's class, no other exchange module (sync or async)."""
    code = ("import sys; from engine.exchange.loader import exchange_class; c = exchange_class('binance'); "
            "import ccxt.async_support as a; "
            "mods = [m for m in sys.modules if m.startswith('ccxt.') and m.count('.') == 1 "
            "and m.split('.')[1] in a.exchanges] + [m for m in sys.modules if m.startswith('ccxt.async_support.') "
            "and m.count('.') == 2 and m.split('.')[2] in a.exchanges]; print(sorted(mods)); "
            "print(c().id, a.NetworkError.__name__, a.kraken().id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "['ccxt.async_support.binance']", out
    assert out[1] == "binance NetworkError kraken"  # and any other class still loads when named


def test_a_submodule_import_does_not_hide_a_class() -> None:
    exchange_class("okxus")  # imports the okx module, which sets the package's attribute to the module
    assert exchange_class("okx") is async_support().okx
    assert isinstance(async_support().okx, type)


def test_an_unknown_exchange_names_close_ids() -> None:
    with pytest.raises(ConfigError, match=r"'binanse' is not an exchange ccxt knows; did you mean binance"):
        check_exchange_id("binanse")
    with pytest.raises(ConfigError, match="trading-agent exchanges"):
        check_exchange_id("zzzzqqq")
    assert check_exchange_id(" OKX ") == "okx"


def test_the_base_url_moves_every_rest_host_and_keeps_the_paths() -> None:
    urls = {"public": "https://api.binance.com/api/v3", "sapi": "https://api.binance.com/sapi/v1",
            "fapiPublic": "https://fapi.binance.com/fapi/v1", "ws": "wss://stream.binance.com:9443/ws", "n": 3}
    moved = rebase_urls(urls, "http://127.0.0.1:8081/")
    assert moved == {"public": "http://127.0.0.1:8081/api/v3", "sapi": "http://127.0.0.1:8081/sapi/v1",
                     "fapiPublic": "http://127.0.0.1:8081/fapi/v1", "ws": "wss://stream.binance.com:9443/ws", "n": 3}
    assert rebase_urls({"rest": "https://www.okx.com"}, "http://proxy:1/okx") == {"rest": "http://proxy:1/okx"}


def test_create_moves_the_hosts_keeps_spot_and_refuses_what_cannot_be() -> None:
    ex = client.create(ExchangeSpec("binance", base_url="http://127.0.0.1:9"))
    assert ex.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"
    assert ex.options["defaultType"] == "spot"
    with pytest.raises(ConfigError, match="not an http"):
        client.create(ExchangeSpec("binance", base_url="ftp://x"))
    sandboxed = client.create(ExchangeSpec("binance", sandbox=True))
    assert "testnet" in sandboxed.urls["api"]["public"]
    with pytest.raises(ConfigError, match="has no sandbox"):
        client.create(ExchangeSpec("upbit", sandbox=True))


def test_an_error_line_never_carries_a_query_string() -> None:
    ccxt = async_support()
    exc = ccxt.ExchangeNotAvailable("binance GET http://h/api/v3/order?symbol=X&signature=abc123 503 Service")
    assert describe(exc) == "ExchangeNotAvailable: binance GET /api/v3/order 503 Service"
    page = ccxt.ExchangeNotAvailable("okx GET https://u:pw@proxy:8/api/v5/x 502 Bad Gateway <html><body>x</body>")
    assert describe(page) == "ExchangeNotAvailable: okx GET /api/v5/x 502 Bad Gateway"


class _Ex:
    def __init__(self) -> None:
        self.id = "fakeex"
        self.last_response_headers: dict[str, str] = {}


async def test_retryable_errors_are_retried_with_backoff_then_reported() -> None:
    ccxt = async_support()
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ccxt.RequestTimeout("timed out")
        return 7

    assert await client.call(_Ex(), "x", flaky, attempts=5, sleep=sleep, rng=random.Random(1)) == 7
    assert len(delays) == 2 and 2 <= delays[0] <= 2.5 and 4 <= delays[1] <= 5

    async def down() -> int:
        raise ccxt.ExchangeNotAvailable("503")

    with pytest.raises(ExchangeUnavailable, match="after 3 attempts: ExchangeNotAvailable: 503"):
        await client.call(_Ex(), "x", down, attempts=3, sleep=sleep)

    async def bad_symbol() -> int:
        raise ccxt.BadSymbol("no such market")

    delays.clear()
    with pytest.raises(ExchangeError, match="BadSymbol") as info:
        await client.call(_Ex(), "x", bad_symbol, attempts=3, sleep=sleep)
    assert not isinstance(info.value, ExchangeUnavailable) and delays == []


async def test_a_rate_limit_waits_what_the_exchange_asks() -> None:
    ccxt = async_support()
    ex = _Ex()
    ex.last_response_headers = {"Retry-After": "7"}
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    async def limited() -> int:
        raise ccxt.RateLimitExceeded("429")

    with pytest.raises(ExchangeUnavailable):
        await client.call(ex, "x", limited, attempts=2, sleep=sleep)
    assert delays == [7.0]
    ex.last_response_headers = {"retry-after": "3600"}
    with pytest.raises(ExchangeUnavailable, match="asks to wait 3600 s"):
        await client.call(ex, "x", limited, attempts=5, sleep=sleep)


def test_the_exchanges_command_lists_ids_and_which_have_candles() -> None:
    done = subprocess.run([sys.executable, "-m", "engine.cli", "exchanges", "--ohlcv"], capture_output=True,
                          text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "ohlcv"]
    ids = {line.split()[0] for line in lines[1:]}
    assert {"binance", "okx", "kraken"} <= ids and all(line.endswith("yes") for line in lines[1:])
    assert "with candle history" in done.stderr and "Traceback" not in done.stderr
    just_ids = subprocess.run([sys.executable, "-m", "engine.cli", "exchanges", "--ids"], capture_output=True,
                              text=True, timeout=60, check=True).stdout.split()
    assert set(just_ids) >= ids and len(just_ids) > len(ids)  # some exchanges have no candles in ccxt


def test_symbols_in_the_trading_config_may_be_written_as_ccxt_writes_them() -> None:
    from config.settings import TradingSection

    assert TradingSection(symbols=["btc/usdt", "ETH-USDT", "SOLUSDT"]).symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    for bad in ("BTC/", "/USDT", "BTC/US DT"):
        with pytest.raises(ValueError, match="must look like BTC/USDT or BTCUSDT"):
            TradingSection(symbols=[bad])
