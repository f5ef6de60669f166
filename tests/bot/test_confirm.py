"""Confirmations: Yes acts, No / late / foreign / repeated presses change nothing."""

from __future__ import annotations

from pathlib import Path

from bot.confirm import TTL_MS
from sim.botapi import SentMessage
from tests.bot.harness import ADMIN, ADMIN2, Harness, running_bot


async def prompt(bot: Harness, text: str) -> SentMessage:
    (message,) = await bot.ask(ADMIN, ADMIN, text)
    assert message.button_labels() == ["Yes", "No"], message.text
    return message


async def test_buy_yes_queues_the_order_and_it_fills_at_the_next_candle(bot: Harness) -> None:
    await bot.candle()
    message = await prompt(bot, "/buy btcusdt 1000")
    assert message.text is not None and message.text.startswith("PAPER BUY BTCUSDT for 1,000.00")
    answer = await bot.press(ADMIN, ADMIN, message, "Yes")
    assert answer.text == "Confirmed."
    edited = bot.message(ADMIN, message.message_id)
    assert edited.text is not None and edited.text.startswith("PAPER BUY BTCUSDT 1,000.00 accepted")
    assert edited.reply_markup is None
    assert [o.symbol for o in await bot.engine.store.pending_orders()] == ["BTCUSDT"]
    await bot.candle()
    (pos,) = bot.engine.facade.positions()
    assert pos.symbol == "BTCUSDT" and 990 < pos.quantity * pos.avg_price <= 1000
    (shown,) = await bot.ask(ADMIN, ADMIN, "/positions")
    assert shown.text is not None and "PAPER" in shown.text and "BTCUSDT" in shown.text


async def test_sell_and_close_after_yes_flatten_the_position(bot: Harness) -> None:
    await bot.candle()
    await bot.press(ADMIN, ADMIN, await prompt(bot, "/buy ETHUSDT 2000"), "Yes")
    await bot.candle()
    await bot.press(ADMIN, ADMIN, await prompt(bot, "/sell ETHUSDT 500"), "Yes")
    await bot.candle()
    (pos,) = bot.engine.facade.positions()
    assert 1400 < pos.quantity * pos.avg_price < 1600
    message = await prompt(bot, "/close all")
    assert message.text is not None and "CLOSE ETHUSDT" in message.text
    await bot.press(ADMIN, ADMIN, message, "Yes")
    await bot.candle()
    assert bot.engine.facade.positions() == ()
    (trades,) = await bot.ask(ADMIN, ADMIN, "/trades")
    assert trades.text is not None and trades.text.startswith("PAPER") and "ETHUSDT" in trades.text


async def test_pause_and_resume_after_yes(bot: Harness) -> None:
    await bot.press(ADMIN, ADMIN, await prompt(bot, "/pause"), "Yes")
    assert bot.engine.facade.status().paused
    assert [m.text for m in await bot.ask(ADMIN, ADMIN, "/pause")] == ["Already paused."]
    await bot.press(ADMIN, ADMIN, await prompt(bot, "/resume"), "Yes")
    assert not bot.engine.facade.status().paused


async def test_risk_change_after_yes(bot: Harness) -> None:
    message = await prompt(bot, "/risk stop_loss_pct 0.03")
    assert message.text is not None and "from 0 to 0.03" in message.text
    await bot.press(ADMIN, ADMIN, message, "Yes")
    assert bot.engine.facade.risk()["stop_loss_pct"] == 0.03
    assert "stop_loss_pct = 0.03" in (bot.message(ADMIN, message.message_id).text or "")


async def test_no_changes_nothing(bot: Harness) -> None:
    await bot.candle()
    before = await bot.state()
    for text in ("/buy BTCUSDT 100", "/pause", "/risk max_drawdown_pct 0.5"):
        message = await prompt(bot, text)
        assert (await bot.press(ADMIN, ADMIN, message, "No")).text == "Cancelled."
        assert "Cancelled: nothing was done." in (bot.message(ADMIN, message.message_id).text or "")
    assert await bot.state() == before


