"""The commented template ``trading-agent new-strategy NAME`` writes: a working strategy whose imports are all a
strategy file needs (``render_template``, ``write_template``)."""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
from pathlib import Path

from engine.strategy.params import StrategyError

TEMPLATE = '''\
"""{class_name}: a strategy for trading-agent.

Run it:    trading-agent backtest --strategy {file_name}:{class_name} --data candles.csv
Check it:  trading-agent check-lookahead --strategy {file_name}:{class_name} --data candles.csv
Tune it:   --param fast=8 --param slow=30 (or a [strategy.params] table in the trading config)
Compare:   trading-agent backtest --strategy {file_name}:{class_name} --strategy sma-cross --data candles.csv

How it runs: on every closed candle the agent hands the populate methods a pandas DataFrame of candles
(columns date (UTC), open, high, low, close, volume; oldest first). A signal on a candle's close is filled
at the next candle's open. An entry while holding and an exit while flat do nothing. Long only, spot.
A candle with both enter_long and exit_long set is an exit.

Rules: use only the current and earlier rows (never shift(-1), a whole-column mean or max, or anything
else that reads later candles: the look-ahead check refuses it); return the DataFrame from every method;
never drop, sort or re-index rows; give enter_long and exit_long a 0 or 1 on every row (no NaN).
"""

from engine.strategy import CategoricalParam, FloatParam, IntParam, Strategy, crossed_above, ema, rsi


class {class_name}(Strategy):
    """EMA cross with an RSI filter: buy when the fast EMA crosses above the slow one (RSI not overbought), sell
    when it falls back below. (The first sentence is what `trading-agent strategies` shows.)"""

    timeframe = "5m"  # the candles it is written for (None: any)
    startup_candles = 50  # candles the indicators need before the first signal (see configure)
    stoploss = -0.05  # sell when the price falls 5 % below the entry (None: no stop of its own)
    take_profit = None  # e.g. 0.10: sell at 10 % above the entry
    trailing_stop = None  # e.g. 0.03: sell 3 % below the highest price since the entry

    # Tunable parameters: range and default; self.fast reads the value in use.
    fast = IntParam(5, 50, default=12)
    slow = IntParam(20, 200, default=26)
    rsi_max = FloatParam(50.0, 90.0, default=70.0)
    confirm = CategoricalParam([True, False], default=True)

    def check_params(self):
        # parameters that depend on each other: return what is wrong, or None
        return None if self.fast < self.slow else "fast must be below slow"

    def configure(self):
        # what depends on the parameters, set once they are known
        self.startup_candles = max(50, 3 * self.slow)

    def populate_indicators(self, df):
        df["ema_fast"] = ema(df["close"], self.fast)
        df["ema_slow"] = ema(df["close"], self.slow)
        df["rsi"] = rsi(df["close"], 14)
        return df

    def populate_entry_trend(self, df):
        entry = crossed_above(df["ema_fast"], df["ema_slow"])
        if self.confirm:
            entry = entry & (df["rsi"] < self.rsi_max)
        df["enter_long"] = entry.astype(int)  # 1: buy at the next candle's open
        df["enter_tag"] = "ema_cross"  # optional: why, shown with the trade
        # optional: df["confidence"] = ... (0..1) for the min_confidence filter; absent means 1
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)  # 1: sell at the next candle's open
        return df
'''


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _stem(name: str) -> str:
    """``name`` without a trailing ``.py`` (``new-strategy ema_rsi.py`` means ema_rsi)."""
    return name[:-3] if name.endswith(".py") else name


def class_name_for(name: str) -> str:
    """``ema-rsi`` / ``ema_rsi`` / ``EmaRsi`` -> ``EmaRsi``; StrategyError unless ``name`` is letters, digits, '-'
    and '_' starting with a letter, and no Python keyword (a module name and a class name come of it)."""
    base = _stem(name)
    parts = [p for p in re.split(r"[-_]+", base) if p]
    cls = "".join(p[:1].upper() + p[1:] for p in parts)
    if not _NAME.fullmatch(base) or not cls.isidentifier() or keyword.iskeyword(cls) \
            or keyword.iskeyword(file_stem(name)):
        raise StrategyError(f"strategy name {name!r}: use letters, digits, '-' or '_', starting with a letter "
                            "(e.g. ema-rsi)")
    return cls


def render_template(name: str, file_name: str | None = None) -> str:
    """The template's source for a strategy called ``name``, to be saved as ``file_name`` (shown in its usage
    lines; default ``<name>.py``)."""
    cls = class_name_for(name)
    return TEMPLATE.format(class_name=cls, file_name=file_name or f"{file_stem(name)}.py")


def file_stem(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", _stem(name)).strip("_").lower()


def _hides_a_module(stem: str) -> bool:
    """Whether ``<stem>.py`` would hide a module of that name for ``python -m ...`` run in its folder."""
    if stem in sys.stdlib_module_names or stem in sys.builtin_module_names:
        return True
    try:
        return importlib.util.find_spec(stem) is not None
    except (ImportError, ValueError):
        return False


def write_template(name: str, out_dir: Path | None = None) -> Path:
    """Write ``<name>.py`` into ``out_dir`` (default: the current directory); StrategyError if it exists, if the
    name is not a Python name, or if the file would hide a module (``pandas.py``)."""
    class_name_for(name)
    stem = file_stem(name)
    folder = Path() if out_dir is None else out_dir
    path = folder / f"{stem}.py"
    if path.exists():
        raise StrategyError(f"{path} exists; choose another name or --out directory")
    if _hides_a_module(stem):
        raise StrategyError(f"strategy name {name!r}: {stem}.py would hide the Python module {stem!r}; "
                            "choose another name")
    text = render_template(name, str(path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise StrategyError(f"{path} exists; choose another name or --out directory") from None
    except OSError as exc:
        raise StrategyError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
