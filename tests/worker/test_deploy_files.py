"""The deployment files do what the platform expects: the Procfile's release command migrates the
database (twice is a no-op), the worker line starts ``python -m bot``, the Python version is pinned the
way the buildpack reads it, and app.json / .env.example / the README table name every Settings variable."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from pydantic import AliasChoices

from config.settings import Settings
from tests.worker.rig import ROOT, rows


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def env_vars() -> set[str]:
    """The environment variables: a field's name, or the first of its aliases (EXCHANGE for exchange_id)."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(str(alias.choices[0]).upper() if isinstance(alias, AliasChoices) else name.upper())
    return names


def test_procfile_has_worker_and_release_and_python_is_pinned() -> None:
    entries = {k.strip(): v.strip() for k, v in procfile().items()}
    assert entries["worker"] == "python -m bot"
    assert "release" in entries
    assert (ROOT / ".python-version").read_text(encoding="utf-8").strip() == "3.11"


async def test_release_command_migrates_to_head_idempotently_without_printing_the_password(
        db_url: str, tmp_path: Path) -> None:
    release = shlex.split(procfile()["release"].strip())
    assert release[0] == "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SQLITE_PATH", "LOG_"))}
    env["DATABASE_URL"] = db_url
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(sys.executable, *release[1:], env=env, cwd=tmp_path,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = (b.decode() for b in await asyncio.wait_for(proc.communicate(), 120))
        assert proc.returncode == 0, err[-2000:]
        assert "database at head" in out
        password = db_url.split("://", 1)[1].split("@")[0].partition(":")[2]
        if password:
            assert password not in out + err
    assert await rows(db_url, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_release_command_with_a_bad_variable_is_one_line_exit_2(tmp_path: Path) -> None:
    release = shlex.split(procfile()["release"].strip())
    env = {**os.environ, "LOG_LEVEL": "LOUD"}
    proc = subprocess.run([sys.executable, *release[1:]], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("configuration error: invalid environment variable LOG_LEVEL")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_every_settings_variable_is_in_app_json_env_example_and_the_readme() -> None:
    app = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    deploy = readme.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    for name in env_vars() - {"PORT"}:
        assert name in app["env"], f"{name} missing from app.json"
    for name in env_vars():
        assert f"{name}=" in example, f"{name} missing from .env.example"
        assert f"| `{name}` |" in deploy, f"{name} missing from the README's Deploy table"
