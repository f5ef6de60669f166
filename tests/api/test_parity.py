"""API/chat parity: for every read command, the chat's reply and the API's JSON carry the same figures, with closed
trades, open positions (with a stop), a pending order and a changed risk limit in place. The figures are parsed from
the chat's text (as a person reads it, to the decimals shown) and compared with the API's numbers; the charts are the
same PNG, byte for byte."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.api.rig import ADMIN, ApiRig, running_api

NUMBER_RE = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def numbers(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in NUMBER_RE.findall(text)]


def shows(text: str, value: float, decimals: int) -> bool:
    """``text`` shows ``value`` as rounded to ``decimals``."""
    tolerance = 0.5 * 10.0**-decimals + 1e-9
    return any(abs(n - value) <= tolerance for n in numbers(text))


def check(text: str, figures: dict[str, tuple[float | None, int]]) -> None:
    missing = {name: value for name, (value, decimals) in figures.items()
               if value is not None and not shows(text, value, decimals)}
    assert not missing, f"the chat does not show {missing}:\n{text}"


class Scene:
    """One stack with trades and positions in place, shared by the parity tests (they only read)."""

    def __init__(self, rig: ApiRig, token: str) -> None:
        self.rig, self.token = rig, token

    async def chat(self, text: str) -> str:
        replies = await self.rig.bot.ask(ADMIN, ADMIN, text)
        assert replies, text
        return "\n".join(m.text or m.caption or "" for m in replies)

    async def api(self, path: str, **params: Any) -> Any:
        return await self.rig.get(path, self.token, **params)


async def act(rig: ApiRig, token: str, method: str, path: str, body: Any = None) -> Any:
    answer = await rig.client.request(method, f"/api/v1/{path}", json=body, headers=rig.act(token))
    assert answer.status_code in (200, 202), answer.text
    return answer.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    mp = pytest.MonkeyPatch()
    mp.setenv("PTB_TIMEDELTA", "true")
    async with running_api(tmp_path_factory.mktemp("parity")) as rig:
        token = await rig.chat_token(ADMIN)
        await act(rig, token, "PUT", "risk", {"key": "stop_loss_pct", "value": 0.05})
        for symbol, amount in (("BTCUSDT", 1000.0), ("ETHUSDT", 700.0)):  # two round trips: closed trades
            await act(rig, token, "POST", "trade", {"symbol": symbol, "side": "buy", "amount": amount})
            await rig.bot.candle()
            await act(rig, token, "POST", "trade", {"symbol": symbol, "side": "sell"})
            await rig.bot.candle(3)
        await act(rig, token, "POST", "trade", {"symbol": "BTCUSDT", "side": "buy", "amount": 1500.0})
        await rig.bot.candle(2)  # an open position with a stop
        await act(rig, token, "POST", "trade", {"symbol": "ETHUSDT", "side": "buy", "amount": 321.5})  # pending
        yield Scene(rig, token)
    mp.undo()


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_scene_has_trades_positions_a_stop_and_a_pending_order(scene: Scene) -> None:
    assert (await scene.api("trades"))["total"] == 2
    orders = await scene.api("orders")
    assert [o["notional"] for o in orders["pending"]] == [321.5]
    assert [p["kind"] for p in orders["protective"]] == ["stop_loss"]
    assert [p["symbol"] for p in (await scene.api("positions"))["positions"]] == ["BTCUSDT"]


async def test_status(scene: Scene) -> None:
    api, text = await scene.api("status"), await scene.chat("/status")
    check(text, {"equity": (api["equity"], 2), "cash": (api["cash"], 2), "open": (api["open_positions"], 0)})
    for s in api["symbols"]:
        check(text, {f"{s['symbol']} price": (s["last_price"], 2), f"{s['symbol']} held": (s["position_qty"], 8)})
    assert api["strategy"] in text and api["risk_state"] in text and ("paused" in text) == api["paused"]


async def test_balance(scene: Scene) -> None:
    api, text = await scene.api("balance"), await scene.chat("/balance")
    check(text, {k: (api[k], 2) for k in ("equity", "cash", "exposure", "starting_cash", "realized_pnl",
                                          "unrealized_pnl", "fees_paid")}
          | {"total_return %": (api["total_return"] * 100, 2)})
    assert api["fees_paid"] > 0 and api["realized_pnl"] != 0


async def test_positions(scene: Scene) -> None:
    api, text = await scene.api("positions"), await scene.chat("/positions")
    assert api["positions"]
    for p in api["positions"]:
        assert p["symbol"] in text
        check(text, {"quantity": (p["quantity"], 8), "avg_price": (p["avg_price"], 2),
                     "mark_price": (p["mark_price"], 2), "unrealized": (p["unrealized_pnl"], 2),
                     "stop": (p["stop_price"], 2)})


async def test_trades(scene: Scene) -> None:
    api, text = await scene.api("trades", limit=5), await scene.chat("/trades 5")
    assert f"of {api['total']} closed trades" in text
    for t in api["items"]:
        check(text, {"quantity": (t["quantity"], 8), "entry": (t["entry_price"], 2), "exit": (t["exit_price"], 2),
                     "pnl": (t["pnl"], 2), "pnl %": (t["pnl_pct"] * 100, 2)})
    page = await scene.api("trades", limit=1, offset=1)
    assert page["items"] == api["items"][1:2] and page["total"] == api["total"]


async def test_orders(scene: Scene) -> None:
    api, text = await scene.api("orders"), await scene.chat("/orders")
    for o in api["pending"]:
        assert o["order_id"] in text
        check(text, {"notional": (o["notional"], 2)})
    for p in api["protective"]:
        assert p["order_id"] in text
        check(text, {"level": (p["level"], 2), "quantity": (p["quantity"], 8), "mark": (p["mark_price"], 2)})


@pytest.mark.parametrize("period", ["day", "week", "month", "all"])
async def test_pnl(scene: Scene, period: str) -> None:
    api, text = await scene.api("pnl", period=period), await scene.chat(f"/pnl {period}")
    check(text, {"pnl": (api["pnl"], 2), "pnl %": (api["pnl_pct"] * 100, 2), "start": (api["start_equity"], 2),
                 "end": (api["end_equity"], 2), "trades": (api["trades"], 0), "wins": (api["wins"], 0),
                 "fees": (api["fees"], 2)})


async def test_daily(scene: Scene) -> None:
    api, text = await scene.api("daily", days=3), await scene.chat("/daily 3")
    for d in api["days"]:
        assert d["day"] in text
        check(text, {"pnl": (d["pnl"], 2), "pnl %": (d["pnl_pct"] * 100, 2), "equity": (d["end_equity"], 2)})


@pytest.mark.parametrize("by", ["symbol", "tags"])
async def test_performance(scene: Scene, by: str) -> None:
    api = await scene.api("performance", by=by)
    text = await scene.chat("/performance" + (" tags" if by == "tags" else ""))
    assert api["items"]
    for row in api["items"]:
        assert row["name"] in text
        if row["trades"]:
            check(text, {"trades": (row["trades"], 0), "pnl": (row["pnl"], 2),
                         "win rate %": (row["win_rate"] * 100, 0), "avg %": (row["avg_pnl_pct"] * 100, 2)})


async def test_risk(scene: Scene) -> None:
    api, text = await scene.api("risk"), await scene.chat("/risk")
    assert api["limits"]["stop_loss_pct"] == 0.05
    for key, value in api["limits"].items():
        assert key in text
        check(text, {key: (value, 6)})


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
async def test_signal(scene: Scene, symbol: str) -> None:
    api, text = await scene.api(f"signal/{symbol}"), await scene.chat(f"/signal {symbol}")
    assert api["model"] in text and ("yes" in text) == api["would_trade"]
    check(text, {"confidence %": (api["last"]["confidence"] * 100, 0), "held": (api["position_qty"] or None, 8)})
    for reason in api["reasons"]:
        assert reason in text
    listed = (await scene.api("signals"))["signals"]
    assert [s for s in listed if s["symbol"] == symbol] == [api]


async def test_strategy(scene: Scene) -> None:
    api, text = await scene.api("strategy"), await scene.chat("/strategy")
    assert api["name"] in text
    for p in api["params"]:
        assert f"{p['name']} = {p['value']}" in text
    for s in api["stops"]:
        check(text, {s["name"]: (s["value"] * 100 or None, 2)})


async def test_models(scene: Scene) -> None:
    api, text = await scene.api("models"), await scene.chat("/model")
    for m in api["models"]:
        assert m["symbol"] in text and m["name"] in text


async def test_health(scene: Scene) -> None:
    details, text = await scene.api("health/details"), await scene.chat("/health")
    assert ("Health: OK" in text) == details["ok"] == (await scene.rig.client.get("/api/v1/health")).json()["ok"]
    check(text, {"alert backlog": (details["outbox_backlog"], 0)})
    for symbol in details["last_candle_age_s"]:
        assert symbol in text and (f"{symbol}: last candle" in text)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def photo_sha(scene: Scene, text: str) -> str:
    replies = await scene.rig.bot.ask(ADMIN, ADMIN, text)
    (photo,) = [m for m in replies if m.photo is not None]
    assert photo.photo is not None
    return sha(photo.photo)


async def test_charts_are_the_chat_charts(scene: Scene) -> None:
    rig, auth = scene.rig, scene.rig.auth(scene.token)
    price = await rig.client.get("/api/v1/charts/price/BTCUSDT.png", params={"candles": 50}, headers=auth)
    equity = await rig.client.get("/api/v1/charts/equity.png", params={"period": "all"}, headers=auth)
    assert price.headers["content-type"] == equity.headers["content-type"] == "image/png"
    assert sha(price.content) == await photo_sha(scene, "/chart BTCUSDT 50")
    assert sha(equity.content) == await photo_sha(scene, "/equity all")


async def test_the_parity_helpers_can_fail() -> None:
    assert shows("Equity: 10,012.35", 10012.349, 2) and not shows("Equity: 10,012.35", 10012.36, 2)
    with pytest.raises(AssertionError):
        check("PnL +1.00", {"pnl": (-1.0, 2)})
    assert Path(__file__).name == "test_parity.py"
