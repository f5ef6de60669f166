"""/strategy end to end (the real engine and the real PTB Application on the Bot API emulator): anyone allowed
sees the active strategy and where each parameter came from; an admin switches it after confirmation, open
positions kept and named; a viewer, an unknown name, a bad parameter and a leaky strategy change nothing; the
switch survives a restart on the same database."""

from __future__ import annotations

from pathlib import Path

from config.settings import StrategySection, TradingConfig
from engine.core.events import StrategySwitched
from engine.core.types import Refusal
from engine.strategy.model import StrategyModel
from tests.bot.harness import ADMIN, SYMBOLS, VIEWER, WARMUP, Harness, running_bot, trading_config

LEAKY = '''
from engine.strategy import IntParam, Strategy, sma


class Peeker(Strategy):
    window = IntParam(2, 50, default=5)

    def populate_indicators(self, df):
        df["future_close"] = df["close"].shift(-1)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["future_close"] > df["close"]).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["future_close"] < df["close"]).astype(int)
        return df
'''

CLEAN = '''
from engine.strategy import IntParam, Strategy, sma


class SlowTrend(Strategy):
    startup_candles = 20
    trailing_stop = 0.03
    window = IntParam(2, 50, default=20)

    def populate_indicators(self, df):
        df["mean"] = sma(df["close"], self.window)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["close"] > df["mean"] * 1.5).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["close"] < df["mean"]).astype(int)
        return df
'''


def folder_config(folder: Path) -> TradingConfig:
    base = trading_config(SYMBOLS, 400, 500, history=max(WARMUP, 505))
    return base.model_copy(update={"strategy": StrategySection(folder=folder)})


def strategies_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "peeker.py").write_text(LEAKY, encoding="utf-8")
    (folder / "slow_trend.py").write_text(CLEAN, encoding="utf-8")
    return folder


async def unchanged(bot: Harness) -> tuple[object, ...]:
    engine = bot.engine.engine
    return (bot.engine.facade.strategy, tuple(type(st.model).__name__ for st in engine.symbols.values()),
            engine.core.limits, engine.commands.saved_strategy(), await bot.state())


async def test_viewer_and_admin_see_the_strategy_and_where_its_parameters_came_from(bot: Harness) -> None:
    for user in (VIEWER, ADMIN):
        (reply,) = await bot.ask(user, user, "/strategy")
        text = reply.text or ""
        assert "sma-cross(400,500)" in text and "built-in" in text
        assert "fast = 400 (1..500), from config [trading] fast/slow" in text
        assert "slow = 500 (2..1000), from config [trading] fast/slow" in text
        assert "stop-loss off (risk limits)" in text and "warm-up 500 candles" in text
        assert "Chosen by the config file" in text and "rsi-mean-reversion" in text
    (help_reply,) = await bot.ask(VIEWER, VIEWER, "/help")
    assert "/strategy - the active strategy, its parameters and stops" in (help_reply.text or "")
    (help_admin,) = await bot.ask(ADMIN, ADMIN, "/help")
    assert "/strategy [set NAME [key=value ...]]" in (help_admin.text or "")
    assert bot.errors_seen == 0


async def test_a_viewer_may_not_switch(bot: Harness) -> None:
    before = await unchanged(bot)
    replies = await bot.ask(VIEWER, VIEWER, "/strategy set rsi-mean-reversion")
    assert [m.text for m in replies] == ["Only an admin may use /strategy with arguments."]
    assert await unchanged(bot) == before


async def test_an_unknown_name_or_a_bad_parameter_is_one_line_and_changes_nothing(bot: Harness) -> None:
    await bot.candle()
    before = await unchanged(bot)
    for command, needle in [
        ("/strategy set rsi-mean-revershun", "unknown strategy 'rsi-mean-revershun'"),
        ("/strategy set /tmp/evil.py:Evil", "a chat cannot load other files"),
        ("/strategy set rsi-mean-reversion period=999", "period='999' is out of range 2..50"),
        ("/strategy set rsi-mean-reversion speed=3", "unknown parameter 'speed'"),
        ("/strategy set model fast=3", "take no parameters"),
        ("/strategy set model", "no CatBoost model can trade any symbol"),
    ]:
        (reply,) = await bot.ask(ADMIN, ADMIN, command)
        text = reply.text or ""
        assert text.startswith("Refused: ") and needle in text and "\n" not in text, text
        assert reply.button_labels() == []  # no confirmation offered
    (reply,) = await bot.ask(ADMIN, ADMIN, "/strategy set")
    assert "Usage: /strategy" in (reply.text or "")
    (reply,) = await bot.ask(ADMIN, ADMIN, "/strategy set sma-cross fast")
    assert "key=value" in (reply.text or "")
    assert await unchanged(bot) == before
    assert bot.errors_seen == 0


