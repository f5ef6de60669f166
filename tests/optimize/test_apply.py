"""``--apply FILE.toml`` writes the chosen parameters where the worker reads them, keeps the rest of the file, and
``/strategy`` then says which study they came from."""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.render.strategy import strategy as render_strategy
from config.trading import DEFAULT_TRADING_CONFIG, ConfigError, load_trading_config
from engine.core.clock import SimClock
from engine.optimize.apply import apply_params
from engine.strategy_choice import build_catalog
from tests.optimize.conftest import Ran


def test_apply_writes_the_chosen_params_and_strategy_says_where_they_came_from(
        optimize: Callable[..., Ran], tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    shutil.copy(DEFAULT_TRADING_CONFIG, config)
    ran = optimize("--walk-forward", "2", "--trials", "6", "--study", "tuned", "--apply", str(config), plots=True)
    assert ran.code == 0, ran.err
    chosen = ran.results()["chosen"]["params"]
    for png in ("history.png", "importance.png", "params.png", "oos_equity.png"):
        assert (ran.folder / png).stat().st_size > 1000
    loaded = load_trading_config(config)
    assert loaded.strategy.params == chosen
    assert loaded.strategy.study is not None and loaded.strategy.study.startswith("tuned (sqlite:///")
    assert loaded.risk == load_trading_config(None).risk  # the rest of the file as it was
    assert "# Trading configuration: the embedded defaults" in config.read_text()  # comments kept

    catalog = build_catalog(loaded, models_dir=tmp_path / "models", clock=SimClock())
    prepared = catalog.prepare(catalog.configured)
    view = catalog.view(prepared, loaded.risk.to_core())
    assert view.study == loaded.strategy.study
    assert [(p.name, p.value) for p in view.params] == list(chosen.items())
    assert "Parameters from optimiser study tuned (sqlite:///" in render_strategy(view, [])


def test_apply_switches_the_strategy_and_replaces_a_params_table(tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    config.write_text('[trading]\nstrategy = "sma-cross"  # mine\nsymbols = ["ETHUSDT"]\n\n[strategy.params]\n'
                      'fast = 3\nslow = 9\n\n[risk]\nstop_loss_pct = 0.02\n')
    line = apply_params(config, "rsi-mean-reversion", {"period": 9, "oversold": 25.5, "exit_above": 60.0}, "s1")
    assert "[trading] strategy 'sma-cross' -> 'rsi-mean-reversion'" in line
    doc = tomllib.loads(config.read_text())
    assert doc["trading"] == {"strategy": "rsi-mean-reversion", "symbols": ["ETHUSDT"]}
    assert doc["strategy"] == {"params": {"period": 9, "oversold": 25.5, "exit_above": 60.0}, "study": "s1"}
    assert doc["risk"] == {"stop_loss_pct": 0.02}


def test_a_broken_apply_target_is_refused_before_the_search(optimize: Callable[..., Ran], tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    config.write_text("[trading\n")
    ran = optimize("--trials", "3", "--apply", str(config))
    assert ran.code == 2 and ran.err.startswith(f"error: --apply {config}: cannot read it as TOML")
    assert ran.err.count("\n") == 1 and not (ran.folder / "results.json").exists()


def test_apply_to_a_broken_file_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    config.write_text("[trading\nstrategy = 1\n")
    with pytest.raises(ConfigError, match="cannot read it as TOML"):
        apply_params(config, "sma-cross", {"fast": 5, "slow": 20}, "s1")
    assert config.read_text() == "[trading\nstrategy = 1\n"


def test_a_switch_in_chat_does_not_claim_the_study(tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    apply_params(config, "sma-cross", {"fast": 7, "slow": 40}, "tuned (somewhere)")
    loaded = load_trading_config(config)
    catalog = build_catalog(loaded, models_dir=tmp_path / "models", clock=SimClock())
    chat = catalog.choice("sma-cross", {"fast": "8"}, by="admin", ts=0)
    assert not isinstance(chat, type(None))
    view = catalog.view(catalog.prepare(chat), loaded.risk.to_core())  # type: ignore[arg-type]
    assert view.study == ""
