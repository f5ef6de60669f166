"""The whole optimisation: a study per fold (or one in-sample study), the chosen parameters of each backtested on its
in-sample and out-of-sample windows by ``run_backtest``, the out-of-sample results stitched, the verdict.

The parameters to trade (``Outcome.chosen``) are the newest fold's: chosen on the newest in-sample window, and
with an out-of-sample result of their own (that fold's row). With ``--walk-forward 0`` they are the in-sample
search's best, and every number is in-sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna

from engine.backtest import BacktestResult, compute_metrics
from engine.core.model import CandleArrays
from engine.optimize.evaluate import Evaluator, Setup, Window
from engine.optimize.objectives import LABELS, comparable
from engine.optimize.search import TRIAL_STATES, Job, Workers, open_study, run_here
from engine.optimize.walkforward import Fold, Stitched, stitch
from engine.strategy.params import StrategyError

OVERFIT_EFFICIENCY = 0.5  # out-of-sample below half of in-sample (the comparable objective) is overfitting


@dataclass(slots=True)
class FoldOutcome:
    fold: Fold
    study: str
    trials: list[optuna.trial.FrozenTrial]
    ran: int  # trials run now (the rest came from earlier runs)
    params: dict[str, Any]
    best_value: float
    startup: int
    in_sample: BacktestResult
    out_of_sample: BacktestResult | None
    oos_candles: CandleArrays | None

    def comparable(self, objective: str) -> tuple[float, float | None]:
        oos = None if self.out_of_sample is None else comparable(objective, self.out_of_sample.metrics)
        return comparable(objective, self.in_sample.metrics), oos

    @property
    def purge(self) -> int:
        return self.startup


@dataclass(slots=True)
class Outcome:
    folds: list[FoldOutcome]
    stitched: Stitched | None
    stitched_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def chosen(self) -> FoldOutcome:
        return self.folds[-1]


def _best(study: optuna.Study, name: str) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if trials:
        return max(trials, key=lambda t: (float(t.value or 0.0), -t.number))
    everything = study.get_trials(deepcopy=False)
    reasons = [str(t.user_attrs.get("error") or t.user_attrs.get("infeasible") or "")
               for t in everything if t.state != optuna.trial.TrialState.COMPLETE]
    first = next((r for r in reasons if r), "")
    detail = f"; the first said: {first}" if first else ""
    raise StrategyError(f"study {name!r}: none of its {len(everything)} trials completed{detail}")


class Progress(Protocol):
    """What the search tells a progress display: each finished trial here, or a poll while workers run."""

    def trial(self, trial: optuna.trial.FrozenTrial) -> None: ...

    def poll(self) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[optuna.Study, str, int], Progress]


def search(evaluator: Evaluator, storage: optuna.storages.BaseStorage, job: Job, pool: Workers | None,
           progress: ProgressFactory | None) -> tuple[optuna.Study, int]:
    """Run one study (here or in the pool); the study and how many trials ran now."""
    study = open_study(storage, job)  # made here first: the workers then find it (and its settings checked)
    shown = progress(study, job.study, job.trials) if progress is not None else None
    try:
        if pool is None:
            def callback(_s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
                if shown is not None:
                    shown.trial(t)

            ran = run_here(evaluator, storage, job, callback)
        else:
            ran = pool.run(job, shown.poll if shown is not None else (lambda: None))
    finally:
        if shown is not None:
            shown.close()
    return study, ran


def evaluate_fold(evaluator: Evaluator, fold: Fold, study: optuna.Study, ran: int) -> FoldOutcome:
    """The fold's best parameters backtested by ``run_backtest`` on its windows (scored after the warm-up)."""
    best = _best(study, study.study_name)
    params = {**evaluator.space.fixed, **best.params}
    in_sample = evaluator.backtest(params, fold.in_sample)
    startup = int(evaluator.strategy(params).startup_candles)
    oos = oos_candles = None
    if fold.out_of_sample is not None:
        oos = evaluator.backtest(params, fold.out_of_sample)
        w = fold.out_of_sample
        oos_candles = evaluator.setup.candles.slice(w.start + startup, w.end)
    trials = study.get_trials(deepcopy=False, states=TRIAL_STATES)
    return FoldOutcome(fold, study.study_name, trials, ran, params, float(best.value or 0.0), startup, in_sample,
                       oos, oos_candles)


