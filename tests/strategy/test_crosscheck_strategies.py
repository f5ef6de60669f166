"""Independent cross-checks: each example strategy against the same rule written for backtesting.py.

The reference side is backtesting.py (its broker, its fills, its stop orders, its ``crossover``) driven by
indicators written here from their definitions in plain numpy loops, none of ours: Wilder's RSI as the
recursive average of gains and losses (seeded with the first change, values from the ``period``-th change
on), Bollinger bands from a sliding window's mean and population standard deviation, EMAs by their
recursion (seeded with the first close, values from the ``span``-th close on). No signal before the
strategy's ``startup_candles``.

What is compared, per trade, on real candles from the shipped sample: the entry candle, the exit candle,
the entry price and the exit price (rtol 1e-9), then the final equity (within 0.01 %). Settings that make
the two engines' rules the same: all-in sizing (the whole equity per entry; FractionalBacktest trades
satoshis, so sizes agree but for the last one), 10 bps commission per side on both, no slippage or spread,
risk limits off (no daily-loss or drawdown halts), no confidence filter or cooldown.

Stops: our kernel sets a long's stop at ``entry fill price * (1 + stoploss)``, checks it against every
candle's low from the entry candle on, and fills a hit at ``min(open, stop)`` (a gap through it fills at the
open). backtesting.py does the same with a contingent SL order placed with the buy (``sl=``) — it checks
the SL in the very bar the entry fills (its "reprocess" of new SL orders) and fills a stop at
``min(open, stop)`` — except that ``sl`` is an absolute price given when the order is placed. The
reference gives it ``next open * (1 + stoploss)``: the entry fills at the next open, so that is the same
level. A position's exit order (``position.close()``) goes to the front of backtesting.py's queue, so an
exit signal fills at the open before the stop is looked at, as in our kernel. Each strategy runs as shipped
(its own stop: 10 % for rsi-mean-reversion, 5 % for bollinger-breakout and the EmaRsi example, which rarely
fire on these candles), and again with a tight stop (0.5 % to 1 %) that fires on many trades, so that the
stop path is compared as well as the signal path.

Crossings: ours treats two series within a relative 1e-9 as level (engine.strategy.indicators); the
reference rounds its indicators to 10 significant digits (as tests/engine/test_crosscheck_backtesting_py.py
does), so that values equal but for float noise are exactly equal, which backtesting.py's strict
``crossover`` then ignores.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from engine.backtest import BacktestConfig, BacktestResult, run_backtest
from engine.core.model import CandleArrays
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.strategy import Strategy
from engine.strategy.builtins import BollingerBreakout, RsiMeanReversion
from engine.strategy.loader import load_strategy
from engine.strategy.model import StrategyModel, strategy_limits
from tests.engine.helpers import real_candles

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from backtesting import Strategy as BtStrategy
    from backtesting.lib import FractionalBacktest, crossover

EXAMPLE = Path(__file__).resolve().parents[2] / "engine" / "strategy" / "examples" / "ema_rsi.py"
FULL_EQUITY = RiskLimits(position_fraction=1.0, max_position_fraction=1.0, max_total_exposure=1.0, stop_loss_pct=0,
                         take_profit_pct=0, trailing_stop_pct=0, max_daily_loss_pct=0, max_drawdown_pct=0)
FEE_BPS = 10
UNIT = 1e-8  # FractionalBacktest's fractional unit: it trades satoshis and scales prices by this


# ------------------------------------------------------------------ the reference's own indicators


def significant(values: np.ndarray, digits: int = 10) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(values))))
        return np.where(np.isfinite(scale), np.round(values * scale) / scale, values)


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """RSI = 100 * average gain / (average gain + average loss), the averages Wilder's recursion
    ``avg += (x - avg) / period`` seeded with the first change; 100 without losses."""
    out = np.full(close.shape[0], np.nan)
    avg_gain = avg_loss = 0.0
    for i in range(1, close.shape[0]):
        change = close[i] - close[i - 1]
        gain, loss = max(change, 0.0), max(-change, 0.0)
        if i == 1:
            avg_gain, avg_loss = gain, loss
        else:
            avg_gain += (gain - avg_gain) / period
            avg_loss += (loss - avg_loss) / period
        if i >= period:
            out[i] = 100.0 if avg_loss == 0.0 else 100.0 * avg_gain / (avg_gain + avg_loss)
    return out


def bands(close: np.ndarray, window: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """(middle, upper) Bollinger band: a window's mean and mean + k population standard deviations."""
    views = np.lib.stride_tricks.sliding_window_view(close, window)
    mid, upper = np.full(close.shape[0], np.nan), np.full(close.shape[0], np.nan)
    mid[window - 1:] = views.mean(axis=1)
    upper[window - 1:] = mid[window - 1:] + k * views.std(axis=1)
    return significant(mid), significant(upper)


