"""The optimisation's PNGs, drawn by Optuna's matplotlib plots (Agg backend): the optimisation history of every
study, the parameters' importance and the objective against each parameter (the newest study: the one whose
parameters are chosen), and the stitched out-of-sample equity against buy and hold (``engine.charts``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import optuna

from engine.optimize.run import Outcome


def _save(ax: object, path: Path, title: str) -> Path:
    figure = getattr(ax, "figure", None)
    if figure is None:  # plot_slice gives an array of axes for several parameters
        figure = ax.flat[0].figure  # type: ignore[attr-defined]  # numpy array of Axes
    figure.suptitle(title)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def write_plots(outcome: Outcome, studies: list[optuna.Study], out: Path, title: str) -> list[Path]:
    """The PNGs in ``out``; a plot Optuna cannot draw (too few completed trials for importance) is left out."""
    from optuna.visualization import matplotlib as ovm

    written: list[Path] = []
    newest = studies[-1]
    complete = [t for t in newest.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    with warnings.catch_warnings():
        # Optuna marks its matplotlib plots experimental (their look may change); they are what we want
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # matplotlib widens an axis of a parameter searched at one value (--range NAME=a): nothing to warn about
        warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
        written.append(_save(ovm.plot_optimization_history(studies if len(studies) > 1 else newest),
                             out / "history.png", f"{title}: optimisation history"))
        if len(complete) >= 2:
            try:
                written.append(_save(ovm.plot_param_importances(newest), out / "importance.png",
                                     f"{title}: parameter importance ({newest.study_name})"))
            except (RuntimeError, ValueError):  # every completed trial scored the same: nothing to attribute
                pass
        if complete:
            written.append(_save(ovm.plot_slice(newest), out / "params.png",
                                 f"{title}: objective against each parameter ({newest.study_name})"))
    if outcome.stitched is not None and outcome.stitched.equity.size:
        from engine.charts import equity_curves_png

        s = outcome.stitched
        path = out / "oos_equity.png"
        path.write_bytes(equity_curves_png([int(t) for t in s.ts],
                                           [("out-of-sample, stitched", [float(v) for v in s.equity]),
                                            ("buy & hold", [float(v) for v in s.buy_and_hold])],
                                           title=f"{title}: out-of-sample equity"))
        written.append(path)
    return written