async def test_a_switch_keeps_the_open_position_says_so_and_survives_a_restart(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.candle()
        (prompt,) = await bot.ask(ADMIN, ADMIN, "/buy BTCUSDT 3000")
        await bot.press(ADMIN, ADMIN, prompt, "Yes")
        await bot.candle()
        (held,) = bot.engine.facade.positions()
        assert held.symbol == "BTCUSDT"

        (prompt,) = await bot.ask(ADMIN, ADMIN, "/strategy set rsi-mean-reversion period=10")
        text = prompt.text or ""
        assert "from <b>sma-cross(400,500)</b> to" in text.replace("\n", " ") or "sma-cross(400,500)" in text
        assert "period = 10 (2..50), from chat" in text and "oversold = 30 (5..50), from default" in text
        assert "stop-loss 10.00% (strategy)" in text
        assert "Open positions are kept: BTCUSDT" in text and "no look-ahead" in text
        assert bot.engine.facade.strategy == "sma-cross(400,500)"  # nothing before Yes

        await bot.press(ADMIN, ADMIN, prompt, "Yes")
        done = bot.message(ADMIN, prompt.message_id).text or ""
        assert "Strategy switched: sma-cross(400,500) → rsi-mean-reversion(period=10" in done
        assert "Open positions are kept: BTCUSDT" in done
        engine = bot.engine.engine
        assert all(isinstance(st.model, StrategyModel) for st in engine.symbols.values())
        assert engine.core.limits.stop_loss_pct == 0.10
        (still,) = bot.engine.facade.positions()
        assert (still.symbol, still.quantity, still.stop_price) == (held.symbol, held.quantity, held.stop_price)
        alerts = await bot.engine.facade.pending_alerts(kind="strategy")
        event = alerts[0].event
        assert isinstance(event, StrategySwitched) and event.positions == "BTCUSDT" and event.by == "telegram:1001"
        assert event.old == "sma-cross(400,500)" and event.new.startswith("rsi-mean-reversion(period=10")

        await bot.candle(3)  # the new strategy decides the next candles; nothing breaks
        signal = bot.engine.facade.signal("BTCUSDT")
        assert not isinstance(signal, Refusal) and signal.model.startswith("rsi-mean-reversion(period=10")
        (shown,) = await bot.ask(VIEWER, VIEWER, "/strategy")
        assert "Chosen by telegram:1001" in (shown.text or "") and "from chat" in (shown.text or "")
        assert bot.errors_seen == 0

    async with running_bot(tmp_path) as again:  # the same database: the switch is kept
        assert again.engine.facade.strategy.startswith("rsi-mean-reversion(period=10")
        assert again.engine.engine.core.limits.stop_loss_pct == 0.10
        assert [p.symbol for p in again.engine.facade.positions()] == ["BTCUSDT"]
        (shown,) = await again.ask(VIEWER, VIEWER, "/strategy")
        assert "period = 10 (2..50), from chat" in (shown.text or "")


async def test_a_leaky_strategy_in_the_folder_is_refused_a_clean_one_switches(tmp_path: Path) -> None:
    folder = strategies_folder(tmp_path)
    async with running_bot(tmp_path, config=folder_config(folder)) as bot:
        (listed,) = await bot.ask(ADMIN, ADMIN, "/strategy")
        assert "Peeker" in (listed.text or "") and "SlowTrend" in (listed.text or "")
        before = await unchanged(bot)
        (reply,) = await bot.ask(ADMIN, ADMIN, "/strategy set Peeker")
        text = reply.text or ""
        assert text.startswith("Refused: Peeker(window=5) fails the look-ahead check: column 'action' looks ahead: "
                               "first at candle 2024-01-01 00:05 UTC (row 1)"), text
        assert "\n" not in text and reply.button_labels() == []
        assert await unchanged(bot) == before

        (prompt,) = await bot.ask(ADMIN, ADMIN, "/strategy set SlowTrend window=15")
        assert "No position is open." in (prompt.text or "") and "trailing stop 3.00% (strategy)" in (prompt.text or "")
        await bot.press(ADMIN, ADMIN, prompt, "Yes")
        assert bot.engine.facade.strategy == "SlowTrend(window=15)"
        assert bot.engine.engine.core.limits.trailing_stop_pct == 0.03
        (back,) = await bot.ask(ADMIN, ADMIN, "/strategy set sma-cross")
        await bot.press(ADMIN, ADMIN, back, "Yes")
        # the configured strategy again: its [trading] fast/slow, and the config's stops (the 3 % trail undone)
        assert bot.engine.facade.strategy == "sma-cross(400,500)"
        assert bot.engine.engine.core.limits.trailing_stop_pct == 0.0
        assert bot.errors_seen == 0