def recursive_ema(close: np.ndarray, span: int) -> np.ndarray:
    """EMA by its recursion ``y += 2 / (span + 1) * (x - y)`` from the first close; NaN for the first span - 1."""
    alpha = 2.0 / (span + 1.0)
    out = np.empty(close.shape[0])
    y = close[0]
    for i in range(close.shape[0]):
        y += alpha * (close[i] - y)
        out[i] = y
    out[: span - 1] = np.nan
    return significant(out)


def column(values: np.ndarray) -> np.ndarray:
    return values


# ------------------------------------------------------------------ the rules, written for backtesting.py


class Reference(BtStrategy):  # type: ignore[misc]  # backtesting.py ships no type hints
    """Exit first (a candle with both signals is an exit), enter when flat; a stop as an SL at the fill's level."""

    startup = 0
    stoploss = 0.0  # negative fraction, 0: none
    raw: ClassVar[dict[str, np.ndarray]] = {}  # unscaled candles: FractionalBacktest scales the prices it holds

    def init(self) -> None:
        self.close = self.I(column, self.raw["close"], name="close", overlay=False)
        self.next_open = np.append(self.raw["open"][1:], np.nan)

    def next(self) -> None:
        i = len(self.data) - 1
        if i < self.startup:
            return
        if self.exit_signal():
            if self.position:
                self.position.close()
        elif self.enter_signal() and not self.position and i + 1 < len(self.next_open):
            level = self.next_open[i] * (1.0 + self.stoploss) * UNIT if self.stoploss else None
            self.buy(sl=level)

    def enter_signal(self) -> bool:
        raise NotImplementedError

    def exit_signal(self) -> bool:
        raise NotImplementedError


class RsiReference(Reference):
    period, oversold, exit_above = 14, 30.0, 55.0

    def init(self) -> None:
        super().init()
        self.rsi = self.I(wilder_rsi, self.raw["close"], self.period, overlay=False)

    def enter_signal(self) -> bool:
        return bool(self.rsi[-1] < self.oversold)

    def exit_signal(self) -> bool:
        return bool(self.rsi[-1] > self.exit_above)


class BollingerReference(Reference):
    window, k = 20, 2.0

    def init(self) -> None:
        super().init()
        mid, upper = bands(self.raw["close"], self.window, self.k)
        self.mid = self.I(column, mid, overlay=False)
        self.upper = self.I(column, upper, overlay=False)

    def enter_signal(self) -> bool:
        return bool(crossover(self.close, self.upper))

    def exit_signal(self) -> bool:
        return bool(crossover(self.mid, self.close))


class EmaRsiReference(Reference):
    fast, slow, rsi_period, rsi_max = 12, 26, 14, 70.0

    def init(self) -> None:
        super().init()
        self.ema_fast = self.I(recursive_ema, self.raw["close"], self.fast, overlay=False)
        self.ema_slow = self.I(recursive_ema, self.raw["close"], self.slow, overlay=False)
        self.rsi = self.I(wilder_rsi, self.raw["close"], self.rsi_period, overlay=False)

    def enter_signal(self) -> bool:
        return bool(crossover(self.ema_fast, self.ema_slow)) and bool(self.rsi[-1] < self.rsi_max)

    def exit_signal(self) -> bool:
        return bool(crossover(self.ema_slow, self.ema_fast))


# ------------------------------------------------------------------ the two sides


def ours(strategy: Strategy, candles: CandleArrays) -> BacktestResult:
    config = BacktestConfig(symbol="BTCUSDT", cash=10_000, limits=strategy_limits(strategy, FULL_EQUITY),
                            costs=Costs(fee_bps=FEE_BPS, slippage_bps=0), filters=SignalFilters(0.0, 0))
    return run_backtest(candles, StrategyModel(strategy), config)


