"""One trial: a strategy with a set of parameters, backtested on one window of candles by the backtest's own parts.

The signals are the backtest's (``engine.backtest``: a strategy's ``signals`` over the window; sma-cross through
``SmaCrossModel`` as ``trading-agent backtest`` runs it), and every candle goes through the compiled kernel by
``TradingCore.run_series``, the call ``run_backtest`` makes. Two differences, neither changing a number (tests/
optimize/test_evaluate.py compares with ``run_backtest`` to the last bit):

- the window is run in ``chunks`` consecutive kernel calls (the kernel's state carries over between them), and
  after each but the last the objective so far is reported to the trial, so the pruner can stop a poor one early;
- sma-cross's moving averages are kept per length, over the whole series, in a bounded cache: a length seen by an
  earlier trial (of any fold) is not averaged again. A window's average is the whole series' cut to the window,
  its first length - 1 values blanked: ``engine.core.model.sma``'s value at a candle depends on that candle's
  ``length`` closes alone, bit for bit (the backtest's blocks rely on the same; the tests compare).

The first ``startup_candles`` of a window are the strategy's warm-up: no signal can be acted on there, and the
metrics (``scored``) are computed from the candle after them, in-sample and out-of-sample alike.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna

from engine.backtest import BacktestConfig, BacktestResult, compute_metrics, run_backtest
from engine.core.clock import SimClock
from engine.core.codes import signals_from_proba
from engine.core.model import CandleArrays, GenericTradingModel, SmaCrossModel, sma
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import TradingCore
from engine.optimize.objectives import score
from engine.optimize.space import Space, build_space
from engine.strategy.base import Strategy
from engine.strategy.builtins import SmaCross
from engine.strategy.cli import make_strategy
from engine.strategy.loader import strategy_class
from engine.strategy.model import StrategyModel, strategy_limits
from engine.strategy.params import StrategyError

CACHE_BYTES = 128 * 1024 * 1024  # sma-cross's moving averages kept per process


class Infeasible(Exception):  # not an error: a point of the space the strategy refuses
    """Parameters the strategy refuses (its ``check_params``) or whose warm-up leaves too little to score."""


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything a trial needs, picklable: what a worker process is handed."""

    spec: str
    candles: CandleArrays
    symbol: str
    fixed: dict[str, Any]
    ranges: dict[str, str]
    limits: RiskLimits
    costs: Costs
    filters: SignalFilters
    cash: float
    objective: str
    chunks: int = 2  # kernel calls per trial: the objective is reported to the pruner after each but the last

    def config(self, limits: RiskLimits) -> BacktestConfig:
        return BacktestConfig(symbol=self.symbol, cash=self.cash, limits=limits, costs=self.costs,
                              filters=self.filters)


@dataclass(frozen=True, slots=True)
class Window:
    """Candles ``start`` .. ``end`` (end excluded) of the series; a strategy may warm up on ``max_startup`` at most."""

    start: int
    end: int
    max_startup: int

    def __len__(self) -> int:
        return self.end - self.start


def scored(result: BacktestResult, candles: CandleArrays, startup: int, costs: Costs) -> BacktestResult:
    """``result`` from candle ``startup`` on (the warm-up dropped: no trade can be open in it), with its metrics."""
    out = replace(result, ts=result.ts[startup:], equity=result.equity[startup:],
                  in_position=result.in_position[startup:])
    out.metrics = compute_metrics(out, candles.slice(startup, len(candles)), costs)
    return out


