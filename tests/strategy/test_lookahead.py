"""The look-ahead check for any strategy: the built-ins pass, a planted ``shift(-1)`` is caught with its column and
first candle, and the check on 1,000 candles takes well under a second (it runs at the worker's start)."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from engine.core.model import CandleArrays
from engine.strategy import IntParam, Strategy, StrategyError, ema, rsi
from engine.strategy.builtins import BUILTINS
from engine.strategy.lookahead import check_lookahead, require_causal


class EmaRsi(Strategy):
    startup_candles = 50
    fast = IntParam(5, 50, default=12)
    slow = IntParam(20, 200, default=26)

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df["ema_fast"] = ema(df["close"], self.fast)
        df["ema_slow"] = ema(df["close"], self.slow)
        df["rsi"] = rsi(df["close"], 14)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = ((df["ema_fast"] > df["ema_slow"]) & (df["rsi"] < 70)).astype(int)
        df["enter_tag"] = "trend"
        return df

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)
        return df


class PeeksInAnIndicator(EmaRsi):
    """The classic leak: tomorrow's close as today's column."""

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df = super().populate_indicators(df)
        df["next_close"] = df["close"].shift(-1)
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = (df["next_close"] > df["close"] * 1.001).astype(int)
        return df


class PeeksOnlyInTheSignal(EmaRsi):
    """A leak with no indicator column: the entry itself reads the next candle (NaN-free by fillna)."""

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        df["enter_long"] = (df["close"].shift(-1).fillna(0.0) > df["close"] * 1.002).astype(int)
        return df


class PeeksAtTheWholeSeries(EmaRsi):
    """A subtler leak: a statistic of the whole series (its mean) in every row."""

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        df = super().populate_indicators(df)
        df["above_mean"] = (df["close"] > df["close"].mean()).astype(int)
        return df


def test_a_causal_file_style_strategy_is_clean(btc_1000: CandleArrays) -> None:
    report = check_lookahead(EmaRsi(), btc_1000)
    assert report.clean, report.summary()
    assert report.error() is None and report.summary().endswith("no look-ahead found")
    assert len(report.prefix_ends) >= 20 and report.checked_values > 50_000
    assert min(report.prefix_ends) > EmaRsi.startup_candles


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_builtins_pass(name: str, btc_5m: CandleArrays) -> None:
    report = check_lookahead(BUILTINS[name](), btc_5m)
    assert report.clean, report.summary()


def test_a_planted_shift_minus_one_is_caught_with_column_and_first_candle(btc_1000: CandleArrays) -> None:
    report = check_lookahead(PeeksInAnIndicator(), btc_1000)
    assert not report.clean
    leak = report.leaks[0]
    first_end = report.prefix_ends[0]
    assert leak.column == "next_close"
    assert leak.row == first_end - 1  # the last candle of the shortest truncated run: its next close is unknown
    assert leak.full_value == float(btc_1000.close[first_end]) and leak.prefix_value != leak.prefix_value  # NaN
    stamp = pd.Timestamp(int(btc_1000.ts[leak.row]), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    assert leak.when == stamp
    columns = [lk.column for lk in report.leaks]
    assert {"next_close", "enter_long", "action"} <= set(columns)
    error = report.error()
    assert error is not None and "\n" not in str(error)
    assert str(error).startswith(f"PeeksInAnIndicator(fast=12,slow=26) fails the look-ahead check: column "
                                 f"'next_close' looks ahead: first at candle {stamp} (row {leak.row})")
    with pytest.raises(StrategyError, match="fails the look-ahead check"):
        require_causal(PeeksInAnIndicator(), btc_1000)


def test_a_leak_in_the_signal_alone_is_caught(btc_1000: CandleArrays) -> None:
    report = check_lookahead(PeeksOnlyInTheSignal(), btc_1000)
    assert [lk.column for lk in report.leaks][:1] in (["enter_long"], ["action"])
    assert {"enter_long", "action"} <= {lk.column for lk in report.leaks}


def test_a_whole_series_statistic_is_caught(btc_1000: CandleArrays) -> None:
    report = check_lookahead(PeeksAtTheWholeSeries(), btc_1000)
    assert "above_mean" in {lk.column for lk in report.leaks}


def test_explicit_prefix_ends(btc_1000: CandleArrays) -> None:
    report = check_lookahead(PeeksInAnIndicator(), btc_1000, prefixes=[500])
    assert report.prefix_ends == [500] and report.leaks[0].row == 499
    assert check_lookahead(EmaRsi(), btc_1000, prefixes=[100, 999, 1000]).clean
    with pytest.raises(ValueError, match=r"prefix end 0 outside 1\.\.1000"):
        check_lookahead(EmaRsi(), btc_1000, prefixes=[0])


def test_the_check_on_1000_candles_takes_under_a_second(btc_1000: CandleArrays) -> None:
    for strategy in (EmaRsi(), BUILTINS["sma-cross"](), BUILTINS["bollinger-breakout"]()):
        check_lookahead(strategy, btc_1000)  # warm (first pandas calls import lazily)
        start = time.perf_counter()
        report = check_lookahead(strategy, btc_1000)
        elapsed = time.perf_counter() - start
        print(f"look-ahead check of {strategy.name} on 1,000 candles: {elapsed * 1000:.0f} ms, "
              f"{len(report.prefix_ends)} truncated runs")
        assert report.clean and elapsed < 1.0


def test_the_live_window_is_compared_when_asked(btc_1000: CandleArrays) -> None:
    """Too short a live window is a warm-up problem, not look-ahead: reported apart, the report stays clean."""
    strategy = EmaRsi()
    report = check_lookahead(strategy, btc_1000, live_window=strategy.lookback)
    assert report.clean and report.window_differences == [], report.summary()
    assert f"the live window ({strategy.lookback} candles) decides as the whole series does" in report.summary()
    short = check_lookahead(EmaRsi(slow=200), btc_1000, live_window=30)
    assert short.clean and short.window_differences
    assert short.window_differences[0].column in ("action", "confidence")
    assert "warm-up: " in short.summary() and "(raise startup_candles)" in short.summary()
