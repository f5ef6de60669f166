"""The command-line side of strategies: ``--strategy`` / ``--param`` for ``backtest`` and ``check-lookahead``, and
the ``new-strategy`` and ``strategies`` commands.

Which parameters a strategy gets, weakest first:

1. its declared defaults;
2. the trading config: ``[strategy.params]`` for the strategy ``[trading] strategy`` names (the same spec text),
   and, for sma-cross, ``[trading]`` ``fast``/``slow`` where the table does not set them (``configured_params``);
3. ``--param NAME=VALUE`` (and ``--fast N`` / ``--slow N``, the same as ``--param fast=N`` / ``slow=N``): for
   every strategy given that declares NAME; none declares it is an error (one line, with close matches);
4. ``--param N:NAME=VALUE``: for the N-th ``--strategy`` only (1-based, in the order given); it must declare NAME.

A NAME given twice at the same level: the last one wins (as a repeated flag does). Every value is converted and
range-checked by the parameter's own declaration. Importing this module imports pandas (the strategy layer): the
backtest imports it only when a strategy other than the plain sma-cross is asked for.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.strategy.base import Strategy, one_line, unknown_parameter, where_raised
from engine.strategy.builtins import BUILTINS
from engine.strategy.loader import ParamValue, configured_params, find_strategies, strategy_class
from engine.strategy.params import Param, StrategyError
from engine.strategy.template import class_name_for, write_template

if TYPE_CHECKING:
    from config.trading import TradingConfig

_PARAM = re.compile(r"^(?:(?P<index>\d+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParamArg:
    """One ``--param``: ``index`` is the 1-based position of the ``--strategy`` it is for (None: every strategy
    that declares ``name``); ``text`` is how it was given, for messages."""

    index: int | None
    name: str
    value: str
    text: str


def parse_param(text: str, flag: str = "--param") -> ParamArg:
    """``[N:]NAME=VALUE`` as a ParamArg; StrategyError (one line) for anything else."""
    match = _PARAM.match(text.strip())
    if match is None:
        raise StrategyError(f"{flag} {text!r}: write NAME=VALUE (e.g. {flag} fast=12), or N:NAME=VALUE for the "
                            "N-th --strategy only")
    index = match["index"]
    if index is not None and int(index) < 1:
        raise StrategyError(f"{flag} {text!r}: strategies are numbered from 1, in the order of --strategy")
    return ParamArg(None if index is None else int(index), match["name"], match["value"].strip(), f"{flag} {text}")


def cli_params(params: Sequence[str] | None, *, fast: int | None = None, slow: int | None = None) -> list[ParamArg]:
    """The ``--param`` flags, with ``--fast``/``--slow`` as ``fast=``/``slow=`` before them (so ``--param``
    wins)."""
    out = [ParamArg(None, name, str(v), f"--{name} {v}") for name, v in (("fast", fast), ("slow", slow))
           if v is not None]
    return out + [parse_param(text) for text in params or ()]


def _listing(classes: Sequence[type[Strategy]]) -> str:
    return "; ".join(f"{cls.label()}: {', '.join(cls.parameters()) or 'none'}" for cls in classes)


def _nobody_declares(arg: ParamArg, classes: Sequence[type[Strategy]]) -> StrategyError:
    if len(classes) == 1:
        cls = classes[0]
        return StrategyError(f"{arg.text}: {unknown_parameter(cls.label(), arg.name, cls.parameters())}")
    names = sorted({n for cls in classes for n in cls.parameters()})
    close = get_close_matches(arg.name, names, n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return StrategyError(f"{arg.text}: no strategy given declares {arg.name!r} ({hint}{_listing(classes)})")


def strategy_params(specs: Sequence[str], classes: Sequence[type[Strategy]], given: Sequence[ParamArg],
                    config: TradingConfig | None = None, config_name: str = "the trading config"
                    ) -> list[dict[str, ParamValue]]:
    """The parameters of each strategy (``specs[i]`` is ``classes[i]``), by the rules of the module docstring."""
    out: list[dict[str, ParamValue]] = []
    for spec, cls in zip(specs, classes, strict=True):
        table: Mapping[str, ParamValue] = {}
        params: dict[str, ParamValue] = {}
        if config is not None:
            if spec.strip() == config.trading.strategy:
                table = config.strategy.params
            params = configured_params(spec.strip(), table, fast=config.trading.fast, slow=config.trading.slow)
        declared = cls.parameters()
        for key in table:
            if key not in declared:
                raise StrategyError(f"{config_name}: [strategy.params] {unknown_parameter(cls.label(), key, declared)}")
        out.append(params)
    for arg in sorted(given, key=lambda a: a.index is not None):  # numbered ones last: they win
        if arg.index is None:
            targets = [i for i, cls in enumerate(classes) if arg.name in cls.parameters()]
            if not targets:
                raise _nobody_declares(arg, classes)
        elif arg.index > len(classes):
            count = "1 strategy" if len(classes) == 1 else f"{len(classes)} strategies"
            raise StrategyError(f"{arg.text}: there {'is' if len(classes) == 1 else 'are'} {count} (--strategy); "
                                f"number them 1..{len(classes)}")
        else:
            targets = [arg.index - 1]
            cls = classes[targets[0]]
            if arg.name not in cls.parameters():
                raise StrategyError(f"{arg.text}: {unknown_parameter(cls.label(), arg.name, cls.parameters())}")
        for i in targets:
            out[i][arg.name] = arg.value
    return out


def make_strategy(cls: type[Strategy], params: Mapping[str, ParamValue]) -> Strategy:
    """``cls`` made with ``params``; a failure in its own code is one StrategyError line (as ``load_strategy``)."""
    try:
        return cls(dict(params))
    except StrategyError:
        raise
    except Exception as exc:  # the strategy's own __init__ failed: one line, where
        raise StrategyError(f"{cls.label()}{where_raised(cls, exc)}: {type(exc).__name__}: {one_line(exc)}") from None


def load_strategies(specs: Sequence[str], given: Sequence[ParamArg], config: TradingConfig | None = None,
                    config_name: str = "the trading config") -> list[Strategy]:
    """Each spec's strategy with its parameters (module docstring); StrategyError with one line for the first
    problem. Each file is imported once."""
    classes = [strategy_class(spec) for spec in specs]
    params = strategy_params(specs, classes, given, config, config_name)
    return [make_strategy(cls, p) for cls, p in zip(classes, params, strict=True)]


def timeframe_warning(strategy: Strategy, timeframe: str, file_name: str) -> str | None:
    """A line for the report when the strategy is written for other candles than the data holds."""
    if strategy.timeframe is None or strategy.timeframe == timeframe:
        return None
    return (f"{strategy.label()} is written for {strategy.timeframe} candles; {file_name} holds {timeframe} "
            "candles (its indicators' periods mean other spans of time)")


# --- check-lookahead --strategy ----------------------------------------------------------------------------


def check_lookahead_command(args: argparse.Namespace) -> int:
    """``trading-agent check-lookahead --strategy SPEC [--param ...] --data FILE``: 0 clean, 1 leak, 2 bad input."""
    from config.trading import ConfigError, load_trading_config
    from engine.feeds.candle_file import load_candles
    from engine.feeds.csvio import CsvFormatError
    from engine.strategy.lookahead import check_lookahead

    try:
        config = load_trading_config(args.config)
        strategy = load_strategies([args.strategy], cli_params(args.param), config, _config_name(args))[0]
        data = load_candles(args.data, symbol=args.symbol, timeframe=args.timeframe,
                            min_candles=int(strategy.startup_candles) + 2, needed_by=f"checking {strategy.name}")
        report = check_lookahead(strategy, data.arrays, prefixes=args.cuts)
    except (ConfigError, CsvFormatError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tf = timeframe_warning(strategy, data.timeframe, data.path.name)
    for kind, lines in (("note", data.notes), ("warning", (*data.warnings, *([tf] if tf else [])))):
        for line in lines:
            print(f"{kind}: {line}", file=sys.stderr)
    print(report.summary())
    return 0 if report.clean else 1


def _config_name(args: argparse.Namespace) -> str:
    return f"trading config {args.config}" if args.config is not None else "the trading config"


# --- new-strategy -------------------------------------------------------------------------------------------


def configure_new_strategy(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME",
                   help="the strategy's name: letters, digits, '-' or '_', starting with a letter (ema-rsi writes "
                        "ema_rsi.py with class EmaRsi)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the folder to write NAME.py into (default: the current directory; made if missing)")


def run_new_strategy(args: argparse.Namespace) -> int:
    try:
        path = write_template(args.name, args.out)
    except StrategyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cls = class_name_for(args.name)
    print(f"Wrote {path} (class {cls}): a working EMA cross with an RSI filter; make it yours.")
    print(f"  backtest it:  trading-agent backtest --strategy {path}:{cls} --data CANDLES.csv")
    print(f"  check it:     trading-agent check-lookahead --strategy {path}:{cls} --data CANDLES.csv")
    return 0


# --- strategies ---------------------------------------------------------------------------------------------


def configure_strategies(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="where to look for strategy files (*.py; default: the config's [strategy] folder, else "
                        "./strategies if it exists)")
    p.add_argument("--config", type=Path, help="trading config TOML (its [strategy] folder); default: embedded")


def describe(cls: type[Strategy]) -> str:
    """The first sentence of the class's own docstring, on one line (empty without one)."""
    doc = cls.__dict__.get("__doc__") or ""
    first = " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")
    cut = first.find(". ")
    return first if cut < 0 else first[:cut + 1]


