"""The ``Strategy`` base class: candles in as a pandas DataFrame, enter/exit columns out, arrays for the kernel.

``Strategy.signals(candles)`` is the one entry point: the backtest calls it once over the whole series, the
live loop on a trailing window of ``lookback`` candles per closed candle (the last row is the live signal).
It builds a fresh DataFrame (``date`` UTC, ``open``, ``high``, ``low``, ``close``, ``volume``) from the candle
arrays, runs ``populate_indicators``, ``populate_entry_trend`` and ``populate_exit_trend`` on it in that order,
checks what they return and turns it into the kernel's per-candle inputs (``Signals``):

- ``action`` (int8): ``EXIT`` (-1) where ``exit_long`` is 1, else ``ENTER`` (1) where ``enter_long`` is 1, else
  ``HOLD`` (0). **Tie rule: a candle with both ``enter_long`` and ``exit_long`` set is an EXIT** (flat is the
  safe side: holding, the position closes; flat, nothing happens). Candles before ``startup_candles`` (the
  indicators' warm-up) are HOLD whatever the columns say.
- ``confidence`` (float64, 0..1): the optional ``confidence`` column, 1 where absent; it feeds the kernel's
  ``min_confidence`` filter.
- ``enter_tag`` / ``exit_tag`` (object arrays of str or None, or None without the column): the optional tag
  columns, kept on the candles whose action is ENTER / EXIT.

The kernel's semantics apply unchanged: a signal on candle t's close fills at candle t+1's open; an entry
while holding and an exit while flat do nothing. Long only, spot.

A strategy gets the candles and its parameters, nothing else (no settings, no database, no keys).
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.core.model import CandleArrays
from engine.core.types import TIMEFRAME_MS
from engine.strategy.params import Param, StrategyError

EXIT, HOLD, ENTER = -1, 0, 1
BASE_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "volume")
METHODS: tuple[str, ...] = ("populate_indicators", "populate_entry_trend", "populate_exit_trend")
REQUIRED_METHODS: tuple[str, ...] = ("populate_entry_trend", "populate_exit_trend")
# candles beyond ``startup_candles`` in the live loop's trailing window (indicators such as an EMA depend,
# slightly, on all history: the margin lets them settle)
LIVE_MARGIN = 200
RESERVED: frozenset[str] = frozenset({"name", "lookback"})  # instance attributes every strategy has


@dataclass(frozen=True, slots=True)
class Signals:
    """The kernel's inputs for each candle of the series ``signals`` was given (see the module docstring)."""

    ts: np.ndarray  # int64 ms, the candles'
    action: np.ndarray  # int8: EXIT -1, HOLD 0, ENTER 1
    confidence: np.ndarray  # float64 in 0..1
    enter_tag: np.ndarray | None  # object: str on ENTER candles, None elsewhere; None without the column
    exit_tag: np.ndarray | None  # object: str on EXIT candles, None elsewhere; None without the column
    frame: pd.DataFrame  # the populated DataFrame (indicator columns included), for checks and charts

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def latest(self) -> tuple[int, float, str | None]:
        """The last candle's (action, confidence, tag): what the live loop acts on."""
        if not len(self):
            raise StrategyError("no candles, no signal")
        act = int(self.action[-1])
        tags = self.enter_tag if act == ENTER else self.exit_tag if act == EXIT else None
        return act, float(self.confidence[-1]), None if tags is None else tags[-1]


