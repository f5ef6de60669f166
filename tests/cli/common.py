"""Run ``trading-agent`` as a person does (a real subprocess) and build candle files from the shipped sample."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.sample import sample_path

ROOT = Path(__file__).resolve().parents[2]
CLEAN = sample_path("BTC_USDT-5m.csv").read_text().splitlines()
HEAD, ROWS = CLEAN[0], CLEAN[1:]
SOME_ROWS = ROWS[:2000]


def cli(*args: object, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m engine.cli ARGS`` from the checkout, output captured."""
    return subprocess.run([sys.executable, "-m", "engine.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Assert exit code 2, nothing on stdout, exactly one line on stderr holding ``expected``, no traceback."""
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def csv_text(rows: list[str], head: str = HEAD, newline: str = "\n") -> str:
    return head + newline + newline.join(rows) + newline


def with_ts(rows: list[str], ts: Callable[[int, int], object]) -> list[str]:
    """The rows with their timestamp replaced by ``ts(original_ms, row_index)``."""
    out = []
    for k, row in enumerate(rows):
        fields = row.split(",")
        out.append(",".join([str(ts(int(fields[0]), k)), *fields[1:]]))
    return out


def iso(fmt: str) -> Callable[[int, int], str]:
    return lambda ms, _k: datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(fmt)
