"""``--apply FILE.toml``: the chosen parameters into the trading config the worker reads.

In the file's ``[strategy]`` table: ``params = { ... }`` (the chosen parameters, replacing a ``params`` key or a
``[strategy.params]`` table) and ``study = "..."`` (the study they came from, which ``/strategy`` shows); in
``[trading]``, ``strategy`` is set to the optimised strategy when it named another one. Every other line is kept
as it was (comments too). A file that does not exist starts as a copy of the embedded defaults.

No TOML writer is among the project's libraries, so the edit is made on the lines of those two tables and then
proved: the new text is parsed (``tomllib``) and must equal the old document with exactly these keys changed, and
must load as a trading config (``load_trading_config``); otherwise nothing is written and the error says what to
set by hand. The file is replaced atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.trading import DEFAULT_TRADING_CONFIG, ConfigError, load_trading_config

_HEADER = re.compile(r"^\s*\[\s*(?P<name>[^\[\]]+?)\s*\]\s*(#.*)?$")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string (the same escapes)


def _key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name)


def _tables(lines: list[str]) -> list[tuple[str | None, int, int]]:
    """(table name, first line, end line) of the top part (None) and every ``[table]``; array tables as names too."""
    out: list[tuple[str | None, int, int]] = []
    name: str | None = None
    start = 0
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match is not None and not line.lstrip().startswith("[["):
            out.append((name, start, i))
            name, start = match["name"].replace(" ", ""), i
    out.append((name, start, len(lines)))
    return out


def _set_keys(lines: list[str], table: str, values: Mapping[str, str]) -> list[str]:
    """``lines`` with ``key = value`` lines of ``table`` replaced (or added after its header; the table appended
    when missing)."""
    spans = [(s, e) for name, s, e in _tables(lines) if name == table]
    if not spans:
        return [*lines, *([""] if lines and lines[-1].strip() else []), f"[{table}]",
                *(f"{k} = {v}" for k, v in values.items())]
    start, end = spans[0]
    body = [line for line in lines[start + 1:end]
            if not any(re.match(rf"^\s*{re.escape(k)}\s*=", line) for k in values)]
    return [*lines[:start + 1], *(f"{k} = {v}" for k, v in values.items()), *body, *lines[end:]]


def _drop_table(lines: list[str], table: str) -> list[str]:
    out: list[str] = []
    for name, start, end in _tables(lines):
        if name != table:
            out += lines[start:end]
    return out


def edited(text: str, spec: str, params: Mapping[str, Any], study: str, *, set_strategy: bool) -> str:
    lines = text.splitlines()
    lines = _drop_table(lines, "strategy.params")
    inline = "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in params.items()) + " }" if params else "{}"
    lines = _set_keys(lines, "strategy", {"study": _toml_value(study), "params": inline})
    if set_strategy:
        lines = _set_keys(lines, "trading", {"strategy": _toml_value(spec)})
    return "\n".join(lines) + "\n"


def _expected(before: dict[str, Any], spec: str, params: Mapping[str, Any], study: str) -> dict[str, Any]:
    after = copy.deepcopy(before)
    after.setdefault("trading", {})["strategy"] = spec
    strategy = after.setdefault("strategy", {})
    strategy["params"] = dict(params)
    strategy["study"] = study
    return after


def check_target(path: Path) -> None:
    """Before a search: ConfigError (one line) when ``--apply``'s file could not be written to afterwards."""
    if path.is_dir():
        raise ConfigError(f"--apply {path}: is a directory, not a TOML file")
    if path.exists():
        try:
            tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"--apply {path}: cannot read it as TOML ({exc})") from None


def apply_params(path: Path, spec: str, params: Mapping[str, Any], study: str) -> str:
    """Write ``params`` of ``spec`` from ``study`` into the trading config at ``path`` (module docstring); one line
    saying what was done. ConfigError (one line) when the file cannot be read, parsed or safely edited."""
    source = path if path.exists() else DEFAULT_TRADING_CONFIG
    try:
        text = source.read_text(encoding="utf-8-sig")
        before = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--apply {path}: cannot read it as TOML ({exc})") from None
    current = before.get("trading", {}).get("strategy", "sma-cross") if isinstance(before.get("trading"), dict) \
        else "sma-cross"
    new = edited(text, spec, params, study, set_strategy=current != spec)
    by_hand = (f"set [strategy] params = {{ {', '.join(f'{k} = {_toml_value(v)}' for k, v in params.items())} }} "
               "by hand")
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"--apply {path}: the file's layout could not be edited safely; {by_hand}") from None
    if after != _expected(before, spec, params, study):
        raise ConfigError(f"--apply {path}: the file's layout could not be edited safely; {by_hand}")
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(new)
        try:
            load_trading_config(Path(temp))  # the engine's own reading of it, before it replaces the file
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(temp, str(path))) from None
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    switched = f"; [trading] strategy {current!r} -> {spec!r}" if current != spec else ""
    return f"applied to {path}: [strategy] params = {{ {', '.join(f'{k} = {v}' for k, v in params.items())} }}, " \
           f"study = {study!r}{switched}"
