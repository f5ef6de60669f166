"""One Optuna study per window: a seeded TPE sampler, a median pruner on the trial's chunk reports, and the trials run
in this process (``jobs == 1``) or in ``jobs`` worker processes (spawned: the backtest holds the GIL between
kernel calls, so threads would not run trials side by side) that share the study through its storage.

A study remembers what it was made for (``ATTRS``: strategy, data, window, objective, space, fixed parameters);
a rerun with the same name continues it (its trial numbers go on) only when they are the same, else one line.
The sampler's seed is ``seed`` plus the trials the study already holds plus the worker's number, so a resumed
study does not redraw its first points and two workers do not draw the same ones. With one job the same seed,
data and settings give the same trials; with several the order in which trials finish decides what TPE sees, so
the trials differ from run to run (each is still a real, complete backtest).
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna

from engine.optimize.evaluate import Evaluator, Infeasible, Setup, Window
from engine.optimize.storage import open_storage
from engine.strategy.params import StrategyError

TRIAL_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


@dataclass(frozen=True, slots=True)
class Job:
    """One study to run: its name, the window it searches, how many more trials, for how long at most."""

    study: str
    window: Window
    trials: int
    timeout: float | None
    seed: int
    prune: bool
    attrs: dict[str, Any]


class StudyMismatch(StrategyError):
    """A study of that name exists and was made for other settings."""


def quiet_optuna(level: str) -> None:
    """Optuna's log lines go through ours (the root logger's handler) at ``level``, not its own stderr handler."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(max(logging.getLevelName(level), logging.WARNING)
                                         if level != "DEBUG" else logging.DEBUG)
    # its two warnings per failed trial would repeat for every trial a strategy fails on: each failure is kept in
    # results.json and counted in the report instead (shown again with --log-level DEBUG)
    logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR if level != "DEBUG" else logging.DEBUG)


def sampler(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=seed)


def pruner(prune: bool) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0) if prune else optuna.pruners.NopPruner()


def open_study(storage: optuna.storages.BaseStorage, job: Job, *, offset: int = 0) -> optuna.Study:
    """The job's study, made or continued (StudyMismatch when it was made for other settings), with its sampler
    seeded as the module docstring says."""
    study = optuna.create_study(storage=storage, study_name=job.study, direction="maximize", load_if_exists=True,
                                pruner=pruner(job.prune))
    held = study.user_attrs
    for key, value in job.attrs.items():
        if key not in held:
            study.set_user_attr(key, value)
        elif held[key] != value:
            raise StudyMismatch(f"study {job.study!r} was made for {key} {held[key]!r}, not {value!r}: continue it "
                                "with the same settings, or name another study (--study NAME)")
    done = len(study.get_trials(deepcopy=False, states=TRIAL_STATES))
    study.sampler = sampler(job.seed + done + offset)
    return study


def objective(evaluator: Evaluator, job: Job) -> Callable[[optuna.Trial], float]:
    def run(trial: optuna.Trial) -> float:
        params = evaluator.space.suggest(trial)
        try:
            return evaluator.trial(params, job.window, trial if job.prune else None)
        except Infeasible as exc:
            trial.set_user_attr("infeasible", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except StrategyError as exc:  # the strategy's own code failed on these parameters: the trial fails
            trial.set_user_attr("error", str(exc))
            raise

    return run


def run_here(evaluator: Evaluator, storage: optuna.storages.BaseStorage, job: Job,
             callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
             *, offset: int = 0) -> int:
    """Run ``job``'s trials in this process; how many ran. A strategy's error in a trial fails that trial (kept,
    with its message), not the search."""
    study = open_study(storage, job, offset=offset)
    ran = 0

    def count(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:  # this process's trials, not another's
        nonlocal ran
        ran += 1
        if callback is not None:
            callback(s, t)

    study.optimize(objective(evaluator, job), n_trials=job.trials, timeout=job.timeout, catch=(StrategyError,),
                   callbacks=[count], gc_after_trial=False, show_progress_bar=False)
    return ran


# ------------------------------------------------------------------ worker processes

_WORKER: dict[str, Any] = {}


def _start_worker(setup: Setup, storage_url: str, level: str) -> None:
    """A worker process's start: its own evaluator (the strategy loaded again from its spec) and storage."""
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    from engine.logs import configure_logging

    configure_logging(level=level, stream=sys.stderr)
    quiet_optuna(level)
    _WORKER["evaluator"] = Evaluator(setup)
    _WORKER["storage"] = open_storage(storage_url)


def _work(job: Job, worker: int) -> int:
    return run_here(_WORKER["evaluator"], _WORKER["storage"], job, offset=worker)


class Workers:
    """``jobs`` spawned processes, started once for every study of a run."""

    def __init__(self, jobs: int, setup: Setup, storage_url: str, level: str) -> None:
        self.jobs = jobs
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                                         initargs=(setup, storage_url, level))
        # every worker started (imports, the strategy loaded, the storage opened) before the first study: a task
        # long enough that each one goes to a process of its own
        for started in [self._pool.submit(time.sleep, 0.2) for _ in range(jobs)]:
            started.result()

    def run(self, job: Job, watch: Callable[[], None]) -> int:
        """``job.trials`` split between the workers (exactly that many in all); ``watch`` is called twice a second
        meanwhile (the progress bar). Returns how many ran; a worker's error is raised here."""
        shares = [job.trials // self.jobs + (1 if w < job.trials % self.jobs else 0) for w in range(self.jobs)]
        futures: list[Future[int]] = [
            self._pool.submit(_work, Job(job.study, job.window, share, job.timeout, job.seed, job.prune, job.attrs),
                              w + 1)
            for w, share in enumerate(shares) if share]
        while not all(f.done() for f in futures):
            watch()
            time.sleep(0.5)
        watch()
        return sum(f.result() for f in futures)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def workers(jobs: int, setup: Setup, storage_url: str, level: str) -> Iterator[Workers | None]:
    if jobs <= 1:
        yield None
        return
    pool = Workers(jobs, setup, storage_url, level)
    try:
        yield pool
    finally:
        pool.close()
