"""Find a strategy class and make it with its parameters: ``load_strategy(spec, params)``.

``spec`` is one of:

- a built-in name (``sma-cross``, ``rsi-mean-reversion``, ``bollinger-breakout``);
- a file and a class, ``path/to/file.py:EmaRsi`` (the class may be left out when the file defines exactly one
  strategy); the file is imported by path under a private module name (``trading_agent_user_strategy_*``), so
  it can never shadow or replace a module of ours;
- a module and a class, ``mypkg.strats:EmaRsi`` (imported the ordinary way, from ``sys.path``).

Every failure is a ``StrategyError`` with one line for a person: the file and line of a syntax error or of an
exception while importing, a missing class (with close matches), a class that is not a ``Strategy``, a missing
populate method, an unknown parameter (with close matches), a parameter of the wrong type or out of range.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from types import ModuleType

from engine.strategy.base import Strategy, check_class, one_line, where_raised
from engine.strategy.builtins import BUILTINS
from engine.strategy.params import StrategyError

PRIVATE_PREFIX = "trading_agent_user_strategy_"

ParamValue = str | int | float | bool


def load_strategy(spec: str, params: Mapping[str, ParamValue] | None = None) -> Strategy:
    """The strategy ``spec`` names (see the module docstring), made with ``params`` (strings are converted by
    each parameter's type); StrategyError with one line when it cannot be."""
    cls = strategy_class(spec)
    try:
        return cls(dict(params or {}))
    except StrategyError:
        raise
    except Exception as exc:  # a strategy's own __init__ failed: one line, where
        raise StrategyError(f"{cls.label()}{where_raised(cls, exc)}: {type(exc).__name__}: {one_line(exc)}") from None


def strategy_class(spec: str) -> type[Strategy]:
    """The class ``spec`` names, checked (its methods and class attributes), not yet made."""
    text = spec.strip()
    if not text:
        raise StrategyError("no strategy given (a built-in name, path/to/file.py:Class or module:Class)")
    if text in BUILTINS:
        return BUILTINS[text]
    target, _, name = text.rpartition(":") if ":" in text else (text, "", "")
    if _is_path(target):
        cls = _class_from_module(_import_file(Path(target)), name or None, target)
    elif name:
        cls = _class_from_module(_import_module(target), name, target)
    else:
        close = get_close_matches(text, list(BUILTINS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise StrategyError(f"unknown strategy {text!r} ({hint}built-ins: {', '.join(BUILTINS)}; or "
                            "path/to/file.py:Class, or module.path:Class)")
    check_class(cls)
    return cls


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _private_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"{PRIVATE_PREFIX}{stem}_{digest}"


def _import_file(path: Path) -> ModuleType:
    """Run a strategy file as a module of its own, under a private name (registered in sys.modules, so that
    dataclasses and pickling inside it work; re-importing the same file replaces it)."""
    shown = str(path)
    if not path.is_file():
        raise StrategyError(f"strategy file {shown}: {'is a directory' if path.is_dir() else 'no such file'}")
    resolved = path.resolve()
    name = _private_name(resolved)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise StrategyError(f"strategy file {shown}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if not isinstance(exc, Exception):
            raise
        raise StrategyError(_import_failure(exc, str(resolved), shown)) from None
    return module


def _import_module(target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            raise StrategyError(f"strategy module {target!r}: no such module (on sys.path)") from None
        origin = _origin(target)
        raise StrategyError(_import_failure(exc, origin, origin or target)) from None
    except Exception as exc:
        origin = _origin(target)
        raise StrategyError(_import_failure(exc, origin, origin or target)) from None


def _origin(target: str) -> str | None:
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        return None
    return None if spec is None else spec.origin


def _import_failure(exc: Exception, source: str | None, shown: str) -> str:
    """``<file>:<line>: <what>`` for a failure while importing a strategy's source."""
    if isinstance(exc, SyntaxError):  # IndentationError, TabError too
        line = f":{exc.lineno}" if exc.lineno else ""
        kind = "syntax error" if type(exc) is SyntaxError else type(exc).__name__
        return f"strategy file {shown}{line}: {kind}: {exc.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if source is not None and f.filename == source]
    line = f":{own[-1].lineno}" if own else ""
    return f"strategy file {shown}{line}: {type(exc).__name__}: {one_line(exc)}"


def _class_from_module(module: ModuleType, name: str | None, shown: str) -> type[Strategy]:
    if name is None:
        found = strategies_in(module)
        if len(found) == 1:
            return found[0]
        listed = ", ".join(c.__name__ for c in found) or "none"
        raise StrategyError(f"{shown}: name the class, {shown}:ClassName (strategies in it: {listed})")
    obj = getattr(module, name, None)
    if obj is None:
        names = [c.__name__ for c in strategies_in(module)]
        close = get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise StrategyError(f"{shown}: no class {name!r} ({hint}strategies in it: {', '.join(names) or 'none'})")
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise StrategyError(f"{shown}: {name!r} is not a Strategy (define it as class {name}(Strategy), "
                            "with Strategy from engine.strategy)")
    if obj is Strategy:
        raise StrategyError(f"{shown}: {name!r} is the Strategy base class itself; name a subclass")
    return obj


def strategies_in(module: ModuleType) -> list[type[Strategy]]:
    """The Strategy subclasses a module defines itself (not the ones it imports), in order of definition."""
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Strategy) and obj is not Strategy
            and obj.__module__ == module.__name__]


def find_strategies(folder: Path) -> list[tuple[str, str | None]]:
    """Every ``*.py`` file of ``folder`` (not recursive) as (spec, None) per strategy class it defines, or
    (file, the one-line error) when it cannot be imported: what ``trading-agent strategies`` lists."""
    out: list[tuple[str, str | None]] = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            module = _import_file(path)
        except StrategyError as exc:
            out.append((str(path), str(exc)))
            continue
        for cls in strategies_in(module):
            try:
                check_class(cls)
            except StrategyError as exc:
                out.append((f"{path}:{cls.__name__}", str(exc)))
            else:
                out.append((f"{path}:{cls.__name__}", None))
    return out


def configured_params(strategy: str, params: Mapping[str, ParamValue], *, fast: int, slow: int
                      ) -> dict[str, ParamValue]:
    """The parameters a trading config gives its strategy: ``[strategy.params]``; for sma-cross, ``[trading]``'s
    ``fast`` and ``slow`` where the table does not set them (the older way of writing them)."""
    out: dict[str, ParamValue] = dict(params)
    if strategy == "sma-cross":
        out.setdefault("fast", fast)
        out.setdefault("slow", slow)
    return out
