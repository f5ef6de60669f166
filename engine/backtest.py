"""Backtest: the live decision path (``TradingCore.on_candle``) over a candle series with a simulated clock.

``BacktestConfig.rules`` trades under an exchange's rules (amount step, price tick, minimums, dust) exactly
as the live paper broker does; None (the default) is no rules, as before markets were known.

The model runs batched (one ``features`` + ``predict_proba`` over the whole series; features are
windowed, so each row equals the live per-candle value). Every candle then goes through the
compiled ``kernel.step``, the same function the live loop runs through ``TradingCore.on_candle``.
``step_every_candle=True`` drives the backtest through ``on_candle`` itself, candle by candle;
the tests prove both give identical trades and equity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.clock import SimClock
from engine.core.model import CandleArrays, GenericTradingModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.trading import TradingCore, signals_from_proba
from engine.core.types import DAY_MS, Action, Trade

YEAR_MS = 365.25 * DAY_MS


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    symbol: str = "BTCUSDT"
    cash: float = 10_000.0
    limits: RiskLimits = field(default_factory=RiskLimits)
    costs: Costs = field(default_factory=Costs)
    filters: SignalFilters = field(default_factory=SignalFilters)
    step_every_candle: bool = False
    rules: MarketRules | None = None  # the exchange's rules for ``symbol``, as the live paper broker applies them


@dataclass(slots=True)
class BacktestResult:
    symbol: str
    model: str
    trades: list[Trade]
    ts: np.ndarray
    equity: np.ndarray
    in_position: np.ndarray
    fees: float
    starting_cash: float
    open_position: dict[str, Any] | None
    metrics: dict[str, float] = field(default_factory=dict)
    dust: float = 0.0  # what the last sell left below the exchange's minimums (in equity at the last close)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if self.equity.size else self.starting_cash


BLOCK = 65_536


def model_signals(model: GenericTradingModel, candles: CandleArrays) -> tuple[np.ndarray, np.ndarray]:
    """The model's (action, confidence) per candle, as the backtest computes them: a strategy's over the whole
    series, sma-cross's directly (``series_signals``), any other model's in blocks (``block_signals``)."""
    action, confidence, _ = _signals_and_tags(model, candles)
    return action, confidence


Tags = tuple[np.ndarray | None, np.ndarray | None]  # (enter_tag, exit_tag) per candle: a strategy's, else None


def _signals_and_tags(model: GenericTradingModel, candles: CandleArrays) -> tuple[np.ndarray, np.ndarray, Tags]:
    strategy = getattr(model, "strategy", None)  # engine.strategy.model.StrategyModel
    if strategy is not None:
        # a strategy's populate methods run ONCE over the whole series (the strategies' contract: an EMA sees
        # all of the history before it, as in backtesting.py), and its actions go to the kernel as they are,
        # not through the model encoding (lossless, tests/strategy/test_strategy_model.py; it would cost three
        # more arrays of the series); the DataFrame is let go as soon as the arrays are out of it
        signals = strategy.signals(candles)
        out = (signals.action.astype(np.int64), np.asarray(signals.confidence, dtype=np.float64),
               (signals.enter_tag, signals.exit_tag))
        del signals
        return out
    whole_series = getattr(model, "series_signals", None)  # SmaCrossModel's: the same signals, computed directly
    if whole_series is not None:
        action, confidence = whole_series(candles)
        return action, confidence, (None, None)
    return (*block_signals(model, candles), (None, None))


def block_signals(model: GenericTradingModel, candles: CandleArrays) -> tuple[np.ndarray, np.ndarray]:
    """(action, confidence) per candle from the model's ``features`` and ``predict_proba``, in blocks of ``BLOCK``
    candles each extended back by ``lookback - 1`` (the live loop's reading of a model, over a whole series)."""
    n = len(candles)
    action = np.empty(n, dtype=np.int64)
    confidence = np.empty(n)
    back = max(0, model.lookback - 1)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        lo = max(0, start - back)
        x = model.features(candles.slice(lo, stop))[start - lo:]
        action[start:stop], confidence[start:stop] = signals_from_proba(model.predict_proba(x))
    return action, confidence


def run_backtest(candles: CandleArrays, model: GenericTradingModel, config: BacktestConfig,
                 progress: Callable[[int], None] | None = None) -> BacktestResult:
    """Every candle goes through ``kernel.step``: in the compiled loop (default) or, with
    ``step_every_candle``, through ``TradingCore.on_candle`` exactly as the live loop calls it."""
    n = len(candles)
    action, confidence, tags = _signals_and_tags(model, candles)
    clock = SimClock()
    core = TradingCore(limits=config.limits, costs=config.costs, filters=config.filters,
                       starting_cash=config.cash, clock=clock,
                       rules=None if config.rules is None else {config.symbol: config.rules})
    symbol = config.symbol
    if config.step_every_candle:
        trades, equity, held = _step_each(core, symbol, candles, action, confidence, clock, progress, tags)
    else:
        trades, equity, held = core.run_series(symbol, candles.ts, candles.open, candles.high, candles.low,
                                               candles.close, action, confidence, tags)
        if progress is not None:
            progress(n)
    del action, confidence, tags  # the signals' arrays (16 MB a million candles) go before the metrics' temporaries
    pos = core.portfolio.positions.get(symbol)
    open_position = None if pos is None else {
        "symbol": symbol, "entry_time": pos.entry_ts, "entry_price": pos.avg_price, "quantity": pos.quantity}
    dust = core.portfolio.dust.get(symbol)
    result = BacktestResult(symbol, model.name, trades, candles.ts, equity, held, core.portfolio.fees_paid,
                            config.cash, open_position, dust=0.0 if dust is None else dust.quantity)
    result.metrics = compute_metrics(result, candles, config.costs)
    return result


def _step_each(core: TradingCore, symbol: str, candles: CandleArrays, action: np.ndarray, confidence: np.ndarray,
               clock: SimClock, progress: Callable[[int], None] | None, tags: Tags = (None, None)
               ) -> tuple[list[Trade], np.ndarray, np.ndarray]:
    n = len(candles)
    enter, exit_ = tags
    equity = np.empty(n)
    held = np.zeros(n, dtype=bool)
    trades: list[Trade] = []
    for i in range(n):
        clock.set(int(candles.ts[i]))
        act = int(action[i])
        source = enter if act == Action.ENTER else exit_ if act == Action.EXIT else None
        tag = None if source is None else source[i]
        step = core.on_signal(symbol, candles.candle(i), Action(act), float(confidence[i]), tag)
        trades.extend(step.trades)
        equity[i] = step.equity
        held[i] = symbol in core.portfolio.positions
        if progress is not None and (i + 1) % 100_000 == 0:
            progress(100_000)
    return trades, equity, held


def _cagr(ratio: float, years: float) -> float:
    """Compound annual growth; a profitable run of minutes annualises to inf rather than raising."""
    if years <= 0 or ratio <= 0:
        return float("nan")
    try:
        return float(ratio ** (1.0 / years) - 1.0)
    except OverflowError:
        return float("inf")


def compute_metrics(result: BacktestResult, candles: CandleArrays, costs: Costs) -> dict[str, float]:
    eq = result.equity
    n = eq.shape[0]
    start = result.starting_cash
    final = result.final_equity
    span_ms = float(candles.ts[-1] - candles.ts[0]) if n > 1 else 0.0
    step_ms = span_ms / (n - 1) if n > 1 else float(DAY_MS)
    years = (span_ms + step_ms) / YEAR_MS
    per_year = YEAR_MS / step_ms
    rets = np.empty(n)  # per-candle returns, eq / previous eq - 1 (in place: one temporary for long series)
    if n:
        rets[0] = eq[0] / start
        np.divide(eq[1:], eq[:-1], out=rets[1:])
    rets -= 1.0
    mean = float(rets.mean()) if n else 0.0
    std = float(rets.std()) if n else 0.0
    np.minimum(rets, 0.0, out=rets)
    np.multiply(rets, rets, out=rets)
    downside = float(np.sqrt(np.mean(rets))) if n else 0.0
    del rets
    peak = np.maximum.accumulate(eq)
    np.maximum(peak, start, out=peak)
    np.divide(eq, peak, out=peak)
    np.subtract(1.0, peak, out=peak)  # the drawdown per candle, 1 - eq / peak
    drawdown = max(0.0, float(np.max(peak))) if n else 0.0
    del peak
    pnls = np.array([t.pnl for t in result.trades])
    wins = pnls[pnls > 0].sum() if pnls.size else 0.0
    losses = -pnls[pnls < 0].sum() if pnls.size else 0.0
    first_open = float(candles.open[0])
    bh_qty = start / (first_open * (1 + costs.fee_rate))
    buy_hold = (bh_qty * float(candles.close[-1])) / start - 1.0
    return {
        "total_return": final / start - 1.0,
        "cagr": _cagr(final / start, years),
        "sharpe": mean / std * math.sqrt(per_year) if std > 0 else 0.0,
        "sortino": mean / downside * math.sqrt(per_year) if downside > 0 else 0.0,
        "max_drawdown": drawdown,
        "win_rate": float((pnls > 0).mean()) if pnls.size else 0.0,
        "profit_factor": float(wins / losses) if losses > 0 else (float("inf") if wins > 0 else 0.0),
        "exposure": float(result.in_position.mean()) if n else 0.0,
        "trades": float(len(result.trades)),
        "fees": result.fees,
        "final_equity": final,
        "buy_and_hold_return": buy_hold,
    }