def _default(param: Param[Any]) -> str:
    value = param.default
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def parameters_line(cls: type[Strategy]) -> str:
    """``fast 1..500 (default 10), slow ...``; then the timeframe and the stops it declares."""
    params = ", ".join(f"{name} {p.describe()} (default {_default(p)})" for name, p in cls.parameters().items())
    extras = [f"timeframe {cls.timeframe or 'any'}"]
    for attr, label in (("stoploss", "stoploss"), ("take_profit", "take profit"), ("trailing_stop", "trailing stop")):
        value = getattr(cls, attr)
        if value is not None:
            extras.append(f"{label} {value * 100:+g} %" if attr == "stoploss" else f"{label} {value * 100:g} %")
    return "; ".join([params or "no parameters", ", ".join(extras)])


def _folder(args: argparse.Namespace) -> Path | None:
    """The folder to list: --folder, else the config's [strategy] folder, else ./strategies if it exists."""
    from config.trading import load_trading_config

    if args.folder is not None:
        if not args.folder.is_dir():
            what = "not a folder" if args.folder.exists() else "no such folder"
            raise StrategyError(f"--folder {args.folder}: {what}")
        return Path(args.folder)
    folder = load_trading_config(args.config).strategy.folder
    if folder is not None:
        if not folder.is_dir():
            raise StrategyError(f"{_config_name(args)}: [strategy] folder {str(folder)!r}: "
                                f"{'not a folder' if folder.exists() else 'no such folder'}")
        return Path(folder)
    default = Path("strategies")
    return default if default.is_dir() else None


