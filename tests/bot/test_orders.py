"""/orders and /cancel end to end: the real engine and the real PTB Application on the Bot API emulator."""

from __future__ import annotations

from pathlib import Path

from config.settings import FeedSection, RiskSection, SignalFiltersSection, TradingConfig, TradingSection
from engine.core.clock import SimClock
from engine.events import OrderCancelled
from engine.feeds.synthetic import DEFAULT_START_MS
from sim.botapi import SentMessage
from tests.bot.harness import ADMIN, ADMIN2, STEP_MS, SYMBOLS, TF, VIEWER, WARMUP, Harness, running_bot


async def buy(bot: Harness, text: str = "/buy BTCUSDT 1000") -> str:
    """Place a confirmed operator order; its id."""
    (prompt,) = await bot.ask(ADMIN, ADMIN, text)
    assert (await bot.press(ADMIN, ADMIN, prompt, "Yes")).text == "Confirmed."
    (order,) = bot.engine.engine.core.pending[text.split()[1].upper()]
    return order.order_id


async def cancel_prompt(bot: Harness, order_id: str, user: int = ADMIN) -> SentMessage:
    (prompt,) = await bot.ask(user, user, f"/cancel {order_id}")
    assert prompt.button_labels() == ["Yes", "No"], prompt.text
    return prompt


async def test_orders_with_nothing_pending_says_so(bot: Harness) -> None:
    (reply,) = await bot.ask(VIEWER, VIEWER, "/orders")
    assert reply.text is not None
    assert reply.text.startswith("PAPER: no pending orders, and no open position with a stop-loss")


async def test_viewer_sees_a_pending_buy_with_its_id_and_the_admin_cancels_it(bot: Harness) -> None:
    await bot.candle()
    order_id = await buy(bot)
    (listing,) = await bot.ask(VIEWER, VIEWER, "/orders")
    assert listing.text is not None
    assert "Pending (1), filled at the next candle's open:" in listing.text
    assert "BUY BTCUSDT 1,000.00 (quote currency): operator order placed 20" in listing.text
    assert f"id {order_id} (/cancel {order_id})" in listing.text

    prompt = await cancel_prompt(bot, order_id.lower())  # ids match without regard to case
    assert prompt.text is not None and prompt.text.startswith(
        f"PAPER CANCEL the pending BUY BTCUSDT 1,000.00 (quote currency), order {order_id}?")
    assert bot.engine.engine.core.pending  # asking changed nothing
    assert (await bot.press(ADMIN, ADMIN, prompt, "Yes")).text == "Confirmed."
    done = bot.message(ADMIN, prompt.message_id)
    assert done.text == (f"PAPER BUY BTCUSDT 1,000.00 (quote currency) cancelled: it will not fill.\n"
                         f"Order {order_id}")
    assert bot.engine.engine.core.pending == {}
    assert await bot.engine.store.order_status(order_id) == "cancelled"
    assert await bot.engine.store.pending_orders() == []
    alerts = [d.event for d in await bot.engine.store.pending_deliveries() if d.chat_id == ADMIN]
    cancelled = [e for e in alerts if isinstance(e, OrderCancelled)]
    assert [(e.order_id, e.symbol, e.side, e.by) for e in cancelled] == [(order_id, "BTCUSDT", "buy",
                                                                          f"telegram:{ADMIN}")]
    cash = bot.engine.facade.balance().cash
    await bot.candle(2)
    assert bot.engine.facade.positions() == ()  # it never filled
    assert bot.engine.facade.balance().cash == cash
    (after,) = await bot.ask(VIEWER, VIEWER, "/orders")
    assert after.text is not None and "no pending orders" in after.text
    assert bot.errors_seen == 0


async def test_a_viewer_may_not_cancel_and_nothing_changes(bot: Harness) -> None:
    await bot.candle()
    order_id = await buy(bot)
    before = await bot.state()
    assert [m.text for m in await bot.ask(VIEWER, VIEWER, f"/cancel {order_id}")] == [
        "Only an admin may use /cancel."]
    assert len(bot.app.bot_data.confirmations) == 0
    assert await bot.state() == before
    assert await bot.engine.store.order_status(order_id) == "pending"


async def test_no_answers_no_and_only_the_asker_may_answer(bot: Harness) -> None:
    await bot.candle()
    order_id = await buy(bot)
    prompt = await cancel_prompt(bot, order_id)
    assert (await bot.press(ADMIN, ADMIN2, prompt, "Yes")).text == "Only the person who asked can answer this."
    assert (await bot.press(ADMIN, ADMIN, prompt, "No")).text == "Cancelled."
    assert await bot.engine.store.order_status(order_id) == "pending"
    await bot.candle()
    (pos,) = bot.engine.facade.positions()
    assert pos.symbol == "BTCUSDT"


