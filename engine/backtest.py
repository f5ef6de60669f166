"""Backtest: the live decision path (``TradingCore.on_candle``) over a candle series with a simulated clock.

The model runs batched (one ``features`` + ``predict_proba`` over the whole series; features are
windowed, so each row equals the live per-candle value). Candles on which the core provably only
marks to market are applied in bulk by ``TradingCore.fast_forward``; every other candle goes
through ``on_candle`` exactly as in the live loop. ``step_every_candle=True`` turns the fast path
off; the tests prove both give identical trades and equity.
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
from engine.core.trading import TradingCore
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

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if self.equity.size else self.starting_cash


def model_signals(model: GenericTradingModel, candles: CandleArrays) -> np.ndarray:
    """Batched model output, (n, 3) probabilities; rows without enough history are NaN."""
    return model.predict_proba(model.features(candles))


def run_backtest(candles: CandleArrays, model: GenericTradingModel, config: BacktestConfig,
                 progress: Callable[[int], None] | None = None) -> BacktestResult:
    n = len(candles)
    proba = model_signals(model, candles)
    core = TradingCore(limits=config.limits, costs=config.costs, filters=config.filters,
                       starting_cash=config.cash, clock=SimClock())
    clock = core.clock
    assert isinstance(clock, SimClock)
    wanted = np.flatnonzero(_wanted(proba, config.filters.min_confidence))
    equity = np.empty(n)
    held = np.zeros(n, dtype=bool)
    trades: list[Trade] = []
    symbol = config.symbol
    ts, high, low, close = candles.ts, candles.high, candles.low, candles.close
    i = 0
    reported = 0
    while i < n:
        j = i if config.step_every_candle else core.next_active_index(symbol, ts, high, low, close, wanted, i)
        if j > i:
            core.fast_forward(symbol, ts, high, close, i, j, equity)
            held[i:j] = symbol in core.portfolio.positions
            i = j
            if i >= n:
                break
        clock.set(int(ts[i]))
        step = core.on_candle(symbol, candles.candle(i), proba[i])
        trades.extend(step.trades)
        equity[i] = step.equity
        held[i] = symbol in core.portfolio.positions
        i += 1
        if progress is not None and i - reported >= 100_000:
            progress(i - reported)
            reported = i
    if progress is not None:
        progress(n - reported)
    pos = core.portfolio.positions.get(symbol)
    open_position = None if pos is None else {
        "symbol": symbol, "entry_time": pos.entry_ts, "entry_price": pos.avg_price, "quantity": pos.quantity}
    result = BacktestResult(symbol, model.name, trades, ts, equity, held, core.portfolio.fees_paid,
                            config.cash, open_position)
    result.metrics = compute_metrics(result, candles, config.costs)
    return result


def _wanted(proba: np.ndarray, min_confidence: float) -> np.ndarray:
    """Candles whose signal is ENTER or EXIT with enough confidence (NaN rows never)."""
    safe = np.where(np.isnan(proba), -1.0, proba)
    cls = np.argmax(safe, axis=1)
    conf = safe[np.arange(safe.shape[0]), cls]
    action = np.where(cls == 2, Action.ENTER, np.where(cls == 0, Action.EXIT, Action.HOLD))
    return (action != Action.HOLD) & (conf >= min_confidence)


def compute_metrics(result: BacktestResult, candles: CandleArrays, costs: Costs) -> dict[str, float]:
    eq = result.equity
    n = eq.shape[0]
    start = result.starting_cash
    final = result.final_equity
    span_ms = float(candles.ts[-1] - candles.ts[0]) if n > 1 else 0.0
    step_ms = span_ms / (n - 1) if n > 1 else float(DAY_MS)
    years = (span_ms + step_ms) / YEAR_MS
    rets = np.diff(np.concatenate(([start], eq))) / np.concatenate(([start], eq[:-1]))
    per_year = YEAR_MS / step_ms
    std = float(rets.std())
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if n else 0.0
    mean = float(rets.mean()) if n else 0.0
    peak = np.maximum.accumulate(np.concatenate(([start], eq)))
    drawdown = float(np.max(1.0 - np.concatenate(([start], eq)) / peak))
    pnls = np.array([t.pnl for t in result.trades])
    wins = pnls[pnls > 0].sum() if pnls.size else 0.0
    losses = -pnls[pnls < 0].sum() if pnls.size else 0.0
    first_open = float(candles.open[0])
    bh_qty = start / (first_open * (1 + costs.fee_rate))
    buy_hold = (bh_qty * float(candles.close[-1])) / start - 1.0
    return {
        "total_return": final / start - 1.0,
        "cagr": (final / start) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else float("nan"),
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
