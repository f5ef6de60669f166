"""Helpers of the optimiser's tests: the command run in this process on the sample candles, its results JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_5M = ROOT / "data" / "sample" / "BTC_USDT-5m.csv"  # 10,999 candles
SAMPLE_1H = ROOT / "data" / "sample" / "BTC_USDT-1h.csv"  # 120 candles


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    folder: Path

    def results(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.folder / "results.json").read_text())
        return doc


@pytest.fixture
def optimize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``trading-agent optimize ARGS`` in this process (sma-cross on the 5m sample, results in a fresh folder of
    tmp_path unless ARGS say otherwise); its exit code, stdout, stderr and results folder."""
    runs = iter(range(1000))

    def run(*args: str, out: Path | None = None, data: Path = SAMPLE_5M, plots: bool = False) -> Ran:
        folder = out or tmp_path / f"run{next(runs)}"
        argv = ["optimize", "--data", str(data), "--out", str(folder), "--no-progress", *args]
        if not plots:
            argv.append("--no-plots")
        if "--strategy" not in args:
            argv += ["--strategy", "sma-cross"]
        code = main(argv)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err, folder)

    return run


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """A fresh, empty PostgreSQL database as a plain postgresql:// URL (what a user gives --storage)."""
    import os

    from tests.conftest import _fresh_postgres_database

    if pg_server.server is None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required (REQUIRE_POSTGRES=1): {pg_server.reason}")
        pytest.skip(f"PostgreSQL unavailable: {pg_server.reason}")
    with _fresh_postgres_database(pg_server.server) as url:
        yield url.replace("postgresql+asyncpg://", "postgresql://", 1)
