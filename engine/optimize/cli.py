"""``trading-agent optimize``: search a strategy's parameters with Optuna, walk-forward by default.

    trading-agent optimize --strategy sma-cross --data data/sample/BTC_USDT-5m.csv --trials 100

Reads the candles as the backtest does, refuses a strategy that fails the look-ahead check, runs a study per
walk-forward fold (``engine.optimize.walkforward``; ``--walk-forward 0``: one in-sample study), prints the report
(``engine.optimize.report``) and writes ``results.json`` and the plots into ``--out`` (default
``optimize/<study>``), beside the study's SQLite file unless ``--storage`` names another place. Bad input is one
line and exit code 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from engine.cli import non_negative_float, non_negative_int, positive_float, positive_int
from engine.optimize.objectives import LABELS, OBJECTIVES

DEFAULT_FOLDS = 5
DEFAULT_RATIO = 4


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", metavar="SPEC",
                   help="the strategy: a built-in (sma-cross, rsi-mean-reversion, bollinger-breakout), "
                        "path/to/file.py:Class or module.path:Class (default: the config's [trading] strategy)")
    p.add_argument("--data", required=True, type=Path, help="candle CSV, as for `trading-agent backtest`")
    p.add_argument("--symbol", help="symbol name (default: from the file name)")
    p.add_argument("--timeframe", help="candle timeframe (default: from the file name or the timestamps)")
    p.add_argument("--trials", type=positive_int, default=100,
                   help="trials per study: per walk-forward fold, or of the in-sample search (default 100); a "
                        "rerun of the same study adds this many")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="worker processes on this machine sharing each study (default 1)")
    p.add_argument("--objective", choices=OBJECTIVES, default="sharpe",
                   help="what a trial maximises (default sharpe)")
    p.add_argument("--walk-forward", type=non_negative_int, default=DEFAULT_FOLDS, metavar="K",
                   help=f"walk-forward folds (default {DEFAULT_FOLDS}); 0: a plain in-sample search, whose numbers "
                        "are in-sample")
    p.add_argument("--in-sample", type=positive_int, default=DEFAULT_RATIO, metavar="R",
                   help=f"an in-sample window is R out-of-sample windows long (default {DEFAULT_RATIO})")
    p.add_argument("--param", action="append", dest="params", metavar="NAME=VALUE",
                   help="fix a parameter (repeatable): it is not searched")
    p.add_argument("--range", action="append", dest="ranges", metavar="NAME=LOW..HIGH",
                   help="search a parameter within LOW..HIGH only (inside its declared range), or NAME=a,b among "
                        "some of its choices (repeatable)")
    p.add_argument("--storage", metavar="URL",
                   help="where the studies live: sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB (several "
                        "processes or machines on one study) or FILE.log (Optuna's journal file: this machine's "
                        "processes, the least overhead per trial); default: study.db in --out")
    p.add_argument("--study", metavar="NAME",
                   help="study name (default STRATEGY-DATAFILE); a rerun with the same name continues it")
    p.add_argument("--seed", type=int, default=42, help="the sampler's seed (default 42)")
    p.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                   help="stop starting trials after this long in all (shared evenly between the folds)")
    p.add_argument("--out", type=Path, metavar="DIR", help="results folder (default optimize/<study>)")
    p.add_argument("--apply", type=Path, metavar="FILE.toml",
                   help="write the chosen parameters (and the study's name) into this trading config")
    p.add_argument("--config", type=Path, help="trading config TOML (risk and signal filters); default: embedded")
    p.add_argument("--fee-bps", type=non_negative_float, default=10.0, help="fee per side in basis points (default 10)")
    p.add_argument("--slippage-bps", type=non_negative_float, default=0.0,
                   help="slippage per fill in basis points (default 0)")
    p.add_argument("--cash", type=positive_float, default=10_000.0, help="starting cash (default 10,000)")
    p.add_argument("--no-prune", action="store_true", help="run every trial to its end (no median pruner)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--no-plots", action="store_true", help="write results.json only, no PNGs")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="log level on stderr, Optuna's lines included (default WARNING)")


def _study_name(label: str, data: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{label}-{data.stem}").strip("-")


class Bar:
    """The progress bar of one study (tqdm, on stderr): trials done of this run's and the best value so far."""

    def __init__(self, study: Any, name: str, total: int) -> None:
        import optuna
        from tqdm import tqdm

        self._study = study
        self._states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                        optuna.trial.TrialState.FAIL)
        self._start = len(study.get_trials(deepcopy=False, states=self._states))
        self._best: float | None = None
        what = name.rpartition(":")[2]  # fold-2-of-5, in-sample
        self._bar = tqdm(total=total, desc=what, unit="trial", file=sys.stderr, dynamic_ncols=True)

    def _show(self) -> None:
        if self._best is not None:
            self._bar.set_postfix_str(f"best {self._best:.4g}", refresh=False)
        self._bar.refresh()

    def trial(self, trial: Any) -> None:
        if trial.value is not None and trial.state.name == "COMPLETE":
            self._best = trial.value if self._best is None else max(self._best, trial.value)
        self._bar.update(1)
        self._show()

    def poll(self) -> None:
        trials = self._study.get_trials(deepcopy=False, states=self._states)
        values = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        self._best = max(values) if values else None
        self._bar.n = min(len(trials) - self._start, int(self._bar.total))
        self._show()

    def close(self) -> None:
        self._bar.close()


