"""``trading-agent chat`` as a person runs it: a real subprocess, commands piped on standard input."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import IO

import pytest

from bot.terminal import Terminal
from sim.botapi import BotApiEmulator
from sim.botapi.state import Params

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
        input="/buy BTCUSDT 100\n9\n1\n/chart BTCUSDT\n", capture_output=True, text=True, timeout=45,
        cwd=tmp_path, env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    prompt = proc.stdout.split("you> /buy BTCUSDT 100", 1)[1].split("you> 9", 1)[0]
    assert re.search(r"\[1\] \S.*\[2\] \S", prompt), prompt  # a confirmation with numbered buttons
    assert "(no button 9; choose 1-2)" in proc.stdout.split("you> 9", 1)[1].split("you> 1", 1)[0]
    pressed = proc.stdout.split("you> 1", 1)[1].split("you> /chart", 1)[0]
    assert "bot (edited)> PAPER BUY BTCUSDT 100.00 accepted" in pressed, pressed
    saved = re.findall(r"\[photo saved to (\S+)\]", proc.stdout)
    assert saved and Path(saved[0]).exists() and Path(saved[0]).read_bytes()[:4] == b"\x89PNG"


def chat(tmp_path: Path, stdin: str, *args: str, env: dict[str, str] | None = None,
         timeout: float = 45) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "chat", "--files", str(tmp_path / "files"), *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=env or clean_env())


def after(stdout: str, command: str, nth: int = 1) -> str:
    """What was printed after the ``nth`` ``you> command`` line, up to the next ``you>`` line."""
    return stdout.split(f"you> {command}\n")[nth].split("you> ", 1)[0]


@pytest.mark.timeout(60)
def test_a_number_for_buttons_that_are_gone_says_the_choice_expired(tmp_path: Path) -> None:
    proc = chat(tmp_path, "/pause\n1\n1\n/version\n2\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Paused: no new automatic entries" in after(proc.stdout, "1", 1)
    assert after(proc.stdout, "1", 2).strip() == (
        "(that choice has expired: the buttons it answered are gone; send the command again)")
    assert after(proc.stdout, "2").strip().startswith("(no button 2: the last reply has no buttons)")
    assert proc.stdout.count("Paused: no new automatic entries") == 1  # the second 1 did nothing


@pytest.mark.timeout(60)
def test_at_wall_clock_speed_it_answers_at_once_and_says_what_it_waits_for(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = chat(tmp_path, "/status\n", "--speed", "1")
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert took < 25, f"took {took:.1f}s"  # a 5m candle at x1 is 300 s away
    status = after(proc.stdout, "/status")
    assert "bot> PAPER trading agent: running" in status
    if re.search(r"USDT: — ", status):  # no price yet: the chat must say what it waits for
        assert "(Waiting for the first 5m candle of BTCUSDT, ETHUSDT to close: at x1 that takes up to 300 s" \
            in proc.stdout
    assert "candle time runs at wall-clock speed" in proc.stderr
    assert " sim" not in status  # at x1 the times are not ahead of the wall clock


@pytest.mark.timeout(60)
def test_it_uses_the_configured_strategy_and_models_dir(tmp_path: Path) -> None:
    default = (Path(__file__).parents[2] / "config" / "default.toml").read_text()
    config = tmp_path / "mine.toml"
    config.write_text(default.replace('symbols = ["BTCUSDT"]', 'symbols = ["ETHUSDT"]')
                      .replace('strategy = "sma-cross"', 'strategy = "model"')
                      .replace("position_fraction = 0.2", "position_fraction = 0.15"))
    env = clean_env() | {"TRADING_CONFIG": str(config), "MODELS_DIR": str(tmp_path / "no-models")}
    proc = chat(tmp_path, "/status\n/risk\n/model\n", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status, risk, model = (after(proc.stdout, c) for c in ("/status", "/risk", "/model"))
    assert "Strategy: model on 5m candles" in status and "• ETHUSDT: " in status and "BTCUSDT" not in status
    assert "• position_fraction: 0.15\n" in risk
    assert f"no active model for ETHUSDT in {tmp_path / 'no-models'}" in model
    assert f"TRADING_CONFIG {config}" in proc.stderr

    config.write_text("[risk]\nstop_loss_pct = 2\n")
    bad = chat(tmp_path, "/status\n", env=env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"configuration error: trading config {config}: risk.stop_loss_pct: Input should be less than or equal to "
        "0.99 (got 2)"]


def test_bad_speed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = chat(tmp_path, "", "--speed", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument --speed: must be more than 0, got '0'" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.timeout(60)
def test_a_terminal_gets_a_prompt(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "chat", "--files", str(tmp_path / "files")],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env=clean_env())
    os.close(slave)
    try:
        assert proc.stdout is not None
        out = read_until(proc.stdout, "you> ", 30)
        os.write(master, b"/version\n")
        out += read_until(proc.stdout, "trading-agent ", 15)
        out += read_until(proc.stdout, "you> ", 5)  # the prompt again after the reply
        os.write(master, b"/quit\n")
        assert proc.wait(20) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert out.startswith("you> ") or out.index("you> ") < out.index("bot> ")
    assert re.search(r"bot> trading-agent \S+ \(PAPER\)", out), out


def read_until(stream: IO[bytes], text: str, timeout: float) -> str:
    """Read ``stream`` until ``text`` appears (what was read)."""
    deadline = time.monotonic() + timeout
    got = b""
    while text.encode() not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} within {timeout} s: {got.decode(errors='replace')!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            assert chunk, f"output ended before {text!r}: {got.decode(errors='replace')!r}"
            got += chunk
    return got.decode()


def alert(emu: BotApiEmulator, terminal: Terminal, text: str) -> None:
    sent = emu.state.api_send_message(Params({"chat_id": terminal.chat_id, "text": text}))
    terminal.on_alert(SimpleNamespace(chat_id=terminal.chat_id), SimpleNamespace(message_id=sent["message_id"]))


def test_alerts_that_arrive_together_at_high_speed_are_one_block(tmp_path: Path) -> None:
    emu, out = BotApiEmulator(token="1:T"), io.StringIO()
    terminal = Terminal(emu, 7, tmp_path, out, batch_s=0.2, mark_times=True)
    for i in range(30):
        alert(emu, terminal, f"🧪 PAPER · 🟢 BUY BTCUSDT filled\n0.1 @ {100 + i}\n2026-11-24 04:{i:02d} UTC")
    alert(emu, terminal, "🧪 PAPER · ✅ Position closed: BTCUSDT\nPnL +1.00\n2026-11-24 05:00 UTC")
    assert terminal.flush() == 0 and out.getvalue() == ""  # held while more may come
    time.sleep(0.25)
    terminal.flush()
    shown = out.getvalue()
    assert shown.count("alerts>") == 1 and "31 alerts in the last" in shown
    assert "  30 × 🧪 PAPER · 🟢 BUY BTCUSDT filled\n  1 × 🧪 PAPER · ✅ Position closed: BTCUSDT\n" in shown
    assert "latest: 🧪 PAPER · ✅ Position closed: BTCUSDT · PnL +1.00 · 2026-11-24 05:00 UTC sim" in shown
    assert len(shown.strip().splitlines()) == 4

    alert(emu, terminal, "🛑 Agent stopped\n2026-11-24 06:00 UTC")  # one alone is shown as it is
    terminal.flush(force=True)
    assert out.getvalue()[len(shown):] == "🔔 alert> 🛑 Agent stopped\n2026-11-24 06:00 UTC sim\n\n"


def test_without_batching_every_alert_is_shown_as_it_comes(tmp_path: Path) -> None:
    emu, out = BotApiEmulator(token="1:T"), io.StringIO()
    terminal = Terminal(emu, 7, tmp_path, out)
    for i in range(5):
        alert(emu, terminal, f"🧪 PAPER · 🟢 BUY BTCUSDT filled\n0.1 @ {100 + i}")
    terminal.flush()
    assert out.getvalue().count("🔔 alert> ") == 5 and "alerts>" not in out.getvalue()
