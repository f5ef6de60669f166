"""Walk-forward: the out-of-sample windows follow their in-sample windows and never overlap one another; the purge
(the chosen parameters' warm-up) is never scored nor traded; a seeded study is reproducible; a resumed study
continues its count; --walk-forward 0 says its number is in-sample."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.optimize.walkforward import make_folds
from engine.strategy.params import StrategyError
from tests.optimize.conftest import Ran


@pytest.mark.parametrize(("n", "folds", "ratio"), [(10_999, 5, 4), (1_000, 3, 2), (777, 1, 1), (5_000, 7, 3)])
def test_folds_are_consecutive_and_out_of_sample_windows_never_overlap(n: int, folds: int, ratio: int) -> None:
    made = make_folds(n, folds, ratio, 30, what="data")
    assert [f.index for f in made] == list(range(1, folds + 1))
    assert made[-1].out_of_sample is not None and made[-1].out_of_sample.end == n  # up to the newest candle
    oos = []
    for fold in made:
        assert fold.out_of_sample is not None
        assert fold.in_sample.end == fold.out_of_sample.start  # out-of-sample right after in-sample
        assert len(fold.in_sample) == ratio * len(fold.out_of_sample)
        oos.append((fold.out_of_sample.start, fold.out_of_sample.end))
    for (_, end), (start, _) in itertools.pairwise(oos):
        assert end == start  # consecutive, none overlapping


def test_too_few_candles_for_the_folds_is_one_line() -> None:
    with pytest.raises(StrategyError, match="too few for 5 walk-forward folds"):
        make_folds(120, 5, 4, 30, what="data")


def test_purge_is_applied_and_out_of_sample_never_touches_in_sample(optimize: Callable[..., Ran]) -> None:
    ran = optimize("--walk-forward", "3", "--trials", "8", "--range", "fast=2..30", "--range", "slow=10..120")
    assert ran.code == 0, ran.err
    doc = ran.results()
    assert len(doc["folds"]) == 3
    before_end = -1
    for fold in doc["folds"]:
        is_w, oos_w, scored = fold["in_sample"], fold["out_of_sample"], fold["out_of_sample_scored"]
        purge = fold["purge"]
        assert purge == fold["chosen"]["slow"]  # sma-cross warms up on its slow average
        assert oos_w["start"] == is_w["end"] and oos_w["start"] >= before_end
        before_end = oos_w["end"]
        assert scored["candles"] == oos_w["candles"] - purge  # the purge is not scored
        assert scored["first_ts"] > is_w["last_ts"]
        step = (oos_w["last_ts"] - oos_w["first_ts"]) // (oos_w["candles"] - 1)
        assert scored["first_ts"] == oos_w["first_ts"] + purge * step  # (the 5m sample has no gap)
        assert all(t["entry_time"] > scored["first_ts"] for t in fold["out_of_sample_trades"])
    assert "purge (warm-up of the chosen parameters, not scored)" in ran.out
    assert "Out-of-sample, stitched (3 windows" in ran.out


def test_a_seeded_study_is_reproducible(optimize: Callable[..., Ran]) -> None:
    args = ("--walk-forward", "1", "--trials", "12", "--seed", "7", "--objective", "sortino")
    first, second = optimize(*args), optimize(*args)
    assert first.code == second.code == 0, first.err + second.err

    def trials(ran: Ran) -> list[list[tuple[object, ...]]]:
        return [[(t["number"], t["state"], t["params"], t["value"]) for t in f["trials"]]
                for f in ran.results()["folds"]]

    assert trials(first) == trials(second)
    assert len(trials(first)[0]) == 12
    assert len({str(t[2]) for t in trials(first)[0]}) > 6  # really searched, not one point repeated
    assert first.results()["chosen"] == second.results()["chosen"]
    other = optimize(*args[:-4], "--seed", "8", "--objective", "sortino")
    assert trials(other) != trials(first)


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_a_resumed_study_continues_its_count(optimize: Callable[..., Ran], tmp_path: Path, storage: str) -> None:
    folder = tmp_path / "resumed"
    kept = folder / ("study.db" if storage == "sqlite" else "study.log")
    args = ("--walk-forward", "0", "--trials", "5", "--study", "mine",
            *(("--storage", str(kept)) if storage == "journal" else ()))
    first = optimize(*args, out=folder)
    second = optimize(*args, out=folder)
    assert first.code == second.code == 0, first.err + second.err
    assert kept.is_file()
    numbers = [t["number"] for t in second.results()["folds"][0]["trials"]]
    assert numbers == list(range(10))
    assert second.results()["folds"][0]["trials_now"] == 5
    assert "IN-SAMPLE" in second.out and "not a forecast" in second.out
    assert second.results()["in_sample_only"] is True
    changed = optimize(*args, "--objective", "return", out=folder)
    assert changed.code == 2 and changed.err.count("\n") == 1
    assert "study 'mine:in-sample' was made for objective 'sharpe', not 'return'" in changed.err


def test_a_users_strategy_with_float_and_choice_parameters(optimize: Callable[..., Ran], tmp_path: Path) -> None:
    from engine.strategy.template import write_template

    path = write_template("my-strat", tmp_path)
    ran = optimize("--strategy", f"{path}:MyStrat", "--walk-forward", "1", "--trials", "6", "--range",
                   "confirm=True", "--range", "rsi_max=60..80", "--objective", "calmar", plots=True)
    assert ran.code == 0, ran.err
    chosen = ran.results()["chosen"]["params"]
    assert chosen["confirm"] is True and 60.0 <= chosen["rsi_max"] <= 80.0 and isinstance(chosen["rsi_max"], float)
    assert all(t["params"]["confirm"] is True for t in ran.results()["folds"][0]["trials"])
    assert (ran.folder / "params.png").is_file() and (ran.folder / "oos_equity.png").is_file()


def test_jobs_share_the_default_sqlite_study(optimize: Callable[..., Ran]) -> None:
    ran = optimize("--walk-forward", "1", "--trials", "8", "--jobs", "2")
    assert ran.code == 0, ran.err
    trials = ran.results()["folds"][0]["trials"]
    assert sorted(t["number"] for t in trials) == list(range(8))
    assert ran.results()["folds"][0]["trials_now"] == 8
    assert "2 jobs" in ran.out
