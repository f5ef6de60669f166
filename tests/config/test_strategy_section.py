"""``[trading] strategy`` names any strategy (checked when the engine loads it); ``[strategy.params]`` holds its
parameters with their TOML types; sma-cross still takes ``fast``/``slow`` from ``[trading]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, TradingConfig, load_trading_config
from engine.strategy.loader import configured_params


def _load(tmp_path: Path, text: str) -> TradingConfig:
    path = tmp_path / "trading.toml"
    path.write_text(text)
    return load_trading_config(path)


def test_any_strategy_spec_and_typed_params(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[trading]\nstrategy = "strategies/ema.py:EmaRsi"\n'
                          '[strategy.params]\nfast = 12\nratio = 0.5\nkind = "ema"\nstrict = true\n')
    assert cfg.trading.strategy == "strategies/ema.py:EmaRsi"
    assert cfg.strategy.params == {"fast": 12, "ratio": 0.5, "kind": "ema", "strict": True}
    assert type(cfg.strategy.params["fast"]) is int and type(cfg.strategy.params["strict"]) is bool


def test_sma_cross_params_fall_back_to_trading_fast_slow(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[trading]\nfast = 5\nslow = 20\n[strategy.params]\nslow = 40\n')
    got = configured_params(cfg.trading.strategy, cfg.strategy.params, fast=cfg.trading.fast, slow=cfg.trading.slow)
    assert got == {"fast": 5, "slow": 40}
    other = configured_params("rsi-mean-reversion", {}, fast=5, slow=20)
    assert other == {}


@pytest.mark.parametrize(("text", "needle"), [
    ('[trading]\nstrategy = "  "\n', "trading.strategy"),
    ('[strategy.params]\nfast = [1, 2]\n', "strategy.params"),
    ('[strategy]\nparamz = {}\n', "strategy.paramz"),
    ('[trading]\nfast = 30\nslow = 10\n', "trading.fast"),
])
def test_bad_strategy_config_is_one_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_fast_above_slow_is_fine_for_another_strategy(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[trading]\nstrategy = "bollinger-breakout"\nfast = 30\nslow = 10\n')
    assert cfg.trading.strategy == "bollinger-breakout"
