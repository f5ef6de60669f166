"""``bot/__main__.py`` is the worker's composition root: short, wiring only, and the early SIGTERM handler is
installed before anything slow is imported (test_startup.py proves the behaviour with a real process; this
proves the order in the source, so a new import cannot slip in above it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "bot" / "__main__.py"
MAX_LINES = 200
LIGHT = {"__future__", "signal", "sys"}  # what may be imported before the handler is installed


def imports_before_the_handler(source: str) -> list[str] | None:
    """The modules imported at top level before the first ``signal.signal(...)``; None if there is none."""
    seen: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            seen += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            seen.append(node.module or "")
        elif any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "signal"
                 for n in ast.walk(node)) and not isinstance(node, ast.FunctionDef):
            return seen
    return None


def test_the_early_sigterm_handler_comes_before_every_slow_import() -> None:
    before = imports_before_the_handler(MAIN.read_text(encoding="utf-8"))
    assert before is not None, "no signal.signal(...) at the top level of bot/__main__.py"
    assert set(before) <= LIGHT, f"imported before the handler: {sorted(set(before) - LIGHT)}"


def test_the_order_check_catches_an_import_above_the_handler() -> None:
    late = "import signal\nimport structlog\nif __name__ == '__main__':\n    signal.signal(15, print)\n"
    assert imports_before_the_handler(late) == ["signal", "structlog"]
    assert imports_before_the_handler("import signal\n") is None


def test_the_composition_root_is_short_and_holds_no_domain_logic() -> None:
    source = MAIN.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_LINES
    classes = [n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)]
    assert classes == [], f"classes belong in their own modules: {classes}"