class Strategy:
    """Base of every strategy; subclass it and fill in the populate methods (see the module docstring).

    Class attributes: ``timeframe`` (e.g. "5m"; None = any), ``startup_candles`` (candles needed before the
    first signal), ``stoploss`` (negative fraction of the entry price, -0.05 = 5 % below; None = no stop),
    ``take_profit`` (positive fraction; None = none), ``trailing_stop`` (positive fraction below the high since
    entry; None = none), and any number of parameters (``IntParam``, ``FloatParam``, ``CategoricalParam``).
    Optional hooks: ``check_params`` (parameters taken together) and ``configure`` (what depends on them).
    Every instance has ``name`` (``sma-cross(fast=10,slow=30)``) and ``lookback`` (``startup_candles`` +
    ``LIVE_MARGIN``: the live loop's window), so it fits the engine's ``Strategy`` port.
    """

    timeframe: ClassVar[str | None] = None
    startup_candles: int = 0
    stoploss: ClassVar[float | None] = None
    take_profit: ClassVar[float | None] = None
    trailing_stop: ClassVar[float | None] = None
    strategy_name: ClassVar[str | None] = None  # a built-in's registered name; None: the class name

    def __init__(self, params: Mapping[str, Any] | None = None, **overrides: Any) -> None:
        cls = type(self)
        label = cls.label()
        check_class(cls)
        declared = cls.parameters()
        given: dict[str, Any] = {**(params or {}), **overrides}
        values: dict[str, Any] = {}
        for key, raw in given.items():
            if key not in declared:
                raise StrategyError(unknown_parameter(label, key, declared))
            values[key] = declared[key].convert(raw, label)
        self._param_values = {name: values.get(name, p.default) for name, p in declared.items()}
        try:
            problem = self.check_params()
        except Exception as exc:  # user code: one line, where it failed
            raise StrategyError(f"{label}.check_params{where_raised(cls, exc)}: {type(exc).__name__}: "
                                f"{one_line(exc)}") from None
        if problem:
            raise StrategyError(f"{label}: {problem}")
        try:
            self.configure()
        except StrategyError:
            raise
        except Exception as exc:  # user code: one line, where it failed
            raise StrategyError(f"{label}.configure{where_raised(cls, exc)}: {type(exc).__name__}: "
                                f"{one_line(exc)}") from None
        start = self.startup_candles
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise StrategyError(f"{label}: startup_candles must be a whole number >= 0, got {start!r}")
        inner = ",".join(f"{k}={v}" for k, v in self._param_values.items())
        # plain attributes (the engine's ``Strategy`` port): fixed once the parameters are
        self.name: str = f"{label}({inner})" if inner else label  # for people and records
        self.lookback: int = start + LIVE_MARGIN  # the trailing window the live loop hands to ``signals``

    def configure(self) -> None:
        """Set what depends on the parameters (``self.startup_candles = self.slow``); runs once, after they are
        set and checked. The default does nothing."""

    def check_params(self) -> str | None:
        """What is wrong with the parameters taken together (``fast`` must be below ``slow``...), or None. A
        strategy whose parameters depend on each other overrides this; each one's range is checked already."""
        return None

    # ---- the three methods a strategy fills in (indicators is optional)

    def populate_indicators(self, df: pd.DataFrame) -> pd.DataFrame:
        """Add indicator columns; the default adds none."""
        return df

    def populate_entry_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        """Set ``df["enter_long"]`` to 1 where to enter, 0 elsewhere (optionally ``enter_tag``, ``confidence``)."""
        raise NotImplementedError

    def populate_exit_trend(self, df: pd.DataFrame) -> pd.DataFrame:
        """Set ``df["exit_long"]`` to 1 where to exit, 0 elsewhere (optionally ``exit_tag``)."""
        raise NotImplementedError

    # ---- parameters and description

    @classmethod
    def label(cls) -> str:
        return cls.strategy_name or cls.__name__

    @classmethod
    def parameters(cls) -> dict[str, Param[Any]]:
        """The declared parameters (name -> IntParam/FloatParam/CategoricalParam), base classes' first."""
        found: dict[str, Param[Any]] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Param):
                    found[key] = value
                elif key in found:  # a subclass replaced the parameter with a fixed value
                    del found[key]
        return found

    def params(self) -> dict[str, Any]:
        """Every declared parameter with its current value."""
        return dict(self._param_values)

    def protective_exits(self) -> dict[str, float]:
        """The optional stops as the kernel's risk limits (positive fractions; 0 = off)."""
        return {"stop_loss_pct": -self.stoploss if self.stoploss is not None else 0.0,
                "take_profit_pct": self.take_profit if self.take_profit is not None else 0.0,
                "trailing_stop_pct": self.trailing_stop if self.trailing_stop is not None else 0.0}

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "strategy", "strategy": self.label(), "params": self.params(),
                "timeframe": self.timeframe, "startup_candles": int(self.startup_candles),
                **self.protective_exits()}

    def __repr__(self) -> str:
        return f"<Strategy {self.name}>"

    # ---- the kernel's inputs

    def signals(self, candles: CandleArrays) -> Signals:
        """Run the populate methods over ``candles`` and return the kernel's per-candle inputs (module docstring).
        StrategyError (one line, the strategy's file and line where it failed) for anything that breaks the
        rules."""
        frame = candle_frame(candles)
        frame = self._populated(frame)
        return to_signals(self, frame, np.asarray(candles.ts, dtype=np.int64))

    def frame(self, candles: CandleArrays) -> pd.DataFrame:
        """The populated DataFrame alone (indicators and signal columns), validated as in ``signals``."""
        return self.signals(candles).frame

    def _populated(self, frame: pd.DataFrame) -> pd.DataFrame:
        index = frame.index
        for method in METHODS:
            try:
                out = getattr(self, method)(frame)
            except StrategyError:
                raise
            except Exception as exc:  # user code: one line, where it failed
                raise StrategyError(f"{self.label()}.{method}{where_raised(type(self), exc)}: "
                                    f"{type(exc).__name__}: {one_line(exc)}") from None
            if not isinstance(out, pd.DataFrame):
                got = "nothing" if out is None else f"a {type(out).__name__}"
                raise StrategyError(f"{self.label()}.{method} returned {got}; it must return the DataFrame "
                                    "(end it with `return df`)")
            if len(out) != len(index) or not out.index.equals(index):
                raise StrategyError(f"{self.label()}.{method} changed the rows ({len(index)} candles in, "
                                    f"{len(out)} rows out); add columns, never drop, sort or re-index rows")
            frame = out
        return frame


