"""The exception tree: one module defines it, its docstring draws it as it is, and the old names still work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import engine.errors as errors
from config.settings import ConfigError, load_trading_config
from engine.errors import ConfigError as TreeConfigError
from engine.errors import CsvFormatError, DataError, TradingAgentError
from engine.feeds.csvio import read_csv

DRAWN = re.compile(r"^\s*(?:[│ ]*[├└]── )?(?P<name>[A-Z][A-Za-z]+)\s{2,}", re.MULTILINE)


def tree_classes() -> dict[str, type[BaseException]]:
    return {name: getattr(errors, name) for name in errors.__all__}


def drawn_parents() -> dict[str, str | None]:
    """Each class drawn in the docstring and the class drawn as its parent (by indentation)."""
    doc = errors.__doc__ or ""
    drawing = doc.split("Hierarchy::", 1)[1].split("\n\n", 2)[1]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in drawing.splitlines():
        match = DRAWN.match(line)
        assert match, line
        depth = match.start("name")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match["name"]] = stack[-1][1] if stack else None
        stack.append((depth, match["name"]))
    return parents


def test_every_error_is_drawn_under_its_real_parent() -> None:
    classes = tree_classes()
    parents = drawn_parents()
    assert set(parents) == set(classes)
    for name, parent in parents.items():
        cls = classes[name]
        if parent is None:
            assert cls is TradingAgentError
        else:
            assert cls.__bases__[0] is classes[parent], f"{name} is drawn under {parent}, derives from {cls.__bases__}"


def test_every_error_is_a_trading_agent_error_and_nothing_else_is_exported() -> None:
    for name, cls in tree_classes().items():
        assert issubclass(cls, TradingAgentError), name
    defined = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, BaseException)}
    assert defined == set(errors.__all__)


def test_the_old_names_are_the_tree_s_classes() -> None:
    from engine.feeds.base import FeedError
    from engine.feeds.csvio import CsvFormatError as CsvioName
    from engine.lock import LockLost
    from engine.models.catboost_model import ModelLoadError
    from engine.models.validation import DataError as ValidationName
    from engine.store.db import DatabaseUnavailable

    assert ConfigError is TreeConfigError
    assert (FeedError, CsvioName, ValidationName, DatabaseUnavailable, ModelLoadError, LockLost) == (
        errors.FeedError, CsvFormatError, DataError, errors.DatabaseUnavailable, errors.ModelLoadError,
        errors.LockLost)
    assert issubclass(LockLost, RuntimeError)  # as it was before the tree


def test_retryable_says_whether_to_try_again() -> None:
    assert errors.ExchangeUnavailable.retryable and errors.FeedUnavailable.retryable
    assert not errors.ExchangeError.retryable
    assert issubclass(errors.FeedUnavailable, errors.FeedError) and issubclass(errors.FeedUnavailable, DataError)
    assert not issubclass(errors.FeedError, errors.ExchangeError)


def test_a_malformed_candle_file_is_a_data_error_and_still_a_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "BTCUSDT-5m.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n1700000000000,1,2,0.5,1.5,10\n1700000300000,1,x,1,1,1\n")
    with pytest.raises(DataError) as info:
        read_csv(bad)
    assert isinstance(info.value, CsvFormatError) and isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{bad}:3: ") and "\n" not in str(info.value)


def test_a_bad_trading_config_is_caught_as_the_tree_s_config_error(tmp_path: Path) -> None:
    path = tmp_path / "trading.toml"
    path.write_text("[risk]\nstop_loss_pct = -1\n")
    with pytest.raises(TradingAgentError) as info:
        load_trading_config(path)
    assert type(info.value) is TreeConfigError and "\n" not in str(info.value)
