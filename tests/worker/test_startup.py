"""Start-up edges of a real ``python -m bot`` (issue: hardening): paths that cannot be used, a database that
cannot be reached, a replay file that is missing, a TOML file with a byte-order mark, and a SIGTERM that
arrives while the worker is still importing. Each is one line, the documented exit code, no traceback,
no secret."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import (
    ADMIN,
    START_MS,
    SYMBOLS,
    TOKEN,
    FakeExchangeProc,
    Worker,
    decided_ts,
    free_port,
    trading_toml,
    worker_env,
    write_market,
)

PASSWORD = "Pa55-w0rd-XYZ"
SYNTHETIC = '[trading]\nupdate_interval = 5\nfast = 3\nslow = 8\n[feed]\nsource = "synthetic"\nhistory = 50\n'


def run_worker(tmp_path: Path, toml_text: str = SYNTHETIC, **extra: str) -> subprocess.CompletedProcess[str]:
    toml = tmp_path / "trading.toml"
    toml.write_text(toml_text, encoding="utf-8")
    env = worker_env(tmp_path, emulator_url="http://127.0.0.1:9", exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, **extra)
    return subprocess.run([sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)


def one_line(proc: subprocess.CompletedProcess[str], prefix: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both
    for secret in (TOKEN, PASSWORD):
        assert secret not in both
    return lines[0]


def test_trading_config_that_is_a_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_worker(tmp_path, TRADING_CONFIG=str(tmp_path))
    assert proc.returncode == 2
    assert "is a directory" in one_line(proc, "configuration error: trading config")


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_sqlite_path_that_cannot_be_written_is_one_line_exit_2(tmp_path: Path, where: str) -> None:
    (tmp_path / "plain-file").write_text("x")
    path = tmp_path / "plain-file" / "agent.db" if where == "under a file" else Path("/proc/agent-test/agent.db")
    proc = run_worker(tmp_path, SQLITE_PATH=str(path))
    assert proc.returncode == 2
    assert "SQLITE_PATH" in one_line(proc, "configuration error: ")


async def test_sqlite_path_in_a_missing_directory_is_created_and_said(tmp_path: Path, emu: BotApiEmulator) -> None:
    toml = tmp_path / "trading.toml"
    toml.write_text(SYNTHETIC, encoding="utf-8")
    db = tmp_path / "new" / "dir" / "agent.db"
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, SQLITE_PATH=str(db))
    worker = await Worker.start(env, tmp_path)
    try:
        await worker.wait_for("ready")
        said = worker.logged("sqlite_directory_created")
        assert said and said[0]["level"] == "warning" and said[0]["path"] == str(db.parent)
        assert db.is_file()
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.finish(), 15) == 0
    finally:
        worker.kill()


@pytest.mark.parametrize("problem", ["missing", "a directory", "badly named"])
def test_replay_file_that_cannot_be_used_is_one_line_exit_2(tmp_path: Path, problem: str) -> None:
    target = {"missing": tmp_path / "BTC_USDT-5m.csv", "a directory": tmp_path / "BTC_USDT-5m.csv",
              "badly named": tmp_path / "prices.csv"}[problem]
    if problem == "a directory":
        target.mkdir()
    elif problem == "badly named":
        target.write_text("timestamp,open,high,low,close,volume\n")
    toml = ('[trading]\nsymbols = ["BTCUSDT"]\nfast = 3\nslow = 8\n'
            f'[feed]\nsource = "replay"\nreplay_files = ["{target}"]\n')
    proc = run_worker(tmp_path, toml)
    assert proc.returncode == 2
    line = one_line(proc, "configuration error: feed.replay_files")
    assert str(target) in line


def test_unreachable_postgres_is_one_line_naming_the_host_exit_1(tmp_path: Path) -> None:
    url = f"postgresql://agent:{PASSWORD}@127.0.0.1:9/agentdb"  # port 9: nothing listens, connection refused
    started = time.monotonic()
    proc = run_worker(tmp_path, DATABASE_URL=url)
    assert proc.returncode == 1
    line = one_line(proc, "database error: cannot open the postgresql database agentdb on 127.0.0.1:9")
    assert "refused" in line.lower() or "connect" in line.lower(), line
    assert time.monotonic() - started < 30


def test_trading_config_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    from config.settings import load_trading_config

    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[trading]\nfast = 4\nslow = 9\n".encode())
    config = load_trading_config(path)
    assert (config.trading.fast, config.trading.slow) == (4, 9)


def test_sigterm_while_importing_exits_0(tmp_path: Path) -> None:
    """The platform may stop a worker that has only just started: the handler is the first thing installed."""
    toml = tmp_path / "trading.toml"
    toml.write_text(SYNTHETIC, encoding="utf-8")
    env = worker_env(tmp_path, emulator_url="http://127.0.0.1:9", exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, PYTHONUNBUFFERED="1")
    # -X importtime writes a line to stderr per import: the first one of structlog proves the worker is in the
    # middle of its imports, past the handler, when the signal is sent
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "bot"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.rstrip().endswith("| structlog"):
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


async def test_telegram_unreachable_at_start_trades_anyway_and_connects_when_it_is_back(tmp_path: Path) -> None:
    """Telegram down at start: the worker says so in one line, keeps trading, and when the Bot API answers it
    connects and answers commands."""
    toml = tmp_path / "trading.toml"
    toml.write_text(SYNTHETIC, encoding="utf-8")
    port = free_port()
    env = worker_env(tmp_path, emulator_url=f"http://127.0.0.1:{port}", exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml)
    worker = await Worker.start(env, tmp_path)
    try:
        ready = await worker.wait_for("ready")
        assert ready["telegram"] is False and ready["bot"] is None
        (down,) = worker.logged("telegram_unreachable")
        assert down["level"] == "warning" and "trading goes on" in down["action"]
        assert worker.proc.returncode is None
        emu = BotApiEmulator(token=TOKEN)
        async with emu.run(port):
            back = await worker.wait_for("telegram_recovered", timeout=30)
            assert back["bot"] == "paper_agent_bot"
            before = len(emu.transcript(ADMIN))
            emu.send_message(ADMIN, ADMIN, "/status")
            (reply, *_) = await emu.wait_for_messages(ADMIN, 1, since=before, timeout=15)
            assert "running" in (reply.text or "")
            worker.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.finish(), 15) == 0
        assert "Traceback" not in "".join(worker.lines)
    finally:
        worker.kill()


@pytest.mark.timeout(120)
async def test_exchange_unreachable_at_start_starts_anyway_and_trades_when_it_is_back(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    """The exchange down at start: one warning line, the worker and its bot run (nothing is decided on a
    guessed clock), and once the exchange answers the worker follows its clock and decides candles."""
    port = free_port()
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=f"http://127.0.0.1:{port}", db=None,
                     trading_config=trading_toml(tmp_path / "trading.toml"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    worker = await Worker.start(env, tmp_path)
    exchange = None
    try:
        await worker.wait_for("ready", timeout=60)
        (down,) = worker.logged("exchange_unreachable")
        assert down["level"] == "warning" and "starting anyway" in down["action"]
        before = len(emu.transcript(ADMIN))
        emu.send_message(ADMIN, ADMIN, "/status")
        (reply, *_) = await emu.wait_for_messages(ADMIN, 1, since=before, timeout=15)
        assert "running" in (reply.text or "")
        await asyncio.sleep(1.0)
        assert await decided_ts(url, SYMBOLS[0]) == []  # nothing decided on a guessed clock
        exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 600), speed=120.0, port=port)
        await worker.wait_for("exchange_recovered", timeout=60)
        deadline = time.monotonic() + 30
        while not await decided_ts(url, SYMBOLS[0]):
            assert time.monotonic() < deadline, "no candle decided after the exchange came back"
            await asyncio.sleep(0.2)
        decided = await decided_ts(url, SYMBOLS[0])
        assert all(ts >= START_MS for ts in decided)  # the exchange's candles, on the exchange's clock
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.finish(), 15) == 0
        assert "Traceback" not in "".join(worker.lines)
    finally:
        worker.kill()
        if exchange is not None:
            await exchange.stop()


async def test_a_mistyped_variable_is_named_with_what_it_probably_meant(tmp_path: Path, emu: BotApiEmulator) -> None:
    toml = tmp_path / "trading.toml"
    toml.write_text(SYNTHETIC, encoding="utf-8")
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml, TELEGRAM_VIEWER_ID="222", LOG_LEVL="DEBUG")
    worker = await Worker.start(env, tmp_path)
    try:
        await worker.wait_for("ready")
        said = sorted(e["detail"] for e in worker.logged("unknown_setting"))
        assert said == ["LOG_LEVL is not a setting and is ignored; did you mean LOG_LEVEL?",
                        "TELEGRAM_VIEWER_ID is not a setting and is ignored; did you mean TELEGRAM_VIEWER_IDS?"]
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.finish(), 15) == 0
    finally:
        worker.kill()


async def test_a_replay_file_in_seconds_with_a_gap_is_converted_and_the_gap_said(tmp_path: Path,
                                                                                 emu: BotApiEmulator) -> None:
    from tests.sample import sample_path

    lines = sample_path("ETH_BTC-5m.csv").read_text().splitlines()
    body = lines[1:1001] + lines[1501:2001]  # 500 candles missing in the middle
    seconds = [f"{int(row.split(',', 1)[0]) // 1000},{row.split(',', 1)[1]}" for row in body]
    replay = tmp_path / "ETH_BTC-5m.csv"
    replay.write_text("\n".join([lines[0], *seconds]) + "\n")
    toml = tmp_path / "trading.toml"
    toml.write_text('[trading]\nsymbols = ["ETHBTC"]\nfast = 3\nslow = 8\n'
                    f'[feed]\nsource = "replay"\nreplay_files = ["{replay}"]\n', encoding="utf-8")
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url="http://127.0.0.1:9", db=None,
                     trading_config=toml)
    worker = await Worker.start(env, tmp_path)
    try:
        await worker.wait_for("ready")
        said = [e["detail"] for e in worker.logged("replay_file")]
        assert any("seconds" in d and "milliseconds" in d for d in said), said
        assert any("gap" in d and "500" in d for d in said), said
        worker.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.finish(), 15) == 0
    finally:
        worker.kill()
