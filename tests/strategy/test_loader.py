"""Loading a strategy by built-in name, by file (``path/file.py:Class``) or by module (``pkg.mod:Class``), with its
parameters; each broken strategy file is one clear StrategyError line (file and line where there is one)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine.core.model import CandleArrays
from engine.strategy import ENTER, EXIT, Strategy, StrategyError
from engine.strategy.builtins import BUILTINS, SmaCross
from engine.strategy.loader import PRIVATE_PREFIX, find_strategies, load_strategy, strategy_class
from tests.strategy.user_strategy import USER_STRATEGY

GOOD = USER_STRATEGY


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def error_of(spec: str, params: dict[str, str | int | float] | None = None,
             candles: CandleArrays | None = None) -> str:
    with pytest.raises(StrategyError) as exc:
        strategy = load_strategy(spec, params)
        if candles is not None:
            strategy.signals(candles)
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text and exc.value.__cause__ is None
    assert exc.value.__context__ is None or exc.value.__suppress_context__
    return text


def test_builtins_by_name() -> None:
    assert set(BUILTINS) == {"sma-cross", "rsi-mean-reversion", "bollinger-breakout"}
    s = load_strategy("sma-cross", {"fast": "5", "slow": "20"})
    assert isinstance(s, SmaCross) and s.params() == {"fast": 5, "slow": 20} and s.startup_candles == 20
    for name in BUILTINS:
        assert load_strategy(name).label() == name


def test_an_unknown_name_suggests_the_close_one() -> None:
    assert error_of("sma-crss") == ("unknown strategy 'sma-crss' (did you mean 'sma-cross'? built-ins: sma-cross, "
                                    "rsi-mean-reversion, bollinger-breakout; or path/to/file.py:Class, or "
                                    "module.path:Class)")
    assert error_of("  ").startswith("no strategy given")


def test_a_file_strategy_with_params_produces_signals(tmp_path: Path, btc_5m: CandleArrays) -> None:
    path = write(tmp_path, "ema_rsi.py", GOOD)
    before = set(sys.modules)
    s = load_strategy(f"{path}:EmaRsi", {"fast": "8", "slow": 40})
    assert s.params() == {"fast": 8, "slow": 40} and s.name == "EmaRsi(fast=8,slow=40)"
    assert s.timeframe == "5m" and s.protective_exits()["stop_loss_pct"] == 0.05
    sig = s.signals(btc_5m)
    assert (sig.action == ENTER).sum() > 0 and (sig.action == EXIT).sum() > 0
    assert sig.enter_tag is not None and set(sig.enter_tag[sig.action == ENTER]) == {"ema_up"}
    assert {"ema_fast", "ema_slow", "rsi"} <= set(sig.frame.columns)
    # imported under a private name only: never as "ema_rsi", never over a module of ours
    added = set(sys.modules) - before
    from_file = [m for m in added if getattr(sys.modules[m], "__file__", None) == str(path.resolve())]
    assert len(from_file) == 1 and from_file[0].startswith(PRIVATE_PREFIX)
    assert "ema_rsi" not in sys.modules
    # the class may be left out when the file defines one strategy; loading again gives a fresh class
    again = load_strategy(str(path))
    assert type(again).__name__ == "EmaRsi" and np.array_equal(again.signals(btc_5m).action,
                                                                 load_strategy(f"{path}:EmaRsi").signals(btc_5m).action)


def test_a_file_named_like_a_module_of_ours_cannot_shadow_it(tmp_path: Path) -> None:
    import engine.backtest

    path = write(tmp_path, "backtest.py", GOOD)
    load_strategy(f"{path}:EmaRsi")
    assert sys.modules["engine.backtest"] is engine.backtest
    assert "backtest" not in sys.modules or sys.modules["backtest"].__file__ != str(path)


def test_a_module_strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mystrats_pkg"
    pkg.mkdir()
    write(pkg, "__init__.py", "")
    write(pkg, "trend.py", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    s = load_strategy("mystrats_pkg.trend:EmaRsi", {"fast": 20})
    assert s.params()["fast"] == 20
    assert error_of("mystrats_pkg.trend:Nope").startswith("mystrats_pkg.trend: no class 'Nope'")
    assert error_of("mystrats_pkg.nothere:EmaRsi") == ("strategy module 'mystrats_pkg.nothere': no such module "
                                                       "(on sys.path)")
    write(pkg, "broken.py", "from engine.strategy import Strategy\nx = 1 / 0\n")
    text = error_of("mystrats_pkg.broken:X")
    assert text.endswith("broken.py:2: ZeroDivisionError: division by zero")


BAD_FILES: list[tuple[str, str, str, str]] = [
    # (case, source, spec suffix, the expected message after "strategy file <path>" or "<path>")
    ("syntax error", GOOD.replace("def populate_exit_trend(self, df):", "def populate_exit_trend(self, df)"),
     ":EmaRsi", ":23: syntax error: expected ':'"),
    ("indentation", "from engine.strategy import Strategy\nclass A(Strategy):\npass\n", ":A",
     ":3: IndentationError: expected an indented block after class definition on line 2"),
    ("exception at import", "from engine.strategy import Strategy\n\n\nVALUE = undefined_name\n", ":A",
     ":4: NameError: name 'undefined_name' is not defined"),
    ("missing package", "import talib\n", ":A", ":1: ModuleNotFoundError: No module named 'talib'"),
    ("bad parameter declaration", "from engine.strategy import IntParam, Strategy\n"
     "class A(Strategy):\n    fast = IntParam(5, 50, default=70)\n", ":A",
     ":3: StrategyError: IntParam: default 70 is outside 5..50"),
]


@pytest.mark.parametrize(("case", "source", "suffix", "expected"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_file_that_cannot_be_imported(tmp_path: Path, case: str, source: str, suffix: str, expected: str) -> None:
    path = write(tmp_path, "strat.py", source)
    text = error_of(f"{path}{suffix}")
    assert text == f"strategy file {path}{expected}", case
    assert not [m for m in sys.modules if m.startswith(PRIVATE_PREFIX + "strat_")]  # nothing half-imported left


def test_missing_file_class_and_method(tmp_path: Path) -> None:
    assert error_of(f"{tmp_path}/nope.py:A") == f"strategy file {tmp_path}/nope.py: no such file"
    path = write(tmp_path, "s.py", GOOD + textwrap.dedent('''
        class NotOne:
            pass


        class NoExit(Strategy):
            def populate_entry_trend(self, df):
                df["enter_long"] = 0
                return df
        '''))
    assert error_of(f"{path}:EmaRs") == (f"{path}: no class 'EmaRs' (did you mean 'EmaRsi'? strategies in it: "
                                         "EmaRsi, NoExit)")
    assert error_of(f"{path}:NotOne") == (f"{path}: 'NotOne' is not a Strategy (define it as class NotOne(Strategy), "
                                          "with Strategy from engine.strategy)")
    assert error_of(f"{path}:Strategy").endswith("'Strategy' is the Strategy base class itself; name a subclass")
    assert error_of(f"{path}:NoExit") == ("NoExit: missing method populate_exit_trend(self, df) (it must set "
                                          "df['exit_long'])")
    assert error_of(str(path)) == f"{path}: name the class, {path}:ClassName (strategies in it: EmaRsi, NoExit)"


def test_parameter_errors_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ema_rsi.py", GOOD)
    assert error_of(f"{path}:EmaRsi", {"fast": 300}) == "EmaRsi: parameter fast=300 is out of range 5..50"
    assert error_of(f"{path}:EmaRsi", {"fast": "twelve"}) == "EmaRsi: parameter fast='twelve' is not an integer"
    assert error_of(f"{path}:EmaRsi", {"slwo": 30}).startswith(
        "EmaRsi: unknown parameter 'slwo' (did you mean 'slow'? parameters: fast (5..50), slow (20..200))")


def test_bad_output_from_a_file(tmp_path: Path, btc_1000: CandleArrays) -> None:
    wrong_type = write(tmp_path, "wrong_type.py", GOOD.replace(
        '(df["ema_fast"] < df["ema_slow"]).astype(int)', 'np.where(df["ema_fast"] < df["ema_slow"], "yes", "no")')
        .replace("from engine.strategy", "import numpy as np\nfrom engine.strategy"))
    assert error_of(f"{wrong_type}:EmaRsi", candles=btc_1000).startswith(
        "EmaRsi: column 'exit_long' has type ")
    nan = write(tmp_path, "nan_signals.py", GOOD.replace(
        'df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)',
        'df.loc[df["ema_fast"] < df["ema_slow"], "exit_long"] = 1'))
    assert error_of(f"{nan}:EmaRsi", candles=btc_1000).startswith(
        "EmaRsi: column 'exit_long' is NaN at row 0 (2023-01-02 16:45 UTC)")
    raises = write(tmp_path, "raises.py", GOOD.replace('df["rsi"] = rsi(df["close"], 14)', 'df["rsi"] = df["rsii"]'))
    assert error_of(f"{raises}:EmaRsi", candles=btc_1000) == (
        f"EmaRsi.populate_indicators ({raises.resolve()}:15): KeyError: 'rsii'")


def test_strategy_class_is_checked_without_being_made(tmp_path: Path) -> None:
    path = write(tmp_path, "ema_rsi.py", GOOD)
    cls = strategy_class(f"{path}:EmaRsi")
    assert issubclass(cls, Strategy) and list(cls.parameters()) == ["fast", "slow"]


def test_find_strategies_lists_good_and_broken_files(tmp_path: Path) -> None:
    write(tmp_path, "a_good.py", GOOD)
    write(tmp_path, "b_broken.py", "def f(:\n")
    write(tmp_path, "_private.py", "raise SystemExit\n")
    found = find_strategies(tmp_path)
    assert found[0] == (f"{tmp_path}/a_good.py:EmaRsi", None)
    assert found[1][0] == f"{tmp_path}/b_broken.py"
    assert found[1][1] is not None and found[1][1].startswith(f"strategy file {tmp_path}/b_broken.py:1: syntax error")
    assert len(found) == 2


def test_user_code_failing_while_the_strategy_is_made(tmp_path: Path) -> None:
    path = write(tmp_path, "init.py", GOOD + textwrap.dedent('''

        class BadInit(EmaRsi):
            def __init__(self, params=None, **kw):
                super().__init__(params, **kw)
                self.window = [][0]


        class BadCheck(EmaRsi):
            def check_params(self):
                return self.fast / 0
        '''))
    resolved = path.resolve()
    assert error_of(f"{path}:BadInit") == f"BadInit ({resolved}:31): IndexError: list index out of range"
    assert error_of(f"{path}:BadCheck") == (f"BadCheck.check_params ({resolved}:36): ZeroDivisionError: "
                                            "division by zero")
