"""``Commands.swap_strategy`` and what a restart makes of it, on the real engine (synthetic feeds, a real
database): a commit that fails leaves the old strategy in charge; a config edited after a switch wins at the next
start; a switched strategy that can no longer be loaded gives way to the config's; the stops a strategy declares
come and go with it, a stop an operator set meanwhile stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from config.settings import Settings, TradingConfig
from engine.app import EngineApp, build
from engine.core.clock import SimClock
from engine.core.model import SmaCrossModel
from engine.core.types import Refusal
from engine.store import create_engine
from engine.store.repo import Store
from engine.strategy.builtins import BUILTINS
from engine.strategy.model import StrategyModel
from engine.strategy_choice import BUILTIN_NAMES, FROM_CHAT, FROM_DEFAULT
from tests.bot.harness import STEP_MS, SYMBOLS, WARMUP, make_feeds, trading_config
from tests.engine.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]

FILE_STRATEGY = '''
from engine.strategy import IntParam, Strategy, sma


class Trend(Strategy):
    take_profit = 0.2
    window = IntParam(2, 50, default=10)

    def populate_indicators(self, df):
        df["mean"] = sma(df["close"], self.window)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["close"] > df["mean"]).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["close"] < df["mean"]).astype(int)
        return df
'''


async def started(tmp_path: Path, db_url: str, config: TradingConfig | None = None, *, start: bool = True
                  ) -> EngineApp:
    from engine.feeds.synthetic import DEFAULT_START_MS

    settings = Settings(_env_file=None, telegram_bot_token="1:x", models_dir=tmp_path / "models")
    clock = SimClock(DEFAULT_START_MS + WARMUP * STEP_MS)
    config = config or trading_config(SYMBOLS, 10, 30, history=WARMUP)
    app = await build(settings, config, clock=clock, feeds=make_feeds("synthetic", SYMBOLS, clock),
                      store=await Store.open(db_url), poll_interval=3600.0, heartbeat_interval=3600.0)
    if start:
        await app.start()
        await wait_until(lambda: all(st.warmed for st in app.engine.symbols.values()))
    return app


def test_the_catalog_knows_every_built_in() -> None:
    assert BUILTIN_NAMES == tuple(BUILTINS)


async def test_a_failed_commit_leaves_the_old_strategy_in_charge(tmp_path: Path, db_url: str) -> None:
    app = await started(tmp_path, db_url, start=False)
    try:
        engine = app.engine
        limits = engine.core.limits
        sql = create_engine(db_url)
        async with sql.begin() as connection:  # the state row cannot be written: the commit fails
            await connection.execute(text("DROP TABLE engine_state"))
        await sql.dispose()
        with pytest.raises(Exception):  # noqa: B017  (whatever the database raises)
            await app.facade.set_strategy("rsi-mean-reversion")
        assert all(type(st.model) is SmaCrossModel for st in engine.symbols.values())
        assert app.facade.strategy == "sma-cross(10,30)" and engine.core.limits == limits
        assert engine.commands.saved_strategy() is None
    finally:
        await app.store.close()


async def test_declared_stops_come_and_go_and_an_operators_stop_stays(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "trend.py").write_text(FILE_STRATEGY, encoding="utf-8")
    base = trading_config(SYMBOLS, 10, 30, history=WARMUP)
    config = base.model_copy(update={"strategy": base.strategy.model_copy(update={"folder": folder})})
    app = await started(tmp_path, db_url, config)
    try:
        core, facade = app.engine.core, app.facade
        assert (core.limits.stop_loss_pct, core.limits.take_profit_pct) == (0.0, 0.0)
        switched = await facade.set_strategy("rsi-mean-reversion", {"period": "7"}, by="test")
        assert not isinstance(switched, Refusal) and switched.kept == ()
        assert core.limits.stop_loss_pct == 0.10
        assert [(p.name, p.value, p.source) for p in switched.new.params] == [
            ("period", 7, FROM_CHAT), ("oversold", 30.0, FROM_DEFAULT), ("exit_above", 55.0, FROM_DEFAULT)]
        assert await facade.set_risk("trailing_stop_pct", 0.02) is not None
        again = await facade.set_strategy("Trend", by="test")
        assert not isinstance(again, Refusal)
        assert all(isinstance(st.model, StrategyModel) for st in app.engine.symbols.values())
        assert app.engine.symbols["BTCUSDT"].model is not app.engine.symbols["ETHUSDT"].model
        # rsi's 10 % stop goes back to the config's (off); Trend's 20 % target comes; the operator's trail stays
        assert (core.limits.stop_loss_pct, core.limits.take_profit_pct, core.limits.trailing_stop_pct) == (
            0.0, 0.2, 0.02)
        window = app.engine.symbols["BTCUSDT"].window
        assert window.maxlen == again.new.startup_candles + 200 and len(window) == min(WARMUP, window.maxlen)
    finally:
        await app.stop_engine()
        await app.store.close()


async def test_a_config_edited_after_a_switch_wins_at_the_next_start(tmp_path: Path, db_url: str) -> None:
    app = await started(tmp_path, db_url)
    assert not isinstance(await app.facade.set_strategy("bollinger-breakout", by="test"), Refusal)
    await app.stop_engine()
    await app.store.close()

    same = await started(tmp_path, db_url)
    assert same.facade.strategy.startswith("bollinger-breakout(")
    await same.stop_engine()
    await same.store.close()

    edited = await started(tmp_path, db_url, trading_config(SYMBOLS, 5, 20, history=WARMUP))
    try:
        assert edited.facade.strategy == "sma-cross(5,20)"
        view = edited.facade.active_strategy()
        assert view is not None and view.chosen_by == "config"
        assert edited.engine.commands.saved_strategy() is None
    finally:
        await edited.stop_engine()
        await edited.store.close()


async def test_a_switched_strategy_that_no_longer_loads_gives_way_to_the_configs(tmp_path: Path,
                                                                                  db_url: str) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "trend.py").write_text(FILE_STRATEGY, encoding="utf-8")
    base = trading_config(SYMBOLS, 10, 30, history=WARMUP)
    config = base.model_copy(update={"strategy": base.strategy.model_copy(update={"folder": folder})})
    app = await started(tmp_path, db_url, config)
    assert not isinstance(await app.facade.set_strategy("trend.py:Trend", by="test"), Refusal)
    await app.stop_engine()
    await app.store.close()

    (folder / "trend.py").write_text("this is not python\n", encoding="utf-8")
    again = await started(tmp_path, db_url, config)
    try:
        assert again.facade.strategy == "sma-cross(10,30)"
        assert all(type(st.model) is SmaCrossModel for st in again.engine.symbols.values())
    finally:
        await again.stop_engine()
        await again.store.close()


def test_the_sma_cross_view_needs_no_pandas(tmp_path: Path) -> None:
    """/strategy (and the API's strategy read) of a worker on sma-cross's fast path describes it without importing
    pandas (~60 MB), with the same ranges as the class's declaration."""
    code = f"""
import sys
from pathlib import Path
from config.trading import load_trading_config
from engine.core.clock import SimClock
from engine.strategy_choice import build_catalog
config = load_trading_config()
catalog = build_catalog(config, models_dir=Path({str(tmp_path)!r}), clock=SimClock(0))
prepared = catalog.prepare(catalog.configured)
view = catalog.view(prepared, config.risk.to_core())
assert "pandas" not in sys.modules, "pandas imported"
print(view.spec, [(p.name, p.value, p.source, p.allowed) for p in view.params], view.startup_candles)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-1500:]
    from engine.strategy.builtins import SmaCross

    declared = SmaCross.parameters()
    assert done.stdout.split()[0] == "sma-cross"
    for name in ("fast", "slow"):
        assert f"'{name}'" in done.stdout and repr(declared[name].describe()) in done.stdout
