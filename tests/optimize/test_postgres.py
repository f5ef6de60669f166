"""Several processes on one study in PostgreSQL (Optuna's RDB storage): two separate commands, as two machines would
run them, and one command's --jobs worker processes; every trial is counted once, none lost or duplicated."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from engine.optimize.storage import normalise
from tests.optimize.conftest import ROOT, SAMPLE_5M, Ran

pytestmark = pytest.mark.postgres

ARGS = ["--strategy", "sma-cross", "--data", str(SAMPLE_5M), "--walk-forward", "0", "--range", "fast=2..40",
        "--range", "slow=10..200", "--no-progress", "--no-plots", "--study", "shared"]


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(normalise(url))
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def _check(trials: list[optuna.trial.FrozenTrial], count: int) -> None:
    assert sorted(t.number for t in trials) == list(range(count))  # none lost, none numbered twice
    assert all(t.state.is_finished() for t in trials)
    assert len({t._trial_id for t in trials}) == count


def test_two_processes_complete_their_trials_on_one_study(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = [[sys.executable, "-m", "engine.cli", "optimize", *ARGS, "--trials", "10", "--seed", str(seed),
                 "--storage", pg_url, "--out", str(tmp_path / f"p{seed}")] for seed in (1, 2)]
    procs = [subprocess.Popen(c, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Chosen parameters" in out and "· 10 trials run now" in out
    _check(_trials(pg_url, "shared:in-sample"), 20)


def test_jobs_share_one_study_exactly(optimize: Callable[..., Ran], pg_url: str) -> None:
    ran = optimize(*ARGS[4:], "--trials", "14", "--jobs", "2", "--storage", pg_url)
    assert ran.code == 0, ran.err
    _check(_trials(pg_url, "shared:in-sample"), 14)
    assert ran.results()["folds"][0]["trials_now"] == 14
