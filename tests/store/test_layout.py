"""The store's shape: one small module per aggregate, and the default database where the README says it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from engine.store import Store
from engine.store.db import DEFAULT_SQLITE_PATH

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "engine" / "store"
MAX_LINES = 500


@pytest.mark.parametrize("path", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_every_store_module_is_under_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < MAX_LINES, f"{path.name} has {lines} lines"


def test_the_default_database_is_the_settings_and_readme_one() -> None:
    assert Path(DEFAULT_SQLITE_PATH) == Settings.model_fields["sqlite_path"].default == Path("var/agent.db")
    assert f"| `SQLITE_PATH` | `{DEFAULT_SQLITE_PATH}` |" in (ROOT / "README.md").read_text(encoding="utf-8")


async def test_a_store_opened_without_a_url_is_the_default_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = await Store.open("")
    try:
        assert await store.get_flags() is not None
    finally:
        await store.close()
    assert (tmp_path / DEFAULT_SQLITE_PATH).is_file()