async def test_late_answer_changes_nothing(bot: Harness) -> None:
    await bot.candle()
    message = await prompt(bot, "/buy BTCUSDT 100")
    bot.wall.advance(TTL_MS + 1000)  # the people's clock, injected: no real waiting
    before = await bot.state()
    answer = await bot.press(ADMIN, ADMIN, message, "Yes")
    assert answer.text is not None and answer.text.startswith("Too late") and answer.show_alert
    assert await bot.state() == before
    assert "Expired: nothing was done." in (bot.message(ADMIN, message.message_id).text or "")


async def test_confirmations_expire_on_the_wall_clock_not_the_engines(tmp_path: Path) -> None:
    """Against a fast simulated exchange the engine's clock runs far ahead; a person's 60 s are wall seconds."""
    async with running_bot(tmp_path, wall_clock=True) as bot:  # the bot's default clock, as the worker runs it
        await bot.candle()
        message = await prompt(bot, "/buy BTCUSDT 100")
        bot.clock.advance(100 * TTL_MS)  # the market's clock: 100 minutes pass there
        answer = await bot.press(ADMIN, ADMIN, message, "Yes")
        assert answer.text == "Confirmed."
        assert [o.symbol for o in await bot.engine.store.pending_orders()] == ["BTCUSDT"]


async def test_just_in_time_answer_acts(bot: Harness) -> None:
    message = await prompt(bot, "/pause")
    bot.wall.advance(TTL_MS)
    await bot.press(ADMIN, ADMIN, message, "Yes")
    assert bot.engine.facade.status().paused


async def test_another_users_press_is_refused_and_the_asker_can_still_answer(bot: Harness) -> None:
    await bot.ask(-100700, ADMIN, "/start", chat_type="group")
    (message,) = await bot.ask(-100700, ADMIN, "/pause", chat_type="group")
    before = await bot.state()
    answer = await bot.press(-100700, ADMIN2, message, "Yes")
    assert answer.text == "Only the person who asked can answer this."
    assert await bot.state() == before
    assert bot.message(-100700, message.message_id).button_labels() == ["Yes", "No"]
    await bot.press(-100700, ADMIN, message, "Yes")
    assert bot.engine.facade.status().paused


async def test_two_quick_presses_act_once(bot: Harness) -> None:
    message = await prompt(bot, "/pause")
    data = message.callback_data("Yes")
    first = bot.emu.press_button(ADMIN, ADMIN, message.message_id, data)  # both before the bot sees either
    second = bot.emu.press_button(ADMIN, ADMIN, message.message_id, data)
    await bot.settle(max(u["update_id"] for u in bot.emu.state.pending))
    answers = {a.query_id: a.text for a in bot.emu.callback_answers}
    assert sorted([answers[first] or "", answers[second] or ""]) == [
        "Confirmed.", "This confirmation is no longer valid: it was answered already or has expired."]
    assert bot.engine.facade.status().paused
    assert len([c for c in bot.emu.calls if c.method == "editMessageText"]) == 1


async def test_refusals_come_straight_away_without_a_prompt(bot: Harness) -> None:
    await bot.candle()  # (a fresh engine has a price at once: it decides the newest warm-up candle at start)
    (big,) = await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 999999")
    assert big.text is not None and big.text.startswith("Refused:") and big.reply_markup is None
    (sell,) = await bot.ask(ADMIN, ADMIN, "/sell BTCUSDT")
    assert sell.text == "Refused: no BTCUSDT position to sell"
    (risk,) = await bot.ask(ADMIN, ADMIN, "/risk stop_loss_pct 5")
    assert risk.text == ("Refused: stop_loss_pct must be between 0 and 0.99, got 5.\n"
                         "Fractions: 0.05 is 5%; 0 switches a protective limit off.")
    assert [m.text for m in await bot.ask(ADMIN, ADMIN, "/resume")] == ["Nothing to resume: trading is active."]
