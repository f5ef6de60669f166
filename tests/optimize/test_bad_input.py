"""Bad input to ``trading-agent optimize``: one clear line on stderr, exit code 2, no traceback, nothing written, and
never a password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.optimize.conftest import SAMPLE_1H, Ran

LEAKY = '''
from engine.strategy import IntParam, Strategy


class Peek(Strategy):
    startup_candles = 5
    n = IntParam(1, 5, default=2)

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["close"].shift(-1).fillna(0.0) > df["close"]).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["close"].shift(-1).fillna(0.0) < df["close"]).astype(int)
        return df
'''


def _one_line(ran: Ran, *expected: str) -> None:
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err.count("\n") == 1 and ran.err.startswith("error: "), ran.err
    assert "Traceback" not in ran.err
    for text in expected:
        assert text in ran.err
    assert not (ran.folder / "results.json").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (("--range", "fsat=2..20"), ("unknown parameter 'fsat'", "did you mean 'fast'")),
    (("--param", "slwo=40"), ("unknown parameter 'slwo'", "did you mean 'slow'")),
    (("--range", "fast=50..10"), ("--range fast=50..10: empty range (50 is above 10)",)),
    (("--range", "fast=0..10"), ("out of range 1..500",)),
    (("--range", "fast=5"), ("write fast=LOW..HIGH",)),
    (("--param", "fast=12", "--param", "slow=40"), ("no parameter left to search",)),
    (("--param", "fast=12", "--range", "fast=5..20"), ("fixed (--param fast=12) and searched (--range)",)),
    (("--strategy", "model"), ("the CatBoost models have no parameters to search",)),
])
def test_bad_parameters_are_one_line(optimize: Callable[..., Ran], args: tuple[str, ...],
                                     expected: tuple[str, ...]) -> None:
    _one_line(optimize(*args), *expected)


def test_too_few_candles_for_the_folds(optimize: Callable[..., Ran]) -> None:
    _one_line(optimize("--trials", "3", data=SAMPLE_1H), "120 candles are too few for 5 walk-forward folds",
              "fewer folds (--walk-forward N)")


def test_an_unreachable_storage_is_one_line_without_its_password(optimize: Callable[..., Ran]) -> None:
    ran = optimize("--trials", "3", "--storage", "postgresql://trader:s3cret-pw@127.0.0.1:1/studies")
    _one_line(ran, "storage postgresql+psycopg://trader:***@127.0.0.1:1/studies cannot be used")
    assert "s3cret-pw" not in ran.err


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url at all", "sqlite://"])
def test_a_storage_the_optimiser_does_not_use_is_one_line(optimize: Callable[..., Ran], url: str) -> None:
    _one_line(optimize("--trials", "3", "--storage", url), "--storage")


def test_a_strategy_failing_the_lookahead_check_is_refused(optimize: Callable[..., Ran], tmp_path: Path) -> None:
    path = tmp_path / "peek.py"
    path.write_text(LEAKY)
    _one_line(optimize("--strategy", f"{path}:Peek", "--trials", "3"), "Peek(n=2) fails the look-ahead check",
              "column 'action' looks ahead")


FRAGILE = '''
from engine.strategy import IntParam, Strategy, sma


class Fragile(Strategy):
    startup_candles = 10
    n = IntParam(2, 9, default=5)

    def populate_indicators(self, df):
        if self.n {op} 5:
            raise ValueError(f"cannot use n={{self.n}}")
        df["avg"] = sma(df["close"], self.n)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["close"] > df["avg"]).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["close"] < df["avg"]).astype(int)
        return df
'''


def test_a_trial_whose_strategy_fails_is_kept_as_failed_and_the_search_goes_on(optimize: Callable[..., Ran],
                                                                               tmp_path: Path) -> None:
    path = tmp_path / "fragile.py"
    path.write_text(FRAGILE.format(op=">"))
    ran = optimize("--strategy", f"{path}:Fragile", "--walk-forward", "0", "--trials", "12")
    assert ran.code == 0, ran.err
    trials = ran.results()["folds"][0]["trials"]
    failed = [t for t in trials if t["state"] == "fail"]
    assert failed and all(t["params"]["n"] > 5 and "cannot use n=" in t["reason"] for t in failed)
    assert ran.results()["chosen"]["params"]["n"] <= 5
    assert f"{len(failed)} trials failed in the strategy's own code" in ran.out
    assert ran.err == ""  # no log line per failed trial


def test_a_search_where_every_trial_fails_is_one_line(optimize: Callable[..., Ran], tmp_path: Path) -> None:
    path = tmp_path / "fragile.py"
    path.write_text(FRAGILE.format(op=">"))
    ran = optimize("--strategy", f"{path}:Fragile", "--walk-forward", "0", "--trials", "4", "--range", "n=6..9")
    assert ran.code == 2 and ran.err.count("\n") == 1, ran.err
    assert "none of its 4 trials completed" in ran.err and "cannot use n=" in ran.err
