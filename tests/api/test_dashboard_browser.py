"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against the real engine and the
real API on real uvicorn (``tests.api.rig``). An admin logs in, sees the equity chart and the positions, gets an
engine fill over the WebSocket in the feed, and closes a position with its button (the confirm dialog accepted):
the engine's positions are then empty. A viewer's page has no action buttons. The JSON series the charts draw
carry the facade's figures.

Chromium is required: without it this fails with a clear message (``.ci/run`` installs it), unless
``DASHBOARD_BROWSER=skip`` says to skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.core.types import Refusal
from tests.api.rig import ADMIN, VIEWER, ApiRig, running_api
from tests.engine.helpers import wait_until

CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 10_000


def chromium() -> str:
    """The browser's path; a clear failure when it is missing (a skip only when DASHBOARD_BROWSER=skip)."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path is None:
        why = (f"no Chromium at {CHROMIUM} or on PATH: install Debian's chromium (apt-get install -y chromium; "
               ".ci/run does) or set DASHBOARD_BROWSER=skip")
        if os.environ.get("DASHBOARD_BROWSER") == "skip":
            pytest.skip(why)
        pytest.fail(why, pytrace=False)
    return path


async def send(rig: ApiRig, token: str, path: str, body: Any = None) -> Any:
    answer = await rig.client.post(f"/api/v1/{path}", json=body, headers=rig.act(token))
    assert answer.status_code == 202, answer.text
    return answer.json()


async def trading(rig: ApiRig, admin: str) -> None:
    """A closed ETHUSDT round trip, then open BTCUSDT and ETHUSDT positions."""
    await send(rig, admin, "trade", {"symbol": "ETHUSDT", "side": "buy", "amount": 600})
    await rig.bot.candle()
    await send(rig, admin, "close/ETHUSDT")
    await rig.bot.candle()
    await send(rig, admin, "trade", {"symbol": "BTCUSDT", "side": "buy", "amount": 800})
    await send(rig, admin, "trade", {"symbol": "ETHUSDT", "side": "buy", "amount": 300})
    await rig.bot.candle(2)
    assert {p.symbol for p in rig.bot.engine.facade.positions()} == {"BTCUSDT", "ETHUSDT"}


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    path = chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def logged_in(browser: Any, rig: ApiRig, token: str) -> Any:
    """A page of its own (its own sessionStorage) after the login form took ``token``."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    failures: list[str] = []
    page.on("requestfailed", lambda request: failures.append(request.url))
    page.on("pageerror", lambda error: failures.append(f"script error: {error}"))
    await page.goto(rig.base_url + "/")
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#live.ok")  # the WebSocket said ready
    page.failures = failures
    return page


async def test_an_admin_sees_the_charts_gets_a_fill_live_and_closes_a_position(tmp_path: Path) -> None:
    chromium()
    async with running_api(tmp_path) as rig, browser() as b:
        admin, viewer = await rig.chat_token(ADMIN), await rig.chat_token(VIEWER)
        await trading(rig, admin)
        facade = rig.bot.engine.facade
        page = await logged_in(b, rig, admin)

        assert await page.text_content("#role") == "signed in as admin"
        row = page.locator('#positions tr[data-symbol="BTCUSDT"]')
        await row.locator("button.close").wait_for()
        (btc,) = [p for p in facade.positions() if p.symbol == "BTCUSDT"]
        assert await row.locator("td").nth(1).text_content() == f"{btc.quantity:,.8f}".rstrip("0").rstrip(".")
        await page.wait_for_selector("#trades tbody tr:not(.empty)")
        assert "ETHUSDT" in (await page.text_content("#trades tbody") or "")
        canvas = page.locator("#equity-chart canvas").first
        await canvas.wait_for()
        box = await canvas.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, box
        assert await page.evaluate("() => document.querySelectorAll('#price-chart canvas').length") > 0
        assert await page.is_visible("#pause") and await page.is_visible("#resume")
        if os.environ.get("DASHBOARD_SCREENSHOT"):  # a path: what the admin saw, to look at
            await page.set_viewport_size({"width": 1280, "height": 1400})
            await page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)

        filled = await send(rig, admin, "close/ETHUSDT")  # the fill itself is the engine's, at the next candle
        order_id = filled["orders"][0]["order_id"]
        await rig.bot.candle()
        item = page.locator(f'#feed li[data-event="OrderFilled"][data-order-id="{order_id}"]')
        await item.wait_for()
        assert "ETHUSDT" in (await item.text_content() or "") and "sell" in (await item.text_content() or "")

        view = await logged_in(b, rig, viewer)
        await view.locator('#positions tr[data-symbol="BTCUSDT"]').wait_for()
        assert await view.text_content("#role") == "signed in as viewer"
        assert await view.locator("#positions button").count() == 0
        assert await view.is_hidden("#admin-actions")
        assert await view.locator("#dashboard button:visible").all_text_contents() == ["Log out"]

        dialogs: list[str] = []

        async def accept(dialog: Any) -> None:
            dialogs.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await row.locator("button.close").click()
        await wait_until(lambda: any(o.symbol == "BTCUSDT" for o in facade.orders().pending), timeout=WAIT_MS / 1000)
        assert len(dialogs) == 1 and "BTCUSDT" in dialogs[0]
        await rig.bot.candle()
        assert list(facade.positions()) == []
        await page.locator('#positions tr[data-symbol="BTCUSDT"]').wait_for(state="detached")
        assert page.failures == [] and view.failures == []


async def test_the_series_the_charts_draw_are_the_facades(tmp_path: Path) -> None:
    async with running_api(tmp_path) as rig:
        admin = await rig.chat_token(ADMIN)
        await trading(rig, admin)
        facade = rig.bot.engine.facade
        equity = await facade.equity_chart("all")
        assert len(equity.ts) >= 2
        assert await rig.get("series/equity", admin) == {"ts": list(equity.ts), "equity": list(equity.equity),
                                                          "drawdown": list(equity.drawdown)}
        price = await facade.price_chart_with_trades("ETHUSDT", 50)
        assert not isinstance(price, Refusal)
        got = await rig.get("series/price/ethusdt", admin, candles=50)
        assert (got["symbol"], got["ts"], got["close"]) == ("ETHUSDT", list(price.ts), list(price.close))
        assert [(t["entry_time"], t["exit_time"], t["pnl"]) for t in got["trades"]] == [
            (t.entry_time, t.exit_time, t.pnl) for t in price.trades] and len(got["trades"]) == 1
        assert price.open_entry is not None
        assert got["open_entry"] == {"ts": price.open_entry[0], "price": price.open_entry[1]}
        missing = await rig.client.get("/api/v1/series/price/DOGEUSDT", headers=rig.auth(admin))
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_symbol"
        assert (await rig.client.get("/api/v1/series/equity")).status_code == 401
        page = await rig.client.get("/")
        assert page.status_code == 200 and "dashboard.js" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("dashboard.js", "dashboard.css", "vendor/lightweight-charts.standalone.production.js"):
            assert (await rig.client.get(f"/static/{asset}")).status_code == 200, asset
