"""The optimisation's report: the table printed (in-sample and out-of-sample side by side per fold, the parameters
each fold chose and how stable they are, the stitched out-of-sample result against buy and hold, the verdict) and
the JSON written beside the plots (every trial of every study, and the chosen parameters)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from engine.feeds.candle_file import iso_utc
from engine.optimize.objectives import LABELS, score
from engine.optimize.run import OVERFIT_EFFICIENCY, FoldOutcome, Outcome, verdict, window_dict
from engine.optimize.space import Space

STABLE, VARIES = 0.10, 0.30  # spread of a numeric parameter's choices, as a share of its searched range


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in params.items())


def _pct(x: float) -> str:
    return f"{x * 100:+.2f} %" if math.isfinite(x) else "n/a"


def _num(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _day(ts: int) -> str:
    return iso_utc(ts)[:16].replace("T", " ")


def stability(space: Space, folds: Sequence[FoldOutcome]) -> list[tuple[str, str, str]]:
    """(parameter, the values the folds chose, how stable) per searched parameter."""
    out = []
    for d in space.dimensions:
        values = [f.params[d.name] for f in folds]
        if d.kind == "categorical":
            top = max(set(values), key=values.count)
            share = values.count(top) / len(values)
            word = "stable" if share == 1 else "varies" if share >= 0.5 else "unstable"
            out.append((d.name, ", ".join(_value(v) for v in values), f"{word} ({top!r} in {values.count(top)} of "
                                                                     f"{len(values)})"))
            continue
        spread = (max(values) - min(values)) / d.width() if d.width() > 0 else 0.0
        word = "stable" if spread <= STABLE else "varies" if spread <= VARIES else "unstable"
        out.append((d.name, ", ".join(_value(v) for v in values),
                    f"{word} (spread {spread * 100:.0f} % of {d.describe()})"))
    return out


def render(outcome: Outcome, *, head: str, objective: str, space: Space) -> str:
    label = LABELS[objective]
    lines = [head, ""]
    walk = outcome.folds[0].out_of_sample is not None
    if walk:
        lines.append(f"  {'fold':>4}  {'in-sample':<36}  {'out-of-sample (after purge)':<36}  {'trials':>6}  "
                     f"{'IS ' + label:>13}  {'OOS ' + label:>14}  {'IS return':>10}  {'OOS return':>10}  "
                     f"{'OOS B&H':>9}  chosen")
    for f in outcome.folds:
        is_m = f.in_sample.metrics
        is_span = f"{_day(int(f.in_sample.ts[0]))} .. {_day(int(f.in_sample.ts[-1]))}" if f.in_sample.ts.size else ""
        trials = f"{len(f.trials):>6}"
        if f.out_of_sample is None:
            lines.append(f"  In-sample {is_span} · {len(f.trials)} trials ({f.ran} now)")
            lines.append(f"  {label} {_num(score(objective, is_m))} · return {_pct(is_m['total_return'])} · max "
                         f"drawdown {is_m['max_drawdown'] * 100:.2f} % · {int(is_m['trades'])} trades · buy & hold "
                         f"{_pct(is_m['buy_and_hold_return'])}")
            lines.append(f"  chosen: {params_text(f.params)}")
            continue
        o = f.out_of_sample.metrics
        oos_span = (f"{_day(int(f.out_of_sample.ts[0]))} .. {_day(int(f.out_of_sample.ts[-1]))}"
                    if f.out_of_sample.ts.size else "(none)")
        is_c, oos_c = f.comparable(objective)
        flag = "  (overfit)" if is_c > 0 and oos_c is not None and oos_c < OVERFIT_EFFICIENCY * is_c else ""
        lines.append(f"  {f.fold.index:>4}  {is_span:<36}  {oos_span:<36}  {trials}  {_num(score(objective, is_m)):>13}"
                     f"  {_num(score(objective, o)):>14}  {_pct(is_m['total_return']):>10}  "
                     f"{_pct(o['total_return']):>10}  {_pct(o['buy_and_hold_return']):>9}  {params_text(f.params)}"
                     f"{flag}")
    if walk:
        purges = ", ".join(str(f.purge) for f in outcome.folds)
        lines.append(f"  purge (warm-up of the chosen parameters, not scored) per fold: {purges} candles")
        lines += ["", "Parameters chosen per fold:"]
        lines += [f"  {name}: {values} -> {word}" for name, values, word in stability(space, outcome.folds)]
    if outcome.stitched is not None and outcome.stitched.equity.size:
        s, m = outcome.stitched, outcome.stitched_metrics
        lines += ["", f"Out-of-sample, stitched ({len(outcome.folds)} windows, {s.equity.size:,} candles): return "
                      f"{_pct(s.total_return)} against buy & hold {_pct(s.buy_and_hold_return)}; Sharpe "
                      f"{_num(m['sharpe'])}; max drawdown {s.max_drawdown * 100:.2f} %; {int(m['trades'])} trades"]
    failed = [t for f in outcome.folds for t in f.trials if t.state == optuna.trial.TrialState.FAIL]
    if failed:
        lines += ["", f"{len(failed)} trials failed in the strategy's own code (results.json has each); the first: "
                      f"{failed[0].user_attrs.get('error', '?')}"]
    text, _ = verdict(outcome, objective)
    lines += ["", text]
    chosen = outcome.chosen
    where = f"fold {chosen.fold.index}, the newest in-sample window" if walk else "the in-sample search"
    lines.append(f"Chosen parameters ({where}): {params_text(chosen.params)}")
    return "\n".join(lines)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _trial(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    out: dict[str, Any] = {"number": t.number, "state": t.state.name.lower(), "value": _finite(t.value),
                           "params": t.params}
    if t.intermediate_values:
        out["intermediate"] = {str(k): _finite(v) for k, v in t.intermediate_values.items()}
    reason = t.user_attrs.get("error") or t.user_attrs.get("infeasible")
    if reason:
        out["reason"] = reason
    if t.datetime_start is not None and t.datetime_complete is not None:
        out["seconds"] = round((t.datetime_complete - t.datetime_start).total_seconds(), 4)
    return out


def _metrics(m: Mapping[str, float]) -> dict[str, Any]:
    return {k: _finite(float(v)) for k, v in m.items()}


def document(outcome: Outcome, *, settings: Mapping[str, Any], objective: str, ts: np.ndarray) -> dict[str, Any]:
    """The results JSON (module docstring)."""
    text, efficiency = verdict(outcome, objective)
    folds = []
    for f in outcome.folds:
        folds.append({
            "fold": f.fold.index, "study": f.study, "in_sample": window_dict(f.fold.in_sample, ts),
            "out_of_sample": window_dict(f.fold.out_of_sample, ts), "purge": f.purge,
            "out_of_sample_scored": None if f.out_of_sample is None or not f.out_of_sample.ts.size else {
                "first_ts": int(f.out_of_sample.ts[0]), "last_ts": int(f.out_of_sample.ts[-1]),
                "candles": int(f.out_of_sample.ts.size)},
            "out_of_sample_trades": [] if f.out_of_sample is None else [
                {"entry_time": t.entry_time, "exit_time": t.exit_time} for t in f.out_of_sample.trades],
            "chosen": f.params, "best_value": _finite(f.best_value), "trials_now": f.ran,
            "in_sample_metrics": _metrics(f.in_sample.metrics),
            "out_of_sample_metrics": None if f.out_of_sample is None else _metrics(f.out_of_sample.metrics),
            "trials": [_trial(t) for t in f.trials],
        })
    stitched = None
    if outcome.stitched is not None:
        stitched = {"return": outcome.stitched.total_return,
                    "buy_and_hold_return": outcome.stitched.buy_and_hold_return,
                    "max_drawdown": outcome.stitched.max_drawdown, "metrics": _metrics(outcome.stitched_metrics)}
    chosen = outcome.chosen
    return {**settings, "verdict": text, "walk_forward_efficiency": efficiency,
            "in_sample_only": chosen.out_of_sample is None,
            "chosen": {"params": chosen.params, "fold": chosen.fold.index, "study": chosen.study},
            "stitched_out_of_sample": stitched, "folds": folds}


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str)