class Evaluator:
    """Runs trials of one ``Setup`` in this process (module docstring)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.cls = strategy_class(setup.spec)
        self.declared = self.cls.parameters()
        self.space: Space = build_space(self.cls.label(), self.declared, setup.fixed, setup.ranges)
        self._sma: OrderedDict[int, np.ndarray] = OrderedDict()
        self._sma_bytes = 0

    def strategy(self, params: Mapping[str, Any]) -> Strategy:
        """The strategy made with ``params``; Infeasible when it refuses them."""
        try:
            return make_strategy(self.cls, params)
        except StrategyError as exc:
            raise Infeasible(str(exc)) from None

    def _checked(self, params: Mapping[str, Any], window: Window) -> tuple[Strategy, int]:
        strategy = self.strategy(params)
        startup = int(strategy.startup_candles)
        if startup > window.max_startup:
            raise Infeasible(f"{strategy.name} warms up on {startup} candles; at most {window.max_startup} leave "
                             "enough of a window to score")
        return strategy, startup

    def model(self, strategy: Strategy) -> GenericTradingModel:
        """The model the backtest trades for ``strategy`` (sma-cross: ``SmaCrossModel``, as ``trading-agent
        backtest`` runs it)."""
        if type(strategy) is SmaCross:
            return SmaCrossModel(strategy.fast, strategy.slow)
        return StrategyModel(strategy)

    def backtest(self, params: Mapping[str, Any], window: Window) -> BacktestResult:
        """``run_backtest`` itself over the window, scored after the warm-up: the reports' numbers."""
        strategy, startup = self._checked(params, window)
        candles = self.setup.candles.slice(window.start, window.end)
        config = self.setup.config(strategy_limits(strategy, self.setup.limits))
        return scored(run_backtest(candles, self.model(strategy), config), candles, startup, self.setup.costs)

    def trial(self, params: Mapping[str, Any], window: Window, trial: optuna.Trial | None = None) -> float:
        """The objective of ``params`` on the window, reporting to ``trial`` after each chunk but the last
        (``optuna.TrialPruned`` when its pruner says so); Infeasible for parameters the strategy refuses."""
        strategy, startup = self._checked(params, window)
        s = self.setup
        candles = s.candles.slice(window.start, window.end)
        action, confidence = self._signals(strategy, candles, window)
        limits = strategy_limits(strategy, s.limits)
        core = TradingCore(limits=limits, costs=s.costs, filters=s.filters, starting_cash=s.cash, clock=SimClock())
        n = len(candles)
        ends = [startup + (n - startup) * k // s.chunks for k in range(1, s.chunks + 1)] if trial else [n]
        ends[-1] = n
        trades: list[Any] = []
        equity, held = np.empty(n), np.zeros(n, dtype=bool)
        begin = 0
        for step, end in enumerate(ends):
            if end <= begin:
                continue
            part = candles.slice(begin, end)
            got, equity[begin:end], held[begin:end] = core.run_series(
                s.symbol, part.ts, part.open, part.high, part.low, part.close, action[begin:end],
                confidence[begin:end])
            trades += got
            begin = end
            result = BacktestResult(s.symbol, strategy.name, trades, candles.ts[:end], equity[:end], held[:end],
                                    core.portfolio.fees_paid, s.cash, None)
            value = score(s.objective, scored(result, candles.slice(0, end), startup, s.costs).metrics)
            if trial is None or end == n:
                return value
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after {end - startup:,} of {n - startup:,} candles")
        raise AssertionError("unreachable: the last chunk ends the window")

    def _signals(self, strategy: Strategy, candles: CandleArrays, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """(action, confidence) per candle, as ``engine.backtest`` computes them for this strategy's model."""
        if type(strategy) is not SmaCross:
            signals = strategy.signals(candles)
            return signals.action.astype(np.int64), np.asarray(signals.confidence, dtype=np.float64)
        fast, slow = self._average(window, strategy.fast), self._average(window, strategy.slow)
        x = np.full((len(candles), 4), np.nan)  # SmaCrossModel.features' layout
        x[:, 0], x[:, 1] = fast, slow
        x[1:, 2], x[1:, 3] = fast[:-1], slow[:-1]
        model = SmaCrossModel(strategy.fast, strategy.slow)
        return signals_from_proba(model.predict_proba(x))

    def _average(self, window: Window, length: int) -> np.ndarray:
        """``sma(close[window], length)``, from the whole series' average of that length (module docstring)."""
        whole = self._sma.get(length)
        if whole is None:
            whole = sma(self.setup.candles.close, length)
            self._sma[length] = whole
            self._sma_bytes += whole.nbytes
            while self._sma_bytes > CACHE_BYTES and len(self._sma) > 1:
                _, old = self._sma.popitem(last=False)
                self._sma_bytes -= old.nbytes
        else:
            self._sma.move_to_end(length)
        out = whole[window.start:window.end].copy()
        out[:length - 1] = np.nan
        return out