def stitched_outcome(folds: list[FoldOutcome], setup: Setup) -> tuple[Stitched | None, dict[str, float]]:
    pieces = [(f.out_of_sample, f.oos_candles) for f in folds if f.out_of_sample is not None
              and f.oos_candles is not None]
    if not pieces:
        return None, {}
    joined = stitch(pieces, setup.costs.fee_rate, setup.cash)
    candles = CandleArrays(*(np.concatenate([getattr(c, name) for _, c in pieces])
                             for name in ("ts", "open", "high", "low", "close", "volume")))
    result = BacktestResult(setup.symbol, "stitched", [t for r, _ in pieces for t in r.trades], joined.ts,
                            joined.equity, np.concatenate([r.in_position for r, _ in pieces]),
                            sum(r.fees for r, _ in pieces), setup.cash, None)
    metrics = compute_metrics(result, candles, setup.costs)
    metrics["buy_and_hold_return"] = joined.buy_and_hold_return  # chained per window, not first open to last close
    return joined, metrics


def verdict(outcome: Outcome, objective: str) -> tuple[str, float | None]:
    """One line on how much of the in-sample result survived out of sample, and the walk-forward efficiency
    (mean out-of-sample over mean in-sample, of the comparable objective; None where it means nothing)."""
    pairs = [f.comparable(objective) for f in outcome.folds]
    name = LABELS[objective] if objective != "return" else "annual return"
    if all(oos is None for _, oos in pairs):
        return ("IN-SAMPLE: these numbers come from the candles the parameters were chosen on; they are not a "
                "forecast (the default walk-forward gives out-of-sample numbers)"), None
    is_mean = sum(i for i, _ in pairs) / len(pairs)
    oos_mean = sum(o for _, o in pairs if o is not None) / len(pairs)
    if not math.isfinite(is_mean) or is_mean <= 0:
        return (f"nothing worked in-sample (mean in-sample {name} {is_mean:.3g}): the strategy has no edge "
                "on these candles in this space"), None
    efficiency = oos_mean / is_mean
    if efficiency < OVERFIT_EFFICIENCY:
        return (f"OVERFITTING: out-of-sample {name} averages {oos_mean:.3g} against {is_mean:.3g} in-sample "
                f"(walk-forward efficiency {efficiency * 100:.0f} %, below {OVERFIT_EFFICIENCY * 100:.0f} %): the "
                "in-sample best does not carry over; do not trust the in-sample numbers"), efficiency
    return (f"out-of-sample {name} averages {oos_mean:.3g} against {is_mean:.3g} in-sample (walk-forward "
            f"efficiency {efficiency * 100:.0f} %): the search generalised across these folds"), efficiency


def optimise(evaluator: Evaluator, storage: optuna.storages.BaseStorage, folds: list[Fold],
             make_job: Callable[[Fold], Job], pool: Workers | None, progress: ProgressFactory | None = None
             ) -> tuple[Outcome, list[optuna.Study]]:
    """Every fold's study, then its chosen parameters backtested; the outcome and the studies."""
    outcomes, studies = [], []
    for fold in folds:
        study, ran = search(evaluator, storage, make_job(fold), pool, progress)
        studies.append(study)
        outcomes.append(evaluate_fold(evaluator, fold, study, ran))
    joined, metrics = stitched_outcome(outcomes, evaluator.setup)
    return Outcome(outcomes, joined, metrics), studies


def window_dict(w: Window | None, ts: np.ndarray) -> dict[str, Any] | None:
    if w is None:
        return None
    return {"start": w.start, "end": w.end, "first_ts": int(ts[w.start]), "last_ts": int(ts[w.end - 1]),
            "candles": len(w)}
