"""Edge cases a newcomer meets: sells and buys beyond what is there, risk values that contradict each other."""

from __future__ import annotations

from bot import render
from tests.bot.harness import ADMIN, STRANGER, VIEWER, Harness


async def buy_and_fill(bot: Harness, symbol: str, amount: str) -> None:
    (prompt,) = await bot.ask(ADMIN, ADMIN, f"/buy {symbol} {amount}")
    assert (await bot.press(ADMIN, ADMIN, prompt, "Yes")).text == "Confirmed."
    await bot.candle()


async def test_sell_more_than_held_is_refused_at_once_with_the_numbers(bot: Harness) -> None:
    await bot.candle()
    before = await bot.state()
    (none,) = await bot.ask(ADMIN, ADMIN, "/sell BTCUSDT 100")
    assert none.text == "Refused: no BTCUSDT position to sell" and none.reply_markup is None
    assert await bot.state() == before

    await buy_and_fill(bot, "BTCUSDT", "1000")
    (pos,) = bot.engine.facade.positions()
    worth = pos.quantity * pos.mark_price
    before = await bot.state()
    (too_much,) = await bot.ask(ADMIN, ADMIN, "/sell BTCUSDT 5000")
    assert too_much.reply_markup is None  # no confirmation asked
    assert too_much.text == (
        f"Refused: you asked to sell 5,000.00 of BTCUSDT, but the position is {render.qty(pos.quantity)}, worth "
        f"about {worth:,.2f} at {render.price(pos.mark_price)}. Send /sell BTCUSDT to sell all of it.")
    assert await bot.state() == before

    (within,) = await bot.ask(ADMIN, ADMIN, "/sell BTCUSDT 500")  # within the position: asks as before
    assert within.button_labels() == ["Yes", "No"]


async def test_a_buy_beyond_the_limits_says_the_real_limit(bot: Harness) -> None:
    await bot.candle()
    before = await bot.state()
    facade = bot.engine.facade
    room = facade.buy_room("BTCUSDT")
    assert 0 < room <= 0.5 * facade.balance().equity + 1e-6  # max_position_fraction 0.5 in the harness config
    for amount, shown in (("9999999999999.99", "9,999,999,999,999.99"), ("999999", "999,999.00")):
        (reply,) = await bot.ask(ADMIN, ADMIN, f"/buy BTCUSDT {amount}")
        assert reply.reply_markup is None
        assert reply.text == (
            f"Refused: {shown} is more than a buy of BTCUSDT may spend now: at most {room:,.2f} (cash available "
            "10,000.00; risk limits max_position_fraction 0.5 of equity per symbol and max_total_exposure 1 in "
            "all; /risk shows them).")
        assert "positive number" not in reply.text
    assert await bot.state() == before
    (fits,) = await bot.ask(ADMIN, ADMIN, f"/buy BTCUSDT {room:.2f}")
    assert fits.button_labels() == ["Yes", "No"]


async def test_position_fraction_above_its_maximum_is_refused_and_says_0_means_off(bot: Harness) -> None:
    before = await bot.state()
    (reply,) = await bot.ask(ADMIN, ADMIN, "/risk position_fraction 0.6")
    assert reply.reply_markup is None
    assert reply.text == (
        "Refused: position_fraction 0.6 is above max_position_fraction 0.5, the most one symbol may hold; choose "
        "at most 0.5, or raise max_position_fraction first.\nFractions: 0.05 is 5%; 0 switches a protective limit "
        "off.")
    assert await bot.state() == before
    (bad,) = await bot.ask(ADMIN, ADMIN, "/risk max_drawdown_pct 5%")
    assert bad.text is not None and "0 switches a protective limit off" in bad.text
    (ok,) = await bot.ask(ADMIN, ADMIN, "/risk position_fraction 0.5")  # at the maximum: asks
    assert ok.button_labels() == ["Yes", "No"]


async def test_viewers_set_their_own_alerts_but_not_a_groups(bot: Harness) -> None:
    facade = bot.engine.facade
    (mine,) = await bot.ask(VIEWER, VIEWER, "/alerts order_filled silent")
    assert mine.text is not None and "• order_filled: silent" in mine.text
    assert (await facade.alert_modes(VIEWER))["order_filled"] == "silent"
    assert (await facade.alert_modes(ADMIN)).get("order_filled", "on") == "on"  # only the viewer's own chat

    group = -100800
    await bot.ask(group, ADMIN, "/start", chat_type="group")
    (refused,) = await bot.ask(group, VIEWER, "/alerts feed off", chat_type="group")
    assert refused.text == ("Only an admin may change the alerts of a group. Viewers set their own in their "
                            "private chat with the bot: /alerts TYPE on|silent|off there.")
    assert (await facade.alert_modes(group)).get("feed", "on") == "on"
    (shown,) = await bot.ask(group, VIEWER, "/alerts", chat_type="group")  # reading is fine
    assert shown.text is not None and shown.text.startswith("Alerts in this chat")
    await bot.ask(group, ADMIN, "/alerts feed off", chat_type="group")
    assert (await facade.alert_modes(group))["feed"] == "off"
    (stranger,) = await bot.ask(STRANGER, STRANGER, "/alerts feed off")
    assert stranger.text == "Not authorised."


async def test_start_tells_a_new_user_what_to_try_first(bot: Harness) -> None:
    (admin,) = await bot.ask(ADMIN, ADMIN, "/start")
    (viewer,) = await bot.ask(VIEWER, VIEWER, "/start")
    assert admin.text is not None and viewer.text is not None
    for text in (admin.text, viewer.text):
        assert "Try first:\n• /status - " in text and "• /signal BTCUSDT - " in text and "/help" in text
        assert "paper trading" in text
    assert "• /buy BTCUSDT 100 - a paper order" in admin.text and "/buy" not in viewer.text


async def test_help_is_plain_text_without_markup(bot: Harness) -> None:
    for user in (ADMIN, VIEWER):
        (help_,) = await bot.ask(user, user, "/help")
        assert help_.parse_mode is None and help_.text == help_.raw_text
        assert help_.text is not None and help_.text.startswith("Commands:\n/start - ")
        for markup in ("<b>", "</", "&lt;", "&gt;", "&amp;", "<code>"):
            assert markup not in help_.text
        assert "/alerts [type on|silent|off] - " in help_.text


async def test_health_tells_uptime_and_candle_ages_on_one_clock(bot: Harness) -> None:
    await bot.candle(12)  # an hour of market time passes within a wall second
    (health,) = await bot.ask(ADMIN, ADMIN, "/health")
    assert health.text is not None
    assert "Uptime: 1h 0m" in health.text  # the engine's clock, like the candle ages below
    assert "• BTCUSDT: last candle 0s ago" in health.text
