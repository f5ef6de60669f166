"""Fuzzed JSON bodies, raw bodies, headers, path and query parameters against the real API over the real engine:
0 crashes (never a 500, always the one-line ``{"error", "detail"}`` for a refusal) and 0 state changes (equity,
cash, positions, pending orders, risk limits, the core's state: ``Harness.state``).

Hypothesis drives synchronous tests, so the stack runs in one ``asyncio.Runner`` kept for the module (as
tests/bot/test_fuzz.py does); requests go through httpx's ASGI transport into the same app the socket serves (the
network adds nothing here; tests/api/test_actions.py and the others go through the socket). An input that is a
legitimate change (a valid buy of a traded symbol, a valid risk limit) is left out: it is meant to change state.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.api.models import RiskIn, TradeIn
from tests.api.rig import ADMIN, SYMBOLS, ApiRig, running_api
from tests.bot.test_fuzz import SPECIAL, Stack

EXAMPLES = 200

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(), st.text(max_size=40), st.sampled_from(SPECIAL))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=12)
words = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=30))
trade_bodies = st.one_of(json_values, st.fixed_dictionaries(
    {}, optional={"symbol": st.one_of(st.sampled_from(["BTCUSDT", "btcusdt", "ETHUSDT", "DOGEUSDT"]), scalars),
                  "side": st.one_of(st.sampled_from(["buy", "SELL", "Buy", "short", ""]), scalars),
                  "amount": scalars, "confidence": scalars, "extra": scalars}))
risk_bodies = st.one_of(json_values, st.fixed_dictionaries(
    {}, optional={"key": st.one_of(st.sampled_from(["stop_loss_pct", "position_fraction", "leverage"]), scalars),
                  "value": scalars}))
GETS = ["status", "balance", "positions", "trades", "orders", "pnl", "daily", "performance", "risk", "signals",
        "strategy", "models", "health", "health/details", "charts/equity.png"]
params = st.dictionaries(st.sampled_from(["limit", "offset", "period", "days", "by", "candles", "x", "token"]),
                         words, max_size=3)
keys = st.one_of(st.uuids().map(str), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                              min_size=1, max_size=200))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mp = pytest.MonkeyPatch()
    mp.setenv("PTB_TIMEDELTA", "true")
    s = Stack(running_api(tmp_path_factory.mktemp("fuzz")))  # type: ignore[arg-type]
    rig: ApiRig = s.harness  # type: ignore[assignment]
    s.run(rig.bot.candle(2))
    s.token = s.run(rig.chat_token(ADMIN))  # type: ignore[attr-defined]
    s.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.server.app),  # type: ignore[attr-defined]
                                 base_url="http://api")
    try:
        yield s
    finally:
        s.run(s.client.aclose())  # type: ignore[attr-defined]
        s.close()
        mp.undo()


def legit_trade(body: Any) -> bool:
    try:
        order = TradeIn.model_validate(body)
    except ValidationError:
        return False
    return (order.side == "buy" and isinstance(order.symbol, str) and order.symbol.strip().upper() in SYMBOLS
            and order.amount is not None and order.amount > 0)


def legit_risk(rig: ApiRig, body: Any) -> bool:
    try:
        change = RiskIn.model_validate(body)
    except ValidationError:
        return False
    return rig.bot.engine.facade.check_risk(change.key, change.value) is None


async def request(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    rig: ApiRig = stack.harness  # type: ignore[assignment]
    before = await rig.bot.state()
    if "json" in kwargs:  # NaN and Infinity too, as Python's json (and Starlette's parser) reads them
        kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
        kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
    answer = await stack.client.request(method, f"/api/v1/{path}", **kwargs)  # type: ignore[attr-defined]
    assert answer.status_code < 500, (method, path, kwargs, answer.status_code, answer.text)
    if answer.status_code >= 400:
        problem = answer.json()
        assert set(problem) == {"error", "detail"} and "\n" not in problem["detail"], answer.text
        assert "Traceback" not in answer.text
    assert await rig.bot.state() == before, (method, path, kwargs, answer.text)
    return answer


def run(stack: Stack, coro: Any) -> Any:
    return stack.run(coro)


def headers(stack: Stack, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token}", "Idempotency-Key": key or str(uuid.uuid4())}  # type: ignore


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(body=trade_bodies, key=keys)
def test_trade_bodies(stack: Stack, body: Any, key: str) -> None:
    assume(not legit_trade(body))
    run(stack, request(stack, "POST", "trade", json=body, headers=headers(stack, key)))


@FUZZ
@given(body=risk_bodies)
def test_risk_bodies(stack: Stack, body: Any) -> None:
    assume(not legit_risk(stack.harness, body))  # type: ignore[arg-type]
    run(stack, request(stack, "PUT", "risk", json=body, headers=headers(stack)))


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode), path=st.sampled_from(
    ["trade", "risk", "close/BTCUSDT", "close-all", "orders/x"]))
def test_raw_bodies(stack: Stack, raw: bytes, path: str) -> None:
    method = "PUT" if path == "risk" else "DELETE" if path.startswith("orders") else "POST"
    run(stack, request(stack, method, path, content=raw,
                       headers={**headers(stack), "Content-Type": "application/json"}))


@FUZZ
@given(symbol=words, order_id=words)
def test_path_parameters(stack: Stack, symbol: str, order_id: str) -> None:
    from urllib.parse import quote

    assume(symbol.strip() and order_id.strip())
    for method, path in (("GET", f"signal/{quote(symbol, safe='')}"), ("POST", f"close/{quote(symbol, safe='')}"),
                         ("DELETE", f"orders/{quote(order_id, safe='')}"),
                         ("GET", f"charts/price/{quote(symbol, safe='')}.png")):
        extra = {"params": {"candles": 10}} if "charts" in path else {}
        run(stack, request(stack, method, path, headers=headers(stack), **extra))


@FUZZ
@given(path=st.sampled_from(GETS), query=params)
def test_query_parameters(stack: Stack, path: str, query: dict[str, str]) -> None:
    answer = run(stack, request(stack, "GET", path, params=query, headers=headers(stack)))
    assert answer.status_code in (200, 422)


def test_the_checks_can_fail() -> None:
    assert legit_trade({"symbol": "btcusdt", "side": "BUY", "amount": 5})
    assert not legit_trade({"symbol": "BTCUSDT", "side": "buy", "amount": math.nan})
