"""The exchange's rules in the chat, end to end (the real engine and the real PTB Application on the Bot API
emulator): an order that breaks a rule is refused before it is placed, with the rule and the numbers; a sell that
leaves less than the minimum closes the position, and what it leaves shows under /balance as dust, not under
/positions; a fill the rules stop is announced with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot import render
from engine.core.clock import SimClock
from engine.core.model import CandleArrays
from engine.core.rules import MarketRules
from engine.events import OrderCancelled
from engine.feeds.replay import ReplayFeed
from engine.feeds.synthetic import DEFAULT_START_MS
from engine.views import BalanceView, DustView, OrderAck
from tests.bot.harness import ADMIN, STEP_MS, TF, VIEWER, WARMUP, Harness, running_bot

SYMBOL = "BTCUSDT"
RULES = MarketRules(SYMBOL, amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_notional=5.0, base="BTC",
                    quote="USDT")


def flat(n: int, price: float = 30_000.0) -> CandleArrays:
    ts = DEFAULT_START_MS + np.arange(n, dtype=np.int64) * STEP_MS
    p = np.full(n, price)
    return CandleArrays(ts, p.copy(), p.copy(), p.copy(), p.copy(), np.ones(n))


async def confirmed(bot: Harness, text: str) -> None:
    (prompt,) = await bot.ask(ADMIN, ADMIN, text)
    assert prompt.button_labels() == ["Yes", "No"], prompt.text
    assert (await bot.press(ADMIN, ADMIN, prompt, "Yes")).text == "Confirmed."


async def test_an_order_below_the_minimum_is_refused_with_the_rule_and_the_numbers(tmp_path: Path) -> None:
    async with running_bot(tmp_path, symbols=(SYMBOL,)) as bot:
        bot.engine.engine.set_rules({SYMBOL: RULES})
        await bot.candle()
        before = await bot.state()
        assert [m.text for m in await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 1")] == [
            "Refused: 1 USDT is below the exchange's minimum order of 5 USDT"]
        assert len(bot.app.bot_data.confirmations) == 0 and await bot.state() == before  # nothing was placed
        assert await bot.engine.store.pending_orders() == []
        (ok,) = await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 10")  # within the rules: asked to confirm
        assert ok.button_labels() == ["Yes", "No"]
        assert bot.errors_seen == 0


async def test_a_sell_leaving_less_than_the_minimum_shows_dust_in_balance_not_a_position(tmp_path: Path) -> None:
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP_MS)
    feeds = {SYMBOL: ReplayFeed(flat(500), SYMBOL, TF, clock)}
    async with running_bot(tmp_path, symbols=(SYMBOL,), feeds=dict(feeds), clock=clock) as bot:
        bot.engine.engine.set_rules({SYMBOL: RULES})
        await bot.candle()
        await confirmed(bot, "/buy BTCUSDT 1000")
        await bot.candle()
        (held,) = bot.engine.facade.positions()
        assert held.quantity == 0.03328  # 1,000 / (30,015 * 1.001) (5 bps of slippage), down to the 0.00001 step
        await confirmed(bot, "/sell BTCUSDT 996.8")  # 0.03324 BTC at 29,985: 0.00004 would be left, below 0.0001
        await bot.candle()
        assert [m.text for m in await bot.ask(VIEWER, VIEWER, "/positions")] == ["PAPER: no open positions."]
        (balance,) = await bot.ask(VIEWER, VIEWER, "/balance")
        assert balance.text is not None
        assert ("Dust (below the exchange's minimum order, in equity, not a position):\n"
                "• BTC 0.00004 (BTCUSDT), worth 1.20 USDT at 30,000.00") in balance.text
        view = bot.engine.facade.balance()
        assert view.dust == (DustView(SYMBOL, "BTC", 0.00004, 30_000.0, 0.00004 * 30_000.0, "USDT"),)
        assert f"Equity: {render.money(view.equity)}" in balance.text
        (status,) = await bot.ask(VIEWER, VIEWER, "/status")
        assert status.text is not None and "Open positions: 0" in status.text
        assert bot.errors_seen == 0


async def test_a_fill_the_rules_stop_is_announced_with_its_reason(tmp_path: Path) -> None:
    candles = flat(500)
    k = WARMUP + 2  # the candle the sell would fill on opens at 20,000
    for column in (candles.open, candles.high, candles.low, candles.close):
        column[k:] = 20_000.0
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP_MS)
    async with running_bot(tmp_path, symbols=(SYMBOL,), feeds={SYMBOL: ReplayFeed(candles, SYMBOL, TF, clock)},
                           clock=clock) as bot:
        bot.engine.engine.set_rules({SYMBOL: RULES})
        await bot.candle()
        await confirmed(bot, "/buy BTCUSDT 40")
        await bot.candle()
        sell = await bot.engine.facade.sell(SYMBOL, None, quantity=0.0002)  # 6 USDT at 30,000
        assert isinstance(sell, OrderAck) and sell.quantity == 0.0002
        await bot.candle()
        alerts = [d.event for d in await bot.engine.store.pending_deliveries() if d.chat_id == ADMIN]
        (dropped,) = [e for e in alerts if isinstance(e, OrderCancelled)]
        text = render.alert_text(dropped)
        assert "cancelled</b> before it filled" in text and "by exchange rules" in text
        assert "0.0002 BTC at 19990 is 3.998 USDT, below the exchange's minimum order of 5 USDT" in text
        assert bot.engine.facade.positions()[0].quantity == 0.00133  # nothing was sold


def test_balance_without_dust_reads_as_before() -> None:
    view = BalanceView("paper", 100.0, 100.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0)
    assert "Dust" not in render.balance(view)
