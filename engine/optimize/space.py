"""The search space: a strategy's declared parameters (``IntParam``, ``FloatParam``, ``CategoricalParam``), narrowed
by ``--range NAME=LOW..HIGH`` (or ``NAME=a,b,c`` for a categorical one) and with ``--param NAME=VALUE`` fixing a
parameter (not searched).

Every problem is a ``StrategyError`` (one line): an unknown parameter (with close matches), a range outside the
declared one, an empty range (LOW above HIGH, no choice left), a parameter both fixed and searched, nothing left
to search.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from engine.strategy.params import CategoricalParam, FloatParam, IntParam, Param, StrategyError

_RANGE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<spec>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Dimension:
    """One searched parameter: an int or float range (both ends included) or a list of choices."""

    name: str
    kind: str  # "int", "float" or "categorical"
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high)
        return trial.suggest_categorical(self.name, list(self.choices))

    def width(self) -> float:
        """The range's width (0 for choices): what a spread of chosen values is measured against."""
        return self.high - self.low if self.kind != "categorical" else 0.0

    def describe(self) -> str:
        if self.kind == "categorical":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"{int(self.low)}..{int(self.high)}" if self.kind == "int" else f"{self.low:g}..{self.high:g}"

    def start(self, default: Any) -> Any:
        """``default`` moved into this dimension (the nearest end, or the first choice)."""
        if self.kind == "categorical":
            return default if default in self.choices else self.choices[0]
        value = min(max(default, self.low), self.high)
        return int(value) if self.kind == "int" else float(value)


@dataclass(frozen=True, slots=True)
class Space:
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]  # the --param values (converted by the declaration), not searched

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The fixed parameters with one value of every dimension drawn by the trial's sampler."""
        return {**self.fixed, **{d.name: d.suggest(trial) for d in self.dimensions}}

    def describe(self) -> dict[str, str]:
        return {d.name: d.describe() for d in self.dimensions}

    def defaults(self, declared: Mapping[str, Param[Any]]) -> dict[str, Any]:
        """The declared defaults moved into the space, with the fixed values: a point inside it."""
        return {**{d.name: d.start(declared[d.name].default) for d in self.dimensions}, **self.fixed}


def _dimension(label: str, name: str, param: Param[Any], spec: str | None) -> Dimension:
    if isinstance(param, CategoricalParam):
        choices = param.choices
        if spec is not None:
            picked = [param.convert(text.strip(), label) for text in spec.split(",") if text.strip()]
            if not picked:
                raise StrategyError(f"--range {name}={spec}: empty range (name at least one of {param.describe()})")
            choices = tuple(dict.fromkeys(picked))
        return Dimension(name, "categorical", choices=choices)
    if not isinstance(param, (IntParam, FloatParam)):
        raise StrategyError(f"{label}: parameter {name!r} is a {type(param).__name__}; the optimiser searches "
                            "IntParam, FloatParam and CategoricalParam")
    kind = "int" if isinstance(param, IntParam) else "float"
    low, high = float(param.low), float(param.high)
    if spec is not None:
        ends = spec.split("..")
        if len(ends) != 2 or not ends[0].strip() or not ends[1].strip():
            raise StrategyError(f"--range {name}={spec}: write {name}=LOW..HIGH (e.g. {name}={param.describe()})")
        try:
            low, high = (float(param.convert(e.strip(), label)) for e in ends)
        except StrategyError as exc:
            raise StrategyError(f"--range {name}={spec}: {exc} (declared {param.describe()})") from None
        if low > high:
            raise StrategyError(f"--range {name}={spec}: empty range ({ends[0].strip()} is above {ends[1].strip()})")
    return Dimension(name, kind, low, high)


def parse_ranges(texts: Sequence[str] | None) -> dict[str, str]:
    """``--range NAME=SPEC`` flags by name (the last one of a name wins); StrategyError for a malformed one."""
    out: dict[str, str] = {}
    for text in texts or ():
        match = _RANGE.match(text.strip())
        if match is None:
            raise StrategyError(f"--range {text!r}: write NAME=LOW..HIGH (a number range) or NAME=a,b (choices)")
        out[match["name"]] = match["spec"].strip()
    return out


def build_space(label: str, declared: Mapping[str, Param[Any]], fixed: Mapping[str, Any],
                ranges: Mapping[str, str]) -> Space:
    """The search space of a strategy (module docstring). ``fixed``: the parameters given a value (already
    converted); ``ranges``: ``parse_ranges``' output."""
    from engine.strategy.base import unknown_parameter

    for name in ranges:
        if name not in declared:
            raise StrategyError(f"--range {name}=...: {unknown_parameter(label, name, declared)}")
        if name in fixed:
            raise StrategyError(f"{name} is fixed (--param {name}={fixed[name]}) and searched (--range); drop one")
    dims = tuple(_dimension(label, name, p, ranges.get(name)) for name, p in declared.items() if name not in fixed)
    if not dims:
        raise StrategyError(f"{label}: no parameter left to search (it declares "
                            f"{', '.join(declared) or 'none'}; every one is fixed by --param)")
    return Space(dims, dict(fixed))
