"""The template ``new-strategy`` writes is a working strategy: it loads, signals on real candles, passes the
look-ahead check and takes its parameters; writing it never overwrites a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.model import CandleArrays
from engine.strategy import ENTER, EXIT, StrategyError
from engine.strategy.loader import load_strategy
from engine.strategy.lookahead import check_lookahead
from engine.strategy.template import class_name_for, render_template, write_template


def test_the_template_loads_signals_and_is_causal(tmp_path: Path, btc_5m: CandleArrays) -> None:
    path = write_template("ema-rsi", tmp_path)
    assert path == tmp_path / "ema_rsi.py"
    source = path.read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from engine.strategy import CategoricalParam, FloatParam, IntParam, Strategy, crossed_above, "
                       "ema, rsi"]
    strategy = load_strategy(f"{path}:EmaRsi", {"fast": "8", "confirm": "false"})
    assert strategy.params() == {"fast": 8, "slow": 26, "rsi_max": 70.0, "confirm": False}
    sig = strategy.signals(btc_5m)
    assert (sig.action == ENTER).sum() > 0 and (sig.action == EXIT).sum() > 0
    assert check_lookahead(load_strategy(str(path)), btc_5m.slice(0, 1000)).clean
    with pytest.raises(StrategyError, match="fast must be below slow"):
        load_strategy(f"{path}:EmaRsi", {"fast": 40, "slow": 30})


def test_names_and_no_overwrite(tmp_path: Path) -> None:
    assert class_name_for("ema_rsi") == class_name_for("ema-rsi") == class_name_for("EmaRsi") == "EmaRsi"
    for bad in ("", "--", "1st", "_"):
        with pytest.raises(StrategyError, match="use letters, digits"):
            class_name_for(bad)
    assert "class MyStrat(Strategy):" in render_template("my-strat")
    write_template("mine", tmp_path)
    with pytest.raises(StrategyError, match=r"mine\.py exists"):
        write_template("mine", tmp_path)


def test_reserved_parameter_names_and_timeframes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.py"
    path.write_text("from engine.strategy import IntParam, Strategy\n\n"
                    "class Odd(Strategy):\n    lookback = IntParam(1, 9, default=2)\n"
                    "    def populate_entry_trend(self, df):\n        return df\n"
                    "    def populate_exit_trend(self, df):\n        return df\n\n"
                    "class Slow(Odd):\n    lookback = 3\n    timeframe = '7m'\n", encoding="utf-8")
    with pytest.raises(StrategyError, match="Odd: a parameter cannot be called 'lookback'"):
        load_strategy(f"{path}:Odd")
    with pytest.raises(StrategyError, match="Slow: timeframe '7m' is not one of 1m, "):
        load_strategy(f"{path}:Slow")
