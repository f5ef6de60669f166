"""Tunable strategy parameters: ``IntParam``, ``FloatParam``, ``CategoricalParam``.

Declared as class attributes of a ``Strategy`` (``fast = IntParam(5, 50, default=12)``); on an instance the
attribute reads as the current value (``self.fast`` is an int). The optimiser reads the declared range or
choices (``Strategy.parameters()``). Every value is validated when a strategy is constructed: the wrong type or
out of range is a ``StrategyError`` naming the parameter. A string (from ``--param fast=12`` or a TOML table)
is converted by the parameter's type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, overload

from engine.errors import ConfigError

T = TypeVar("T")

__all__ = ["CategoricalParam", "FloatParam", "IntParam", "Param", "StrategyError"]


class StrategyError(ConfigError):
    """A strategy cannot be loaded or used: a broken file, a bad parameter, a populate method's output that
    breaks the rules. The message is one line for a person (the file and line where there is one)."""


class Param(Generic[T]):
    """Base of the parameter kinds: a descriptor whose value lives in the strategy instance."""

    default: T
    name: str = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Param[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Param[T] | T:
        if obj is None:
            return self
        values: dict[str, Any] = getattr(obj, "_param_values", {})
        return values[self.name] if self.name in values else self.default

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"parameter {self.name!r} is set when the strategy is made: Strategy({self.name}=...)")

    def convert(self, value: Any, owner: str = "strategy") -> T:
        """``value`` (or its string form) as this parameter's type, in range; StrategyError naming it if not."""
        raise NotImplementedError

    def describe(self) -> str:
        """The range or choices, for people (``5..50``, ``one of 'a', 'b'``)."""
        raise NotImplementedError

    def _error(self, owner: str, value: Any, problem: str) -> StrategyError:
        return StrategyError(f"{owner}: parameter {self.name}={value!r} {problem}")


class IntParam(Param[int]):
    """An integer in ``low..high`` (both included)."""

    def __init__(self, low: int, high: int, *, default: int) -> None:
        for label, v in (("low", low), ("high", high), ("default", default)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise StrategyError(f"IntParam: {label} must be an integer, got {v!r}")
        if not low <= default <= high:
            raise StrategyError(f"IntParam: default {default} is outside {low}..{high}")
        self.low, self.high, self.default = low, high, default

    def convert(self, value: Any, owner: str = "strategy") -> int:
        v: Any = value
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                raise self._error(owner, value, "is not an integer") from None
        elif isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._error(owner, value, "is not an integer")
        if not self.low <= v <= self.high:
            raise self._error(owner, value, f"is out of range {self.describe()}")
        return v

    def describe(self) -> str:
        return f"{self.low}..{self.high}"

    def __repr__(self) -> str:
        return f"IntParam({self.low}, {self.high}, default={self.default})"


class FloatParam(Param[float]):
    """A finite number in ``low..high`` (both included)."""

    def __init__(self, low: float, high: float, *, default: float) -> None:
        for label, v in (("low", low), ("high", high), ("default", default)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise StrategyError(f"FloatParam: {label} must be a finite number, got {v!r}")
        if not low <= default <= high:
            raise StrategyError(f"FloatParam: default {default:g} is outside {low:g}..{high:g}")
        self.low, self.high, self.default = float(low), float(high), float(default)

    def convert(self, value: Any, owner: str = "strategy") -> float:
        v: Any = value
        if isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                raise self._error(owner, value, "is not a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self._error(owner, value, "is not a number")
        if not math.isfinite(v):
            raise self._error(owner, value, "is not a finite number")
        if not self.low <= v <= self.high:
            raise self._error(owner, value, f"is out of range {self.describe()}")
        return float(v)

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}"

    def __repr__(self) -> str:
        return f"FloatParam({self.low:g}, {self.high:g}, default={self.default:g})"


class CategoricalParam(Param[Any]):
    """One of a fixed list of choices (strings, numbers or booleans). A string value matches the choice whose
    text is the same (case-insensitive for booleans: ``true``/``false``)."""

    def __init__(self, choices: Sequence[Any], *, default: Any) -> None:
        if isinstance(choices, str) or len(choices) == 0:
            raise StrategyError(f"CategoricalParam: choices must be a non-empty list, got {choices!r}")
        self.choices: tuple[Any, ...] = tuple(choices)
        if default not in self.choices:
            raise StrategyError(f"CategoricalParam: default {default!r} is not one of {self.describe()}")
        self.default = default

    def convert(self, value: Any, owner: str = "strategy") -> Any:
        for choice in self.choices:
            if type(value) is type(choice) and value == choice:
                return choice
        if isinstance(value, str):
            text = value.strip()
            for choice in self.choices:
                if str(choice) == text or (isinstance(choice, bool) and str(choice).lower() == text.lower()):
                    return choice
        if not isinstance(value, (str, bool)):
            for choice in self.choices:  # 2 for a choice of 2.0 and the like
                if isinstance(choice, (int, float)) and not isinstance(choice, bool) and value == choice:
                    return choice
        raise self._error(owner, value, f"is not {self.describe()}")

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def __repr__(self) -> str:
        return f"CategoricalParam({list(self.choices)!r}, default={self.default!r})"


# sma-cross's parameters, declared here (no pandas) so that its description (/strategy, the HTTP API) does not
# import pandas in a worker that runs sma-cross on its fast path; engine.strategy.builtins.SmaCross uses them
SMA_CROSS_PARAMS: dict[str, IntParam] = {"fast": IntParam(1, 500, default=10), "slow": IntParam(2, 1000, default=30)}