async def test_unknown_and_filled_ids_are_refused_before_any_prompt(bot: Harness) -> None:
    await bot.candle()
    before = await bot.state()
    (reply,) = await bot.ask(ADMIN, ADMIN, "/cancel BTCUSDT-1-manual-buy")
    assert reply.text == "Refused: no pending order BTCUSDT-1-manual-buy; /orders lists the pending ones"
    assert reply.reply_markup is None and await bot.state() == before
    order_id = await buy(bot)
    await bot.candle()  # it fills at this candle's open
    (reply,) = await bot.ask(ADMIN, ADMIN, f"/cancel {order_id}")
    assert reply.text == f"Refused: order {order_id} has already filled: there is nothing to cancel"
    (reply,) = await bot.ask(ADMIN, ADMIN, "/cancel")
    assert reply.text is not None and "Usage: /cancel ID" in reply.text
    (reply,) = await bot.ask(ADMIN, ADMIN, "/cancel " + "x" * 500)
    assert reply.text is not None and "Usage: /cancel ID" in reply.text and "x" * 101 not in reply.text
    assert len(bot.app.bot_data.confirmations) == 0
    assert bot.errors_seen == 0


async def test_yes_after_the_order_filled_does_nothing_and_says_why(bot: Harness) -> None:
    bot.app.bot_data.confirmations.ttl_ms = 2 * STEP_MS  # the prompt outlives a candle, whichever clock times it
    await bot.candle()
    order_id = await buy(bot)
    prompt = await cancel_prompt(bot, order_id)
    await bot.candle()  # the candle fills the order while the prompt waits
    (pos,) = bot.engine.facade.positions()
    await bot.press(ADMIN, ADMIN, prompt, "Yes")
    assert bot.message(ADMIN, prompt.message_id).text == (
        f"Refused: order {order_id} has already filled: there is nothing to cancel")
    assert bot.engine.facade.positions() == (pos,)
    assert await bot.engine.store.order_status(order_id) == "filled"
    assert bot.errors_seen == 0


def protected_config() -> TradingConfig:
    return TradingConfig(
        trading=TradingSection(symbols=list(SYMBOLS), timeframe=TF, fast=400, slow=500, update_interval=3600),
        signal_filters=SignalFiltersSection(min_confidence=0.6),
        risk=RiskSection(position_fraction=0.2, max_position_fraction=0.5, max_total_exposure=1.0,
                         stop_loss_pct=0.05, take_profit_pct=0.5, trailing_stop_pct=0.2, max_daily_loss_pct=0.0,
                         max_drawdown_pct=0.0),
        feed=FeedSection(source="synthetic", history=505, stale_after=1000),
    )


async def test_protective_exits_are_listed_with_levels_and_their_id_points_to_risk(tmp_path: Path) -> None:
    async with running_bot(tmp_path, config=protected_config()) as bot:
        await bot.candle()
        await buy(bot, "/buy ETHUSDT 2000")
        await bot.candle()
        (pos,) = bot.engine.facade.positions()
        assert pos.stop_price is not None and pos.target_price is not None and pos.trail_price is not None
        (listing,) = await bot.ask(VIEWER, VIEWER, "/orders")
        text = listing.text
        assert text is not None and "Protective exits (3), checked within every candle:" in text
        for kind, level in (("stop-loss", pos.stop_price), ("trailing stop", pos.trail_price),
                            ("take-profit", pos.target_price)):
            assert f"ETHUSDT {kind} at {level:,.2f} (now {pos.mark_price:,.2f}): sells " in text
        for kind in ("stop_loss", "trailing_stop", "take_profit"):
            assert f"id ETHUSDT-{kind}" in text
        before = await bot.state()
        (reply,) = await bot.ask(ADMIN, ADMIN, "/cancel ETHUSDT-stop_loss")
        assert reply.text == ("Refused: ETHUSDT-stop_loss is part of the ETHUSDT position and cannot be cancelled "
                              "by id; /risk stop_loss_pct VALUE sets it for positions opened after the change "
                              "(0 switches it off), /close ETHUSDT closes this one")
        assert reply.reply_markup is None and await bot.state() == before


async def test_a_cancelled_order_stays_cancelled_after_a_restart(tmp_path: Path) -> None:
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP_MS)
    async with running_bot(tmp_path, clock=clock) as bot:
        await bot.candle()
        order_id = await buy(bot, "/buy ETHUSDT 500")
        await bot.press(ADMIN, ADMIN, await cancel_prompt(bot, order_id), "Yes")
        assert bot.engine.engine.core.pending == {}
    async with running_bot(tmp_path, clock=clock) as bot:
        assert bot.engine.engine.restored and bot.engine.engine.core.pending == {}
        await bot.candle()
        assert bot.engine.facade.positions() == ()
        assert await bot.engine.store.order_status(order_id) == "cancelled"