def _rows(entries: Sequence[tuple[str, str, str]]) -> list[str]:
    width = max((len(name) for name, _, _ in entries), default=0)
    lines = []
    for name, text, detail in entries:
        lines.append(f"  {name:<{width}}  {text}".rstrip())
        if detail:
            lines.append(f"  {'':<{width}}  {detail}")
    return lines


def list_strategies(folder: Path | None) -> tuple[list[str], int]:
    """The listing's lines and how many files failed to import."""
    lines = ["Built-in strategies (--strategy NAME):"]
    lines += _rows([(name, describe(cls), parameters_line(cls)) for name, cls in BUILTINS.items()])
    if folder is None:
        lines += ["", "No strategies folder (./strategies does not exist; pass --folder DIR or set [strategy] folder "
                      "in the trading config). Start one: trading-agent new-strategy NAME --out strategies"]
        return lines, 0
    found = find_strategies(folder)
    lines += ["", f"Strategies in {folder} (--strategy FILE.py:Class):"]
    if not found:
        lines.append("  none (no *.py file defines a Strategy)")
    entries: list[tuple[str, str, str]] = []
    broken = 0
    for spec, error in found:
        if error is None:
            try:
                cls = strategy_class(spec)  # the file imports again: its class, to describe
            except StrategyError as exc:
                error = str(exc)
            else:
                entries.append((spec, describe(cls), parameters_line(cls)))
                continue
        if error is not None:
            broken += 1
            entries.append((spec, f"error: {error}", ""))
    return lines + _rows(entries), broken


def run_strategies(args: argparse.Namespace) -> int:
    from config.trading import ConfigError

    try:
        lines, _broken = list_strategies(_folder(args))
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


@dataclass(frozen=True, slots=True)
class SubCommand:
    """A sub-command of ``trading-agent`` kept in a module with others (``engine.cli.COMMANDS`` names it as
    ``module:ATTRIBUTE``)."""

    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


NEW_STRATEGY = SubCommand(configure_new_strategy, run_new_strategy)
STRATEGIES = SubCommand(configure_strategies, run_strategies)
