"""``trading-agent chat`` as a person runs it: a real subprocess, commands piped on standard input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMANDS = ("/status", "/balance", "/positions")


def replies(stdout: str) -> dict[str, list[str]]:
    """What the bot printed after each ``you> command`` line (alerts left out)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith("you> "):
            current = out.setdefault(line.removeprefix("you> "), [])
        elif line.startswith("bot> ") and current is not None:
            current.append(line.removeprefix("bot> "))
    return out


def clean_env() -> dict[str, str]:
    """The environment of a fresh clone: no token, no database, no webhook."""
    drop = ("TELEGRAM_", "DATABASE_URL", "WEBHOOK_", "PORT", "TRADING_CONFIG", "SQLITE_PATH")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    env.pop("PTB_TIMEDELTA", None)  # the command sets it itself
    return env


@pytest.mark.timeout(60)
def test_piped_commands_print_their_replies_and_exit_zero(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "chat", "--files", str(tmp_path / "files")],
        input="\n".join(COMMANDS) + "\n", capture_output=True, text=True, timeout=45, cwd=tmp_path, env=clean_env(),
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = replies(proc.stdout)
    assert list(got) == list(COMMANDS), proc.stdout
    assert all(got[c] for c in COMMANDS), proc.stdout
    assert "PAPER" in got["/status"][0]
    assert "balance" in got["/balance"][0].lower()
    assert "position" in got["/positions"][0].lower()
    assert "<b>" not in proc.stdout and "</" not in proc.stdout  # HTML stripped for the terminal
    assert "Traceback" not in proc.stderr
    assert took < 30, f"took {took:.1f}s"


@pytest.mark.timeout(60)
def test_buttons_are_numbered_photos_saved_and_a_number_presses_a_button(tmp_path: Path) -> None:
    files = tmp_path / "files"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "chat", "--files", str(files)],
        input="/buy BTCUSDT 100\n1\n9\n/chart BTCUSDT\n", capture_output=True, text=True, timeout=45,
        cwd=tmp_path, env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    prompt = proc.stdout.split("you> /buy BTCUSDT 100", 1)[1].split("you> 1", 1)[0]
    assert re.search(r"\[1\] \S.*\[2\] \S", prompt), prompt  # a confirmation with numbered buttons
    pressed = proc.stdout.split("you> 1", 1)[1].split("you> 9", 1)[0]
    assert "bot" in pressed, pressed  # the press was answered (an edit or a new message)
    assert "(no button 9; choose 1-" in proc.stdout
    saved = re.findall(r"\[photo saved to (\S+)\]", proc.stdout)
    assert saved and Path(saved[0]).exists() and Path(saved[0]).read_bytes()[:4] == b"\x89PNG"
