"""Import boundaries: the engine never reaches for the bot, Telegram or the simulators; the core stays pure.

1. Every module under engine/ is imported in a fresh interpreter; afterwards no ``bot``/``telegram``/``sim``
   module may be loaded (this catches indirect imports too).
2. engine/core/ imports no I/O framework (ast, every import statement, also inside functions).
3. engine/core/ reads no wall clock and sleeps nowhere (ast: no ``time.time``, ``time.monotonic``,
   ``datetime.now``, ``asyncio.sleep``... calls), except the live clocks of engine/core/clock.py.
4. No import cycles among our modules (engine/, bot/, config/, sim/), type-checking-only imports included.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
CORE = ENGINE / "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> list[str]:
    """Every module under engine/ except the alembic migration scripts (they run alembic when imported)."""
    return sorted(module_name(p) for p in ENGINE.rglob("*.py") if "migrations" not in p.parts)


def imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


PROBE = """
import importlib, json, sys
bad = {}
for name in sys.argv[1:]:
    importlib.import_module(name)
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('bot', 'telegram', 'sim'))
    if loaded:
        bad[name] = loaded
print(json.dumps(bad))
"""


def test_no_engine_module_pulls_in_bot_or_telegram() -> None:
    modules = engine_modules()
    assert "engine.loop" in modules and "engine.core.trading" in modules and "engine.facade" in modules
    # one interpreter per module would be exact but slow; importing them in order and recording the first
    # module after which bot/telegram shows up names the culprit (or one that imports it)
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    bad = json.loads(out.stdout.strip().splitlines()[-1])
    assert bad == {}, f"bot/telegram/sim loaded after importing: {next(iter(bad))} -> {bad[next(iter(bad))]}"


@pytest.mark.parametrize("path", sorted(ENGINE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_source_never_names_bot_telegram_or_the_simulators(path: Path) -> None:
    names = imported_names(ast.parse(path.read_text(encoding="utf-8")))
    assert not {n for n in names if n.split(".")[0] in ("bot", "telegram", "sim")}


FORBIDDEN_IN_CORE = ("sqlalchemy", "aiohttp", "telegram", "bot", "asyncio", "aiosqlite", "asyncpg", "structlog",
                     "engine.store", "engine.feeds", "engine.loop", "engine.facade", "engine.events", "engine.app",
                     "engine.commands", "requests", "socket")


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_io_framework(path: Path) -> None:
    names = imported_names(ast.parse(path.read_text(encoding="utf-8")))
    bad = {n for n in names for f in FORBIDDEN_IN_CORE if n == f or n.startswith(f + ".")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


WALL_CLOCK = {("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
              ("time", "perf_counter"), ("time", "sleep"), ("datetime", "now"), ("datetime", "utcnow"),
              ("datetime", "today"), ("date", "today"), ("asyncio", "sleep")}


def clock_calls(tree: ast.AST) -> list[tuple[str, int, str | None]]:
    """(dotted call, line, enclosing class) for every call of a wall-clock or sleep function."""
    found: list[tuple[str, int, str | None]] = []

    def visit(node: ast.AST, cls: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                base = child.func.value
                owner = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
                if (owner, child.func.attr) in WALL_CLOCK:
                    found.append((f"{owner}.{child.func.attr}", child.lineno, cls))
            visit(child, cls)

    visit(tree, None)
    # ``from time import time`` / ``from asyncio import sleep`` would hide the owner: forbid those imports too
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime", "asyncio"):
            for alias in node.names:
                if (node.module, alias.name) in WALL_CLOCK or alias.name in ("time", "sleep", "monotonic"):
                    found.append((f"from {node.module} import {alias.name}", node.lineno, None))
    return found


WALL_CLOCK_CLASSES = ("LiveClock", "OffsetClock")


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_reads_no_wall_clock_and_never_sleeps(path: Path) -> None:
    calls = clock_calls(ast.parse(path.read_text(encoding="utf-8")))
    if path.name == "clock.py":  # the wall clocks live here (LiveClock, and OffsetClock = LiveClock + offset)
        assert calls and all(cls in WALL_CLOCK_CLASSES for _, _, cls in calls), calls
        assert any(cls == "LiveClock" for _, _, cls in calls)
        return
    assert not calls, f"{path.name}: {calls}"


def test_the_clock_check_catches_a_wall_clock_read() -> None:
    src = ("import time\nimport asyncio\nfrom datetime import datetime\nclass A:\n    def f(self):\n"
           "        return time.time(), datetime.now()\nasync def g():\n    await asyncio.sleep(1)\n")
    assert [c for c, _, _ in clock_calls(ast.parse(src))] == ["time.time", "datetime.now", "asyncio.sleep"]
    assert imported_names(ast.parse("def f():\n    import telegram.ext\n")) == {"telegram.ext"}


PACKAGES = ("engine", "bot", "config", "sim")


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts}


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """module -> the modules among ``sources`` it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    graph: dict[str, set[str]] = {}
    for name, src in sources.items():
        edges = set()
        for target in imported_names(ast.parse(src)):
            while target and target not in sources:
                target = target.rpartition(".")[0]  # ``from a.b import name``: the module a.b
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_our_modules() -> None:
    graph = import_graph({name: p.read_text(encoding="utf-8") for name, p in our_modules().items()})
    assert "engine.core.trading" in graph and "bot.context" in graph
    assert "engine.core.portfolio" in graph["engine.core.trading"]  # the graph sees real edges
    assert cycles(graph) == []


def test_the_cycle_check_catches_a_cycle_also_behind_type_checking() -> None:
    sources = {"a": "from b import thing\n", "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n",
               "c": "import a\n", "p.m": "from p import n\n", "p.n": "x = 1\n"}
    assert cycles(import_graph(sources)) == [["a", "b"]]
    assert import_graph(sources)["p.m"] == {"p.n"}


def test_the_core_returns_events_as_values() -> None:
    from engine.core.events import EngineEvent
    from engine.events import OrderFilled

    assert issubclass(OrderFilled, EngineEvent) and OrderFilled.__module__ == "engine.core.events"