def run(args: argparse.Namespace) -> int:
    import warnings

    import optuna

    from engine.logs import configure_logging
    from engine.optimize.search import quiet_optuna

    configure_logging(level=args.log_level, stream=sys.stderr)  # stdout carries the report
    quiet_optuna(args.log_level)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # none of ours: the plots' (plots.py)
    from config.trading import ConfigError
    from engine.feeds.csvio import CsvFormatError

    try:
        return _run(args)
    except (ConfigError, CsvFormatError, ValueError, OSError) as exc:  # StrategyError, StorageError: ConfigErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the studies keep every finished trial; run the same command again to continue them",
              file=sys.stderr)
        return 130


def _space(args: argparse.Namespace, default_spec: str) -> tuple[str, Any, Any]:
    """The strategy's spec, its class and the search space: the bad-input lines before any data is read."""
    from engine.optimize.space import build_space, parse_ranges
    from engine.strategy.cli import cli_params, strategy_params
    from engine.strategy.loader import strategy_class
    from engine.strategy.params import StrategyError

    spec = (args.strategy or default_spec).strip()
    if spec == "model":
        raise StrategyError("--strategy model: the CatBoost models have no parameters to search; name a strategy")
    cls = strategy_class(spec)
    label, declared = cls.label(), cls.parameters()
    given = strategy_params([spec], [cls], cli_params(args.params))[0]
    fixed = {name: declared[name].convert(value, label) for name, value in given.items()}
    return spec, cls, build_space(label, declared, fixed, parse_ranges(args.ranges))


def _causal_start(evaluator: Any, timeframe: str) -> Any:
    """A strategy made at the declared defaults (else at the defaults moved into the ranges), after the look-ahead
    check: StrategyError naming the leak, before any trial."""
    from engine.optimize.evaluate import Infeasible
    from engine.strategy.params import StrategyError
    from engine.strategy_choice import lookahead_gate

    declared, space = evaluator.declared, evaluator.space
    problem = ""
    for params in ({**{n: p.default for n, p in declared.items()}, **space.fixed}, space.defaults(declared)):
        try:
            strategy = evaluator.strategy(params)
        except Infeasible as exc:
            problem = str(exc)
            continue
        lookahead_gate(strategy, timeframe)
        return strategy
    raise StrategyError(f"{evaluator.cls.label()} refuses its defaults inside the searched ranges ({problem}); "
                        "adjust --range")


