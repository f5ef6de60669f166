"""The bot package stays readable and its parts get only their slice of the settings:

1. no module in bot/ is over 500 lines (the emulator lives in sim/ and is exempt);
2. only the composition roots (``bot/__main__.py``, the worker; ``bot/chat.py``, the offline chat) see the
   whole ``Settings``: every other bot module gets a section (``TelegramSettings``) passed in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
MAX_LINES = 500
COMPOSITION_ROOTS = {"__main__.py", "chat.py"}
WHOLE_SETTINGS = {"config.settings.Settings", "config.settings.load_settings", "config.worker"}


def bot_modules() -> list[Path]:
    return sorted(BOT.rglob("*.py"))


def whole_settings_imports(source: str) -> set[str]:
    """The names of ``WHOLE_SETTINGS`` a module imports (anywhere, also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names = {a.name for a in node.names}
        else:
            continue
        found |= names & WHOLE_SETTINGS
    return found


@pytest.mark.parametrize("path", bot_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_bot_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by topic"


@pytest.mark.parametrize("path", bot_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_composition_roots_see_the_whole_settings(path: Path) -> None:
    found = whole_settings_imports(path.read_text(encoding="utf-8"))
    if path.parent == BOT and path.name in COMPOSITION_ROOTS:
        return
    assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}: pass it its section instead"


def test_the_roots_do_build_from_the_whole_settings_and_the_check_catches_a_component_that_would() -> None:
    assert whole_settings_imports((BOT / "__main__.py").read_text(encoding="utf-8"))
    assert whole_settings_imports((BOT / "chat.py").read_text(encoding="utf-8"))
    component = "def role(user):\n    from config.settings import Settings, TelegramSettings\n"
    assert whole_settings_imports(component) == {"config.settings.Settings"}
    assert whole_settings_imports("from config.settings import TelegramSettings\n") == set()