def check_class(cls: type[Strategy]) -> None:
    """The class attributes and methods a strategy must have; StrategyError naming the first problem."""
    label = cls.label()
    for method in REQUIRED_METHODS:
        if getattr(cls, method, None) is getattr(Strategy, method):
            raise StrategyError(f"{label}: missing method {method}(self, df) (it must set "
                                f"df[{'enter_long' if 'entry' in method else 'exit_long'!r}])")
    start = cls.startup_candles
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise StrategyError(f"{label}: startup_candles must be a whole number >= 0, got {start!r}")
    checks = (("stoploss", cls.stoploss, -1.0, 0.0, "a negative fraction of the entry price, e.g. -0.05"),
              ("take_profit", cls.take_profit, 0.0, 10.0, "a positive fraction, e.g. 0.1"),
              ("trailing_stop", cls.trailing_stop, 0.0, 1.0, "a positive fraction, e.g. 0.03"))
    for attr, value, low, high, what in checks:
        if value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (low < value < high if attr != "take_profit" else low < value <= high):
            raise StrategyError(f"{label}: {attr} must be None or {what}, got {value!r}")
    if cls.timeframe is not None and cls.timeframe not in TIMEFRAME_MS:
        raise StrategyError(f"{label}: timeframe {cls.timeframe!r} is not one of {', '.join(TIMEFRAME_MS)} "
                            "(or None: any)")
    for name in cls.parameters():
        if name.startswith("_") or hasattr(Strategy, name) or name in RESERVED:
            raise StrategyError(f"{label}: a parameter cannot be called {name!r} (a name the Strategy base uses); "
                                "rename it")


def unknown_parameter(label: str, key: str, declared: Mapping[str, Param[Any]]) -> str:
    close = get_close_matches(key, list(declared), n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    known = ", ".join(f"{n} ({p.describe()})" for n, p in declared.items()) or "none"
    return f"{label}: unknown parameter {key!r} ({hint}parameters: {known})"


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def where_raised(cls: type, exc: BaseException) -> str:
    """`` (file.py:LINE)`` of the deepest frame of the strategy's own file, else of the deepest frame."""
    import inspect

    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if source is not None and f.filename == source]
    pick = own[-1] if own else (frames[-1] if frames else None)
    return "" if pick is None else f" ({pick.filename}:{pick.lineno})"


def candle_frame(candles: CandleArrays) -> pd.DataFrame:
    """A fresh DataFrame of the candles (copies: a strategy cannot change the caller's arrays), one column per
    copy: ``copy=False`` keeps pandas from consolidating the copies into one more block of the series."""
    ts = np.asarray(candles.ts, dtype=np.int64)
    columns: dict[str, Any] = {"date": pd.to_datetime(ts, unit="ms", utc=True)}
    for name in ("open", "high", "low", "close", "volume"):
        columns[name] = np.array(getattr(candles, name), dtype=np.float64)
    return pd.DataFrame(columns, copy=False)


