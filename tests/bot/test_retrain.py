"""/retrain, /model and /signal end to end, and the facade checks the bot relies on (/close, /alerts, /chart).

The model strategy runs on a replay of real ETH/BTC 5-minute candles (2,000 held by the engine), with its
models folder in ``tmp_path``: /retrain really trains CatBoost walk-forward in a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.settings import TradingConfig
from engine.core.clock import SimClock
from engine.events import ALERT_KINDS
from engine.feeds.base import Feed
from engine.feeds.replay import ReplayFeed
from engine.models.registry import ModelRegistry
from tests.bot.harness import ADMIN, VIEWER, Harness, running_bot
from tests.engine.helpers import real_candles

SYMBOL = "ETHBTC"


@pytest.fixture
async def model_bot(tmp_path: Path) -> AsyncIterator[Harness]:
    candles = real_candles("ETH_BTC-5m.csv")
    clock = SimClock(int(candles.ts[2000]))
    config = TradingConfig.model_validate({"trading": {"symbols": [SYMBOL], "strategy": "model"},
                                           "feed": {"history": 2000}})
    feeds: dict[str, Feed] = {SYMBOL: ReplayFeed(candles, SYMBOL, "5m", clock, history=2000)}
    async with running_bot(tmp_path, symbols=(SYMBOL,), config=config, feeds=feeds, clock=clock) as harness:
        yield harness


def model_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "models"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---------------------------------------------------------------------------- /retrain


async def test_retrain_is_refused_for_the_rule_strategy_with_its_reason(bot: Harness) -> None:
    before = await bot.state()
    (reply,) = await bot.ask(ADMIN, ADMIN, "/retrain btcusdt")
    assert reply.text is not None and reply.text.startswith("Refused: the strategy is sma-cross(400,500), a rule")
    assert 'trading.strategy = "model"' in reply.text
    assert reply.reply_markup is None  # refused before any confirmation
    assert len(bot.app.bot_data.confirmations) == 0
    assert await bot.state() == before
    assert bot.errors_seen == 0


async def test_retrain_yes_reports_out_of_sample_metrics_and_model_shows_the_new_model(
        model_bot: Harness, tmp_path: Path) -> None:
    bot = model_bot
    (model_before,) = await bot.ask(ADMIN, ADMIN, "/model")
    assert model_before.text is not None  # NoModel, with its reason
    assert f"{SYMBOL}: no model (no new entries): no active model for {SYMBOL}" in model_before.text

    (signal_before,) = await bot.ask(VIEWER, VIEWER, f"/signal {SYMBOL}")
    assert signal_before.text is not None and "Would trade now: no" in signal_before.text
    assert f"no model, so no new entries: no active model for {SYMBOL}" in signal_before.text

    (prompt,) = await bot.ask(ADMIN, ADMIN, f"/retrain {SYMBOL}")
    assert prompt.button_labels() == ["Yes", "No"]
    assert prompt.text is not None and f"Retrain the model of {SYMBOL}" in prompt.text
    answer = await bot.press(ADMIN, ADMIN, prompt, "Yes")
    assert answer.text == "Confirmed."

    done = bot.message(ADMIN, prompt.message_id)
    # shown at once while it trained (the buttons gone), then edited in place with the outcome
    assert [r.text for r in done.revisions][-1] == (
        f"Retraining {SYMBOL}… this takes a while; trading goes on meanwhile.")
    assert done.revisions[-1].reply_markup is None and done.reply_markup is None
    text = done.text or ""
    assert text.startswith(f"Retrained {SYMBOL} on 2,000 candles"), text
    assert "out of sample" in text
    auc = re.search(r"AUC (\d\.\d{3})", text)
    assert auc is not None and 0.0 < float(auc.group(1)) < 1.0
    assert re.search(r"accuracy \d+\.\d% vs baseline \d+\.\d%", text)
    assert re.search(r"strategy [+-]?\d+\.\d+% vs buy-and-hold [+-]?\d+\.\d+%", text)
    path = re.search(r"New model, now active: (\S+)", text)
    assert path is not None and path.group(1) in {str(p.parent) for p in model_files(tmp_path)}
    active = ModelRegistry(tmp_path / "models").active()
    assert isinstance(active, dict) and Path(active[SYMBOL]).name == Path(path.group(1)).name
    assert bot.errors_seen == 0

    (model_after,) = await bot.ask(VIEWER, VIEWER, "/model")
    shown = model_after.text or ""
    assert "no model" not in shown
    assert f"{Path(path.group(1)).name} (catboost, {SYMBOL} 5m)" in shown
    assert "trained on" in shown and "out of sample: AUC" in shown
    assert f"health of {Path(path.group(1)).name}: healthy" in shown

    await bot.candle()  # the new model decides on the next candle
    (signal,) = await bot.ask(VIEWER, VIEWER, f"/signal {SYMBOL}")
    assert signal.text is not None and "confidence" in signal.text and "Would trade now:" in signal.text
    assert "no model" not in signal.text and "degraded" not in signal.text
    assert bot.errors_seen == 0


async def test_viewer_cannot_retrain(model_bot: Harness, tmp_path: Path) -> None:
    model = model_bot.engine.engine.symbols[SYMBOL].model
    (reply,) = await model_bot.ask(VIEWER, VIEWER, f"/retrain {SYMBOL}")
    assert reply.text is not None and reply.text.startswith("Only an admin may use /retrain")
    assert reply.reply_markup is None
    assert model_bot.engine.engine.symbols[SYMBOL].model is model
    assert model_files(tmp_path) == []


async def test_retrain_no_changes_nothing(model_bot: Harness, tmp_path: Path) -> None:
    bot = model_bot
    model = bot.engine.engine.symbols[SYMBOL].model
    (prompt,) = await bot.ask(ADMIN, ADMIN, f"/retrain {SYMBOL}")
    assert (await bot.press(ADMIN, ADMIN, prompt, "No")).text == "Cancelled."
    assert (bot.message(ADMIN, prompt.message_id).text or "").endswith("Cancelled: nothing was done.")
    assert bot.engine.engine.symbols[SYMBOL].model is model
    assert model_files(tmp_path) == []
    assert ModelRegistry(tmp_path / "models").active() == {}
    (again,) = await bot.ask(ADMIN, ADMIN, "/model")
    assert again.text is not None and "no model" in again.text
    assert bot.errors_seen == 0


async def test_retrain_needs_one_known_symbol(model_bot: Harness) -> None:
    for text in ("/retrain", f"/retrain {SYMBOL} {SYMBOL}", "/retrain DOGEUSDT"):
        (reply,) = await model_bot.ask(ADMIN, ADMIN, text)
        assert reply.text is not None and "Usage: /retrain SYMBOL" in reply.text and reply.reply_markup is None


# ---------------------------------------------------------------------------- /close, /alerts, /chart


async def test_close_is_refused_before_the_prompt_while_an_order_is_pending(bot: Harness) -> None:
    await bot.candle()
    (none_held,) = await bot.ask(ADMIN, ADMIN, "/close BTCUSDT")
    assert none_held.text == "Refused: no BTCUSDT position to close" and none_held.reply_markup is None
    (nothing,) = await bot.ask(ADMIN, ADMIN, "/close all")
    assert nothing.text == "Refused: there are no open positions"

    (buy,) = await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 3000")
    await bot.press(ADMIN, ADMIN, buy, "Yes")
    await bot.candle()  # filled at this candle's open
    (prompt,) = await bot.ask(ADMIN, ADMIN, "/close BTCUSDT")
    assert prompt.button_labels() == ["Yes", "No"]
    await bot.press(ADMIN, ADMIN, prompt, "Yes")  # the close is queued for the next open

    before = await bot.state()
    (again,) = await bot.ask(ADMIN, ADMIN, "/close BTCUSDT")
    assert again.text == "Refused: an order for BTCUSDT is already pending" and again.reply_markup is None
    (all_pending,) = await bot.ask(ADMIN, ADMIN, "/close all")
    assert all_pending.text == "Refused: an order is already pending for BTCUSDT"
    assert await bot.state() == before
    await bot.candle()
    assert bot.engine.facade.positions() == ()
    assert bot.errors_seen == 0


async def test_alert_modes_cover_every_kind(bot: Harness) -> None:
    facade = bot.engine.facade
    assert await facade.alert_modes(4242) == dict.fromkeys(ALERT_KINDS, "on")
    await facade.set_alert_mode(4242, "order_filled", "silent")
    modes = await facade.alert_modes(4242)
    assert tuple(modes) == ALERT_KINDS and modes["order_filled"] == "silent"
    (reply,) = await bot.ask(ADMIN, ADMIN, "/alerts")
    assert reply.text is not None and all(f"• {kind}: on" in reply.text for kind in ALERT_KINDS)


async def test_chart_period_uses_the_facade_timeframe(model_bot: Harness) -> None:
    assert model_bot.engine.facade.timeframe_ms == 300_000
    (chart,) = await model_bot.ask(ADMIN, ADMIN, f"/chart {SYMBOL} day")
    assert chart.caption is not None and "last 288 candles" in chart.caption  # a day of 5-minute candles
