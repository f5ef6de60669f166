"""Parameters: declared ranges, defaults, overrides by keyword or dict (strings converted by type), and one
clear StrategyError naming the parameter for anything out of range, of the wrong type or unknown."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from engine.errors import ConfigError
from engine.strategy import CategoricalParam, FloatParam, IntParam, Param, Strategy, StrategyError


class Tunable(Strategy):
    startup_candles = 20
    stoploss = -0.05
    take_profit = 0.1
    fast = IntParam(5, 50, default=12)
    slow = IntParam(20, 200, default=26)
    band = FloatParam(0.5, 3.0, default=2.0)
    mode = CategoricalParam(["ema", "sma"], default="ema")
    strict = CategoricalParam([True, False], default=False)

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = 0
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = 0
        return df


def message(exc: pytest.ExceptionInfo[StrategyError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_defaults_and_values_read_as_plain_attributes() -> None:
    s = Tunable()
    assert s.params() == {"fast": 12, "slow": 26, "band": 2.0, "mode": "ema", "strict": False}
    assert s.fast == 12 and isinstance(s.fast, int)
    assert isinstance(Tunable.fast, IntParam) and Tunable.fast.name == "fast"
    assert list(Tunable.parameters()) == ["fast", "slow", "band", "mode", "strict"]
    assert all(isinstance(p, Param) for p in Tunable.parameters().values())
    assert s.name == "Tunable(fast=12,slow=26,band=2.0,mode=ema,strict=False)"


def test_overrides_by_keyword_by_dict_and_from_strings() -> None:
    assert Tunable(fast=20).fast == 20
    s = Tunable({"fast": "30", "band": "1.25", "mode": "sma", "strict": "true"}, slow=100)
    assert s.params() == {"fast": 30, "slow": 100, "band": 1.25, "mode": "sma", "strict": True}
    assert Tunable(fast=7.0).fast == 7  # a whole float is an integer
    assert Tunable().fast == 12  # instances do not share values


@pytest.mark.parametrize(("given", "expected"), [
    ({"fast": 300}, "Tunable: parameter fast=300 is out of range 5..50"),
    ({"fast": "4"}, "Tunable: parameter fast='4' is out of range 5..50"),
    ({"fast": "abc"}, "Tunable: parameter fast='abc' is not an integer"),
    ({"fast": 12.5}, "Tunable: parameter fast=12.5 is not an integer"),
    ({"fast": True}, "Tunable: parameter fast=True is not an integer"),
    ({"band": 3.5}, "Tunable: parameter band=3.5 is out of range 0.5..3"),
    ({"band": "nan"}, "Tunable: parameter band='nan' is not a finite number"),
    ({"band": "wide"}, "Tunable: parameter band='wide' is not a number"),
    ({"mode": "wma"}, "Tunable: parameter mode='wma' is not one of 'ema', 'sma'"),
    ({"strict": "maybe"}, "Tunable: parameter strict='maybe' is not one of True, False"),
])
def test_a_bad_value_is_one_line_naming_the_parameter(given: dict[str, Any], expected: str) -> None:
    with pytest.raises(StrategyError) as exc:
        Tunable(given)
    assert message(exc) == expected
    assert isinstance(exc.value, ConfigError)  # exit code 2 at a command's edge


def test_an_unknown_parameter_names_close_matches_and_the_declared_ones() -> None:
    with pytest.raises(StrategyError) as exc:
        Tunable(fsat=10)
    text = message(exc)
    assert text.startswith("Tunable: unknown parameter 'fsat' (did you mean 'fast'?")
    assert "fast (5..50)" in text and "mode (one of 'ema', 'sma')" in text


def test_declaring_a_bad_parameter_fails_at_once() -> None:
    with pytest.raises(StrategyError, match=r"IntParam: default 60 is outside 5\.\.50"):
        IntParam(5, 50, default=60)
    with pytest.raises(StrategyError, match="IntParam: low must be an integer"):
        IntParam(1.5, 50, default=10)  # type: ignore[arg-type]
    with pytest.raises(StrategyError, match="FloatParam: default 9 is outside"):
        FloatParam(0.0, 1.0, default=9.0)
    with pytest.raises(StrategyError, match="CategoricalParam: default 'x' is not one of"):
        CategoricalParam(["a", "b"], default="x")
    with pytest.raises(StrategyError, match="non-empty list"):
        CategoricalParam([], default="x")


def test_a_parameter_cannot_be_assigned_after_construction() -> None:
    s = Tunable()
    with pytest.raises(AttributeError, match="set when the strategy is made"):
        s.fast = 20


def test_parameters_that_depend_on_each_other_are_checked_together() -> None:
    from engine.strategy.builtins import SmaCross

    with pytest.raises(StrategyError) as exc:
        SmaCross(fast=30, slow=30)
    assert message(exc) == "sma-cross: fast (30) must be below slow (30)"


def test_class_attributes_are_checked() -> None:
    class Bad(Tunable):
        stoploss = 0.05  # must be negative

    with pytest.raises(StrategyError) as exc:
        Bad()
    assert message(exc) == "Bad: stoploss must be None or a negative fraction of the entry price, e.g. -0.05, got 0.05"

    class BadStart(Tunable):
        startup_candles = -1

    with pytest.raises(StrategyError, match="startup_candles must be a whole number >= 0"):
        BadStart()


def test_metadata_and_protective_exits() -> None:
    s = Tunable(fast=15)
    assert s.protective_exits() == {"stop_loss_pct": 0.05, "take_profit_pct": 0.1, "trailing_stop_pct": 0.0}
    meta = s.metadata()
    assert meta["kind"] == "strategy" and meta["params"]["fast"] == 15 and meta["startup_candles"] == 20
    assert s.lookback >= s.startup_candles


def test_a_subclass_can_fix_or_add_parameters() -> None:
    class Fixed(Tunable):
        fast = 9  # no longer tunable
        extra = IntParam(0, 5, default=1)

    assert list(Fixed.parameters()) == ["slow", "band", "mode", "strict", "extra"]
    s = Fixed(extra="3")
    assert s.fast == 9 and s.params()["extra"] == 3
    with pytest.raises(StrategyError, match="unknown parameter 'fast'"):
        Fixed(fast=10)


def test_configure_sets_what_depends_on_the_parameters_and_the_port_fits() -> None:
    from engine.ports import Strategy as StrategyPort
    from engine.strategy.base import LIVE_MARGIN
    from engine.strategy.builtins import SmaCross

    port: StrategyPort = SmaCross(slow=50)
    assert port.name == "sma-cross(fast=10,slow=50)" and port.lookback == 50 + LIVE_MARGIN
    assert port.metadata()["startup_candles"] == 50

    class Derived(Tunable):
        def configure(self) -> None:
            self.startup_candles = 2 * self.slow

    assert Derived(slow=40).startup_candles == 80 and Derived(slow=40).lookback == 80 + LIVE_MARGIN
    assert Tunable.startup_candles == 20  # the class keeps its own

    class Broken(Tunable):
        def configure(self) -> None:
            self.startup_candles = -self.slow

    with pytest.raises(StrategyError, match="Broken: startup_candles must be a whole number >= 0, got -26"):
        Broken()
