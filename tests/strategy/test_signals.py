"""``Strategy.signals``: the populated DataFrame becomes the kernel's arrays (action int8, confidence, tags), with
the tie rule, the warm-up, and one clear StrategyError for each way a populate method can break the rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.backtest import model_signals
from engine.core.model import CandleArrays, SmaCrossModel
from engine.core.types import Action
from engine.strategy import ENTER, EXIT, HOLD, Strategy, StrategyError
from engine.strategy.builtins import BUILTINS, BollingerBreakout, SmaCross
from engine.strategy.loader import load_strategy
from tests.strategy.conftest import SAMPLE_FILES, sample_arrays


@pytest.mark.parametrize("name", SAMPLE_FILES)
@pytest.mark.parametrize(("fast", "slow"), [(10, 30), (5, 20), (3, 7)])
def test_sma_cross_strategy_gives_sma_cross_models_actions(name: str, fast: int, slow: int) -> None:
    arrays = sample_arrays(name)
    action, confidence = model_signals(SmaCrossModel(fast, slow), arrays)
    sig = load_strategy("sma-cross", {"fast": str(fast), "slow": slow}).signals(arrays)
    assert sig.action.dtype == np.int8 and sig.confidence.dtype == np.float64
    assert np.array_equal(sig.action, action)
    assert np.array_equal(sig.confidence, confidence)
    assert (action == Action.ENTER).sum() > 0 and (action == Action.EXIT).sum() > 0
    assert np.array_equal(sig.ts, arrays.ts)


def test_default_sma_cross_matches_the_models_defaults() -> None:
    s = SmaCross()
    model = SmaCrossModel()
    assert (s.fast, s.slow) == (model.fast, model.slow)
    assert s.name == "sma-cross(fast=10,slow=30)"


class Scripted(Strategy):
    """Signals from fixed arrays (set on the class by each test), to pin the conversion rules."""

    enter: object = None
    exit: object = None
    extra: dict[str, object] = {}  # noqa: RUF012

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = self.enter
        for key, value in self.extra.items():
            df[key] = value
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = self.exit
        return df


def scripted(enter: object, exit_: object, startup: int = 0, **extra: object) -> Strategy:
    cls = type("Scripted", (Scripted,), {"enter": enter, "exit": exit_, "extra": extra, "startup_candles": startup})
    return cls()  # type: ignore[no-any-return]


def small(n: int = 6) -> CandleArrays:
    ts = np.arange(n, dtype=np.int64) * 300_000 + 1_672_531_200_000  # 2023-01-01 00:00 UTC, 5m apart
    close = np.linspace(100.0, 110.0, n)
    return CandleArrays(ts, close, close + 1, close - 1, close, np.ones(n))


def test_the_tie_rule_exit_wins_and_the_warm_up_is_hold() -> None:
    enter = [1, 1, 0, 1, 0, 1]
    exit_ = [0, 1, 1, 0, 0, 1]
    sig = scripted(enter, exit_).signals(small())
    assert sig.action.tolist() == [ENTER, EXIT, EXIT, ENTER, HOLD, EXIT]
    assert sig.confidence.tolist() == [1.0] * 6 and sig.enter_tag is None and sig.exit_tag is None
    assert scripted(enter, exit_, startup=2).signals(small()).action.tolist() == [HOLD, HOLD, EXIT, ENTER, HOLD, EXIT]


def test_bools_floats_confidence_and_tags() -> None:
    enter = np.array([True, False, True, False, False, False])
    exit_ = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    conf = [0.9, 0.1, 0.75, 0.0, 1.0, 0.5]
    tags = ["a", "b", None, "d", "e", "f"]
    sig = scripted(enter, exit_, confidence=conf, enter_tag=tags, exit_tag="why").signals(small())
    assert sig.action.tolist() == [ENTER, EXIT, ENTER, HOLD, EXIT, HOLD]
    assert sig.confidence.tolist() == conf
    assert sig.enter_tag is not None and sig.enter_tag.tolist() == ["a", None, None, None, None, None]
    assert sig.exit_tag is not None and sig.exit_tag.tolist() == [None, "why", None, None, "why", None]
    assert sig.latest() == (HOLD, 0.5, None)
    assert scripted(enter, [0, 0, 0, 0, 0, 1], exit_tag="stop").signals(small()).latest() == (EXIT, 1.0, "stop")
    assert list(sig.frame.columns[:6]) == ["date", "open", "high", "low", "close", "volume"]
    assert str(sig.frame["date"].dt.tz) == "UTC" and sig.frame["date"].iloc[0] == pd.Timestamp("2023-01-01", tz="UTC")


def test_a_strategy_cannot_change_the_callers_candles() -> None:
    class Vandal(Scripted):
        def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
            df["close"] = 0.0
            df.loc[0, "open"] = -1.0
            return df

    candles = small()
    before = candles.close.copy(), candles.open.copy()
    type("V", (Vandal,), {"enter": 0, "exit": 0})().signals(candles)
    assert np.array_equal(candles.close, before[0]) and np.array_equal(candles.open, before[1])


def one_line_error(strategy: Strategy, candles: CandleArrays | None = None) -> str:
    with pytest.raises(StrategyError) as exc:
        strategy.signals(small() if candles is None else candles)
    text = str(exc.value)
    assert "\n" not in text and exc.value.__cause__ is None
    assert exc.value.__context__ is None or exc.value.__suppress_context__  # nothing chained to print
    return text


@pytest.mark.parametrize(("enter", "expected"), [
    ([0, 0, np.nan, 1, 0, 0], "Scripted: column 'enter_long' is NaN at row 2 (2023-01-01 00:10 UTC) (1 rows); "
                              "give every row 0 or 1, e.g. df['enter_long'] = (condition).astype(int)"),
    (["1", "0", "0", "0", "0", "0"], "Scripted: column 'enter_long' has type "),
    ([0, 0, 0, 2, 0, 0], "Scripted: column 'enter_long' must be 0 or 1, is 2 at row 3 (2023-01-01 00:15 UTC)"),
    (pd.Series([True, None, True, False, False, False], dtype="boolean"),
     "Scripted: column 'enter_long' is NaN at row 1"),
])
def test_bad_signal_columns(enter: object, expected: str) -> None:
    assert one_line_error(scripted(enter, 0)).startswith(expected)


def test_the_loc_pattern_that_leaves_nan_is_named() -> None:
    class LocOnly(Strategy):
        def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
            df.loc[df["close"] > 105, "enter_long"] = 1
            return df

        def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
            df["exit_long"] = 0
            return df

    assert one_line_error(LocOnly()).startswith("LocOnly: column 'enter_long' is NaN at row 0 (2023-01-01 00:00 UTC)")


def test_bad_confidence() -> None:
    assert one_line_error(scripted(0, 0, confidence=[0.5, 1.5, 0, 0, 0, 0])) == (
        "Scripted: column 'confidence' must be between 0 and 1, is 1.5 at row 1 (2023-01-01 00:05 UTC)")
    assert one_line_error(scripted(0, 0, confidence="high")).startswith("Scripted: column 'confidence' has type")


def test_a_missing_signal_column() -> None:
    class NoExitColumn(Scripted):
        def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
            return df

    text = one_line_error(type("NoExit", (NoExitColumn,), {"enter": 0})())
    assert text == ("NoExit.populate_exit_trend: no column 'exit_long' (set df['exit_long'] = 1 where to exit, "
                    "0 elsewhere)")


def test_populate_methods_must_return_the_frame_with_its_rows() -> None:
    class ReturnsNothing(Scripted):
        def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
            df["x"] = 1
            return None

    class ReturnsSeries(Scripted):
        def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
            return df["close"]

    class DropsRows(Scripted):
        def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
            return df.dropna().iloc[5:]

    class Reindexes(Scripted):
        def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
            return df.set_index("date")

    assert one_line_error(ReturnsNothing()) == ("ReturnsNothing.populate_indicators returned nothing; it must return "
                                                "the DataFrame (end it with `return df`)")
    assert one_line_error(ReturnsSeries()).startswith("ReturnsSeries.populate_indicators returned a Series;")
    assert one_line_error(DropsRows()).startswith("DropsRows.populate_indicators changed the rows (6 candles in, "
                                                  "1 rows out)")
    assert one_line_error(Reindexes()).startswith("Reindexes.populate_indicators changed the rows")


def test_an_exception_in_a_populate_method_is_one_line_with_file_and_line() -> None:
    class Broken(Scripted):
        def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
            df["x"] = df["no_such_column"]
            return df

    text = one_line_error(Broken())
    assert text.startswith("Broken.populate_indicators (")
    assert __file__ in text and text.endswith(": KeyError: 'no_such_column'")


def test_a_series_shorter_than_the_warm_up_is_all_hold() -> None:
    sig = SmaCross().signals(small(6))
    assert sig.action.tolist() == [HOLD] * 6


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_live_window_gives_the_whole_series_action(name: str, btc_5m: CandleArrays) -> None:
    """The live loop runs ``signals`` on the trailing ``lookback`` candles; its last row is the live signal."""
    strategy = load_strategy(name)
    full = strategy.signals(btc_5m)
    ends = range(strategy.lookback, len(btc_5m), 97)
    live = [int(strategy.signals(btc_5m.slice(end - strategy.lookback, end)).action[-1]) for end in ends]
    assert live == [int(full.action[end - 1]) for end in ends]
    assert (full.action != HOLD).sum() > 0


def test_builtins_signal_on_real_candles(btc_5m: CandleArrays) -> None:
    for name, cls in BUILTINS.items():
        sig = cls().signals(btc_5m)
        assert (sig.action == ENTER).sum() > 0 and (sig.action == EXIT).sum() > 0, name
    assert BollingerBreakout(window=50).startup_candles == 50