def candle_time(frame: pd.DataFrame, row: int, ts: np.ndarray | None = None) -> str:
    """Row ``row``'s candle as ``row N (YYYY-MM-DD HH:MM UTC)``."""
    stamp = ts[row] if ts is not None else None
    when = pd.Timestamp(int(stamp), unit="ms", tz="UTC") if stamp is not None else frame["date"].iloc[row]
    try:
        text = pd.Timestamp(when).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        text = str(when)
    return f"row {row} ({text})"


def flag_column(label: str, frame: pd.DataFrame, column: str, ts: np.ndarray) -> np.ndarray:
    """``column`` as a bool array; StrategyError for a missing column, NaN, a non-0/1 value or a wrong type."""
    method = "populate_entry_trend" if column == "enter_long" else "populate_exit_trend"
    if column not in frame.columns:
        raise StrategyError(f"{label}.{method}: no column {column!r} (set df[{column!r}] = 1 where to "
                            f"{'enter' if column == 'enter_long' else 'exit'}, 0 elsewhere)")
    series = frame[column]
    if isinstance(series, pd.DataFrame):
        raise StrategyError(f"{label}: column {column!r} appears more than once")
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) and not series.isna().any():
        return np.asarray(series.to_numpy(dtype=bool))
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) \
            or pd.api.types.is_complex_dtype(dtype):
        raise StrategyError(f"{label}: column {column!r} has type {dtype}; it must hold 0/1 or True/False")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    nan = np.isnan(values)
    if nan.any():
        row = int(np.argmax(nan))
        raise StrategyError(f"{label}: column {column!r} is NaN at {candle_time(frame, row, ts)} "
                            f"({int(nan.sum())} rows); give every row 0 or 1, e.g. "
                            f"df[{column!r}] = (condition).astype(int)")
    bad = (values != 0.0) & (values != 1.0)
    if bad.any():
        row = int(np.argmax(bad))
        raise StrategyError(f"{label}: column {column!r} must be 0 or 1, is {values[row]:g} at "
                            f"{candle_time(frame, row, ts)}")
    flags: np.ndarray = values == 1.0
    return flags


def confidence_column(label: str, frame: pd.DataFrame, ts: np.ndarray) -> np.ndarray:
    n = len(frame)
    if "confidence" not in frame.columns:
        return np.ones(n)
    series = frame["confidence"]
    if isinstance(series, pd.DataFrame) or not pd.api.types.is_numeric_dtype(series.dtype) \
            or pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_complex_dtype(series.dtype):
        raise StrategyError(f"{label}: column 'confidence' has type {series.dtype}; it must hold numbers 0..1")
    values = np.array(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    bad = np.isnan(values) | (values < 0.0) | (values > 1.0)
    if bad.any():
        row = int(np.argmax(bad))
        raise StrategyError(f"{label}: column 'confidence' must be between 0 and 1, is {values[row]:g} at "
                            f"{candle_time(frame, row, ts)}")
    return values


def tag_column(frame: pd.DataFrame, column: str, keep: np.ndarray) -> np.ndarray | None:
    if column not in frame.columns:
        return None
    out = np.full(len(frame), None, dtype=object)
    series = frame[column]
    if isinstance(series, pd.DataFrame):
        raise StrategyError(f"column {column!r} appears more than once")
    mask = keep & series.notna().to_numpy(dtype=bool)
    if mask.any():
        out[mask] = series[mask].astype(str).to_numpy(dtype=object)
    return out


def to_signals(strategy: Strategy, frame: pd.DataFrame, ts: np.ndarray) -> Signals:
    label = strategy.label()
    enter = flag_column(label, frame, "enter_long", ts)
    exit_ = flag_column(label, frame, "exit_long", ts)
    action = np.zeros(len(frame), dtype=np.int8)
    action[enter] = ENTER
    action[exit_] = EXIT  # the tie rule: exit wins
    action[: int(strategy.startup_candles)] = HOLD
    confidence = confidence_column(label, frame, ts)
    return Signals(ts, action, confidence, tag_column(frame, "enter_tag", action == ENTER),
                   tag_column(frame, "exit_tag", action == EXIT), frame)
