"""An independent cross-check: our SMA-cross backtest against backtesting.py on the same real candles.

backtesting.py computes its own SMAs (pandas rolling means), its own crossovers and its own fills
and commissions. Every trade must enter and exit on the same candle, and the final equity must
agree within 0.01 % under the same fee model (10 bps per side, fills at the next open, no spread).
FractionalBacktest lets it trade fractions of a coin as we do; its SMAs are computed on the unscaled
closes. Two averages can be equal in exact arithmetic (prices have two decimals) and still differ in
their last bits, differently in each implementation's order of summation. Our crossover treats gaps
below a relative 1e-9 as level (engine.core.model._side); the reference rounds its averages to 10
significant digits, so such ties are exact and backtesting.py's strict ``crossover`` ignores them.
With prices on a 0.01 grid, a real gap between two averages is never that small.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.model import CandleArrays, SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from tests.engine.helpers import real_candles

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

FULL_EQUITY = RiskLimits(position_fraction=1.0, max_position_fraction=1.0, max_total_exposure=1.0, stop_loss_pct=0,
                         take_profit_pct=0, trailing_stop_pct=0, max_daily_loss_pct=0, max_drawdown_pct=0)


def rolling_sma(values: np.ndarray, n: int) -> np.ndarray:
    """pandas' rolling mean, rounded to 10 significant digits so that exact ties are exact."""
    mean = pd.Series(values).rolling(n).mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (9 - np.floor(np.log10(np.abs(mean))))
        return np.round(mean * scale) / scale


class SmaCross(Strategy):
    fast = 10
    slow = 30
    raw_close: np.ndarray = np.empty(0)  # unscaled closes: FractionalBacktest scales prices by 1e-8

    def init(self) -> None:
        self.sma_fast = self.I(rolling_sma, self.raw_close, self.fast)
        self.sma_slow = self.I(rolling_sma, self.raw_close, self.slow)

    def next(self) -> None:
        if crossover(self.sma_fast, self.sma_slow):
            if not self.position:
                self.buy()
        elif crossover(self.sma_slow, self.sma_fast) and self.position:
            self.position.close()


def frame(c: CandleArrays) -> pd.DataFrame:
    index = pd.to_datetime(c.ts, unit="ms", utc=True).tz_localize(None)
    return pd.DataFrame({"Open": c.open, "High": c.high, "Low": c.low, "Close": c.close, "Volume": c.volume},
                        index=index)


@pytest.mark.parametrize(("name", "fast", "slow"), [("BTC_USDT-5m.csv", 10, 30), ("BTC_USD-1h.csv", 12, 26)])
def test_sma_cross_matches_backtesting_py(name: str, fast: int, slow: int) -> None:
    candles = real_candles(name)
    ours = run_backtest(candles, SmaCrossModel(fast, slow),
                        BacktestConfig(symbol="BTCUSD", cash=10_000, limits=FULL_EQUITY,
                                       costs=Costs(fee_bps=10, slippage_bps=0), filters=SignalFilters(0.6, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(frame(candles), SmaCross, cash=10_000, commission=0.001, spread=0.0,
                                fractional_unit=1e-8, finalize_trades=False)
        stats = bt.run(fast=fast, slow=slow, raw_close=candles.close)
    theirs = stats["_trades"]
    ts_index = {pd.Timestamp(t): i for i, t in enumerate(frame(candles).index)}
    their_trades = [(ts_index[row.EntryTime], ts_index[row.ExitTime]) for row in theirs.itertuples()]
    our_trades = [(int(np.searchsorted(candles.ts, t.entry_time)), int(np.searchsorted(candles.ts, t.exit_time)))
                  for t in ours.trades]

    assert len(our_trades) > 50
    assert our_trades == their_trades
    their_final = float(stats["Equity Final [$]"])
    assert abs(ours.final_equity - their_final) / their_final < 1e-4