def theirs(reference: type[Reference], candles: CandleArrays, startup: int, stoploss: float | None,
           params: dict[str, Any]) -> pd.Series:
    index = pd.to_datetime(candles.ts, unit="ms", utc=True).tz_localize(None)
    data = pd.DataFrame({"Open": candles.open, "High": candles.high, "Low": candles.low, "Close": candles.close,
                         "Volume": candles.volume}, index=index)
    raw = {"open": np.asarray(candles.open), "close": np.asarray(candles.close)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(data, reference, cash=10_000, commission=FEE_BPS / 10_000, spread=0.0,
                                fractional_unit=UNIT, finalize_trades=False)
        return bt.run(startup=startup, stoploss=stoploss or 0.0, raw=raw, **params)


def compare(strategy: Strategy, reference: type[Reference], candles: CandleArrays, params: dict[str, Any]
            ) -> tuple[BacktestResult, pd.DataFrame]:
    """Both sides' trades must match candle for candle and price for price; returns both for further checks."""
    mine = ours(strategy, candles)
    stats = theirs(reference, candles, int(strategy.startup_candles), strategy.stoploss, params)
    their_trades = stats["_trades"]
    at = {pd.Timestamp(t): i for i, t in enumerate(pd.to_datetime(candles.ts, unit="ms"))}
    ours_rows = [(int(np.searchsorted(candles.ts, t.entry_time)), int(np.searchsorted(candles.ts, t.exit_time)))
                 for t in mine.trades]
    their_rows = [(at[row.EntryTime], at[row.ExitTime]) for row in their_trades.itertuples()]
    assert ours_rows == their_rows
    np.testing.assert_allclose([t.entry_price for t in mine.trades], their_trades["EntryPrice"], rtol=1e-9)
    np.testing.assert_allclose([t.exit_price for t in mine.trades], their_trades["ExitPrice"], rtol=1e-9)
    their_final = float(stats["Equity Final [$]"])
    assert abs(mine.final_equity - their_final) / their_final < 1e-4
    return mine, their_trades


def stops(result: BacktestResult) -> int:
    return sum(t.exit_reason == "stop_loss" for t in result.trades)


CANDLES = ("BTC_USDT-5m.csv", "BTC_USD-1h.csv")


class TightRsi(RsiMeanReversion):
    stoploss = -0.01


class TightBollinger(BollingerBreakout):
    stoploss = -0.005


# ------------------------------------------------------------------ the checks


@pytest.mark.parametrize("name", CANDLES)
def test_rsi_mean_reversion_matches_backtesting_py(name: str) -> None:
    mine, _ = compare(load_strategy("rsi-mean-reversion"), RsiReference, real_candles(name), {})
    assert len(mine.trades) > 15


@pytest.mark.parametrize("name", CANDLES)
def test_bollinger_breakout_matches_backtesting_py(name: str) -> None:
    mine, _ = compare(load_strategy("bollinger-breakout"), BollingerReference, real_candles(name), {})
    assert len(mine.trades) > 50


@pytest.mark.parametrize("name", CANDLES)
def test_the_ema_rsi_example_matches_backtesting_py(name: str) -> None:
    mine, _ = compare(load_strategy(f"{EXAMPLE}:EmaRsi"), EmaRsiReference, real_candles(name), {})
    assert len(mine.trades) > 40


def gapped_down(candles: CandleArrays) -> CandleArrays:
    """Real candles with every second one left out where it fell (closed below its open): the next open then
    gaps down from the close before it, as after a pause in trading, so a stop can be jumped over (it fills
    at the open, below its level). Gaps only down: backtesting.py refuses an ``sl`` above the signal
    candle's close, which a gap up between the signal and the fill would ask for."""
    index = np.arange(len(candles))
    keep = (index % 2 == 0) | (candles.close >= candles.open)
    return CandleArrays(*(np.ascontiguousarray(a[keep]) for a in (candles.ts, candles.open, candles.high,
                                                                   candles.low, candles.close, candles.volume)))


@pytest.mark.parametrize("name", [*CANDLES, "gapped"])
def test_tight_stops_fire_at_the_same_candles_and_prices_as_backtesting_pys(name: str) -> None:
    """The stop path: many trades end at the stop, at the same candle and price on both sides; on gapped candles
    some open below the stop and fill there."""
    candles = gapped_down(real_candles(CANDLES[0])) if name == "gapped" else real_candles(name)
    ema_rsi = type(load_strategy(f"{EXAMPLE}:EmaRsi"))
    tight_ema = type("TightEmaRsi", (ema_rsi,), {"stoploss": -0.005, "__module__": __name__})()
    strategies = ((TightRsi(), RsiReference), (TightBollinger(), BollingerReference), (tight_ema, EmaRsiReference))
    gapped_through = 0
    for strategy, reference in strategies:
        run, _ = compare(strategy, reference, candles, {})
        assert 5 <= stops(run) < len(run.trades)
        level = 1.0 + float(strategy.stoploss or 0.0)
        gapped_through += sum(t.exit_reason == "stop_loss" and t.exit_price < t.entry_price * level * (1 - 1e-9)
                              for t in run.trades)
    assert gapped_through >= 3 if name == "gapped" else gapped_through == 0


def test_a_different_parameter_set_still_matches() -> None:
    """Parameters reach both sides: a faster RSI with other thresholds, a wider Bollinger window."""
    candles = real_candles("BTC_USDT-5m.csv")
    params = {"period": 7, "oversold": 25.0, "exit_above": 60.0}
    mine, _ = compare(load_strategy("rsi-mean-reversion", params), RsiReference, candles, params)
    assert len(mine.trades) > 15
    params_bb = {"window": 50, "k": 1.5}
    mine_bb, _ = compare(load_strategy("bollinger-breakout", params_bb), BollingerReference, candles, params_bb)
    assert len(mine_bb.trades) > 30


def test_the_ema_rsi_example_passes_the_look_ahead_check() -> None:
    from engine.strategy.lookahead import check_lookahead

    report = check_lookahead(load_strategy(f"{EXAMPLE}:EmaRsi"), real_candles("BTC_USDT-5m.csv"))
    assert report.clean, report.summary()