def _say(data: Any, strategy: Any) -> None:
    from engine.strategy.cli import timeframe_warning

    for line in data.notes:
        print(f"note: {line}", file=sys.stderr)
    other = timeframe_warning(strategy, data.timeframe, data.path.name)
    for line in (*data.warnings, *([other] if other else [])):
        print(f"warning: {line}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from config.trading import load_trading_config
    from engine.core.risk import Costs
    from engine.feeds.candle_file import load_candles
    from engine.optimize.evaluate import Evaluator, Setup
    from engine.optimize.run import optimise
    from engine.optimize.search import Job, workers
    from engine.optimize.space import parse_ranges
    from engine.optimize.storage import close_storage, normalise, open_storage, shown, sqlite_url
    from engine.optimize.walkforward import make_folds

    cfg = load_trading_config(args.config)
    if args.apply is not None:
        from engine.optimize.apply import check_target

        check_target(args.apply)
    spec, cls, space = _space(args, cfg.trading.strategy)
    storage_url = normalise(args.storage) if args.storage else None
    data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe, min_candles=3,
                        needed_by=f"optimising {cls.label()}")
    candles = data.arrays
    costs = Costs(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
    setup = Setup(spec, candles, data.symbol, space.fixed, parse_ranges(args.ranges), cfg.risk.to_core(), costs,
                  cfg.signal_filters.to_core(), args.cash, args.objective)
    evaluator = Evaluator(setup)
    strategy = _causal_start(evaluator, data.timeframe)
    folds = make_folds(len(candles), args.walk_forward, args.in_sample, int(strategy.startup_candles),
                       what=str(data.path))
    name = args.study or _study_name(cls.label(), data.path)
    storage_url = storage_url or sqlite_url((args.out or Path("optimize") / name) / "study.db")
    storage = open_storage(storage_url)
    _say(data, strategy)
    per_fold = None if args.timeout is None else args.timeout / len(folds)
    base_attrs = {"strategy": spec, "data": data.path.name, "symbol": data.symbol, "timeframe": data.timeframe,
                  "objective": args.objective, "space": space.describe(), "fixed": dict(space.fixed),
                  "costs": [args.fee_bps, args.slippage_bps, args.cash]}

    def job(fold: Any) -> Job:
        w = fold.in_sample
        study = f"{name}:in-sample" if fold.index == 0 else f"{name}:fold-{fold.index}-of-{len(folds)}"
        attrs = {**base_attrs, "window": [int(candles.ts[w.start]), int(candles.ts[w.end - 1])]}
        return Job(study, w, args.trials, per_fold, args.seed, not args.no_prune, attrs)

    try:
        with workers(args.jobs, setup, storage_url, args.log_level) as pool:
            t0 = time.perf_counter()  # the search alone: the workers have started
            outcome, studies = optimise(evaluator, storage, folds, job, pool, None if args.no_progress else Bar)
            seconds = time.perf_counter() - t0
        return _report(args, outcome, studies, space, data, spec, cls.label(), name, shown(storage_url), folds,
                       seconds)
    finally:
        close_storage(storage)  # the connections closed now, not when the process ends


def _report(args: argparse.Namespace, outcome: Any, studies: list[Any], space: Any, data: Any, spec: str,
            label: str, name: str, storage: str, folds: list[Any], seconds: float) -> int:
    from engine.optimize.apply import apply_params
    from engine.optimize.plots import write_plots
    from engine.optimize.report import document, dumps, render

    n = len(data.arrays)
    ran = sum(f.ran for f in outcome.folds)
    if args.walk_forward:
        how = (f"walk-forward, {len(folds)} fold{'s' if len(folds) > 1 else ''} (in-sample {args.in_sample}x "
               f"out-of-sample), {args.trials} trials per fold")
    else:
        how = f"IN-SAMPLE search, {args.trials} trials"
    head = (f"Optimise {label} on {data.symbol} {data.timeframe} · {n:,} candles · {how} · objective "
            f"{LABELS[args.objective]} · seed {args.seed}\n"
            f"  study {name} in {storage} · {ran} trials run now in {seconds:.1f} s "
            f"({ran / seconds * 60 if seconds > 0 else 0:,.0f} per minute, {args.jobs} "
            f"job{'s' if args.jobs > 1 else ''})")
    print(render(outcome, head=head, objective=args.objective, space=space))
    out = args.out or Path("optimize") / name
    out.mkdir(parents=True, exist_ok=True)
    settings = {"strategy": spec, "data": str(data.path), "symbol": data.symbol, "timeframe": data.timeframe,
                "candles": n, "objective": args.objective, "walk_forward": args.walk_forward,
                "in_sample_ratio": args.in_sample, "trials_per_study": args.trials, "seed": args.seed,
                "jobs": args.jobs, "study": name, "storage": storage, "space": space.describe(),
                "fixed": space.fixed, "seconds": round(seconds, 3)}
    (out / "results.json").write_text(dumps(document(outcome, settings=settings, objective=args.objective,
                                                     ts=data.arrays.ts)))
    written = [] if args.no_plots else write_plots(outcome, studies, out, f"{label} {data.symbol} {data.timeframe}")
    print(f"\nResults in {out}: {', '.join(['results.json', *(p.name for p in written)])}")
    if args.apply is not None:
        print(apply_params(args.apply, spec, outcome.chosen.params, f"{name} ({storage})"))
    return 0
