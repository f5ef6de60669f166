"""The worker as the platform runs it: ``python -m bot`` subprocesses against the real fake exchange
(``python -m sim.exchange`` subprocess, fast scaled time) and the Bot API emulator, on a
SQLite file or a PostgreSQL database. Plus the database checks every end-to-end test uses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from engine.core.model import CandleArrays
from engine.feeds.csvio import write_csv
from engine.store import create_engine
from engine.store.repo import Store
from tests.store.queries import ledger_invariants

TOKEN = "123456:TEST-TOKEN"
ADMIN = 1
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TF_MS = 60_000
START_MS = 1_700_000_040_000 // TF_MS * TF_MS
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_candles(n: int, seed: int) -> CandleArrays:
    """A wavy random walk: SMA crossings (so trades) every few dozen candles."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n))) * (1 + 0.02 * np.sin(i / 7.0))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    ts = START_MS + i.astype(np.int64) * TF_MS
    return CandleArrays(ts=ts, open=open_, high=high, low=low, close=close, volume=rng.uniform(1, 10, n))


def write_market(directory: Path, n: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, symbol in enumerate(SYMBOLS):
        path = directory / f"{symbol[:3]}_{symbol[3:]}-1m.csv"
        write_csv(path, make_candles(n, seed=100 + k))
        paths.append(path)
    return paths


def trading_toml(path: Path, *, history: int = 300, symbols: Iterable[str] = SYMBOLS) -> Path:
    names = ", ".join(f'"{s}"' for s in symbols)
    path.write_text(
        f'[trading]\nsymbols = [{names}]\ntimeframe = "1m"\nupdate_interval = 0.05\nfast = 3\nslow = 8\n'
        '[signal_filters]\ncooldown = 120\n'
        '[risk]\nmax_daily_loss_pct = 0.5\nmax_drawdown_pct = 0.9\n'
        f'[feed]\nsource = "exchange"\nstale_after = 1000\nhistory = {history}\n', encoding="utf-8")
    return path


@dataclass
class FakeExchangeProc:
    proc: asyncio.subprocess.Process
    base_url: str

    @classmethod
    async def start(cls, csvs: list[Path], *, speed: float, history: int = 400,
                    port: int | None = None, personality: str = "binance",
                    extra: Iterable[str] = ()) -> FakeExchangeProc:
        port = port or free_port()
        args = [sys.executable, "-m", "sim.exchange", "--port", str(port), "--speed", str(speed),
                "--history", str(history), "--personality", personality, *extra]
        for csv in csvs:
            args += ["--csv", str(csv)]
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert " at http" in line, line
        return cls(proc, line.rsplit(" at ", 1)[1].strip())

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 10)


def worker_env(tmp_path: Path, *, emulator_url: str, exchange_url: str, db: str | None,
               trading_config: Path, **extra: str) -> dict[str, str]:
    drop = ("TELEGRAM_", "DATABASE_URL", "WEBHOOK_", "PORT", "TRADING_CONFIG", "SQLITE_PATH", "LOG_", "DYNO",
            "EXCHANGE", "TRADING_AGENT_JIT")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(drop)}
    env.pop("PTB_TIMEDELTA", None)
    env.update({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": emulator_url,
                "TELEGRAM_ADMIN_IDS": str(ADMIN), "EXCHANGE_BASE_URL": exchange_url,
                "TRADING_CONFIG": str(trading_config), "SQLITE_PATH": str(tmp_path / "agent.db"),
                "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)})
    if db is not None:
        env["DATABASE_URL"] = db
    env.update(extra)
    return env


STARTED: list[asyncio.subprocess.Process] = []  # every worker started; tests/worker/conftest.py kills leftovers


@dataclass
class Worker:
    """One ``python -m bot`` process; its stdout (JSON lines) is collected as it comes."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> Worker:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=cwd, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        STARTED.append(proc)
        worker = cls(proc)
        worker._reader = asyncio.create_task(worker._read())
        return worker

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            self.lines.append(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass
            self._new.set()

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    async def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = self.logged(event)
                if found:
                    return found[0]
                if self._reader is not None and self._reader.done():
                    code = await self.proc.wait()
                    raise AssertionError(f"worker exited ({code}) before {event!r}: {self.text()[-3000:]}"
                                         f"{(await self.stderr())[-2000:]}")
                self._new.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new.wait(), 0.5)

    def text(self) -> str:
        return "".join(self.lines)

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    async def finish(self, timeout: float = 30.0) -> int:  # a platform's grace (Heroku: 30 s, then SIGKILL)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        return code


# ------------------------------------------------------------------------------ database checks


async def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(r) for r in (await connection.execute(text(query))).all()]
    finally:
        await engine.dispose()


SNAPSHOT_QUERIES = {
    "orders": "SELECT order_id, symbol, side, quantity, status FROM orders ORDER BY order_id",
    "fills": "SELECT order_id, symbol, side, quantity, price, fee, ts FROM fills ORDER BY order_id",
    "trades": "SELECT symbol, entry_time, exit_time, quantity, pnl, exit_reason FROM trades ORDER BY id",
    "positions": "SELECT symbol, quantity, avg_price, entry_ts, stop_price, trail_price FROM positions "
                 "ORDER BY symbol",
    "cash_ledger": "SELECT ts, kind, amount, fee, order_id, balance_after FROM cash_ledger ORDER BY id",
    "decisions": "SELECT symbol, candle_ts FROM decisions ORDER BY symbol, candle_ts",
    "signals": "SELECT symbol, ts, action, confidence, outcome FROM signals ORDER BY id",
    "chats": "SELECT chat_id, active, role FROM chats ORDER BY chat_id",
    "alert_settings": "SELECT chat_id, kind, mode FROM alert_settings ORDER BY chat_id, kind",
    "flags": "SELECT paused, risk_state, halted_reason FROM engine_state",
}


async def snapshot(url: str) -> dict[str, Any]:
    """Everything a restart must keep, as plain rows (plus the core's own state blob)."""
    out: dict[str, Any] = {name: await rows(url, q) for name, q in SNAPSHOT_QUERIES.items()}
    (blob,) = (await rows(url, "SELECT core_state FROM engine_state"))[0]
    out["core_state"] = json.loads(blob) if isinstance(blob, str) else blob
    return out


async def ledger_checks(url: str) -> dict[str, Any]:
    """Assert the cash ledger's invariants (its sum, its last balance against the cash, its fees against the fills',
    one ledger row per fill); the invariants' figures."""
    store = await Store.open(url, migrate=False)
    try:
        inv = await ledger_invariants(store)
    finally:
        await store.close()
    assert abs(inv["ledger_sum"] - inv["last_balance"]) < 1e-6, inv
    if inv["fill_count"]:
        assert abs(inv["last_balance"] - inv["cash"]) < 1e-6, inv
    assert abs(inv["ledger_fees"] - inv["fill_fees"]) < 1e-6, inv
    assert inv["ledger_fill_rows"] == inv["fill_count"], inv
    return inv


async def consistency(url: str) -> dict[str, Any]:
    """Assert the accounting invariants and the absence of duplicates; returns a few counts."""
    await ledger_checks(url)
    # positions vs fills: net filled quantity per symbol is the open position
    net: Counter[str] = Counter()
    for symbol, side, qty in await rows(url, "SELECT symbol, side, quantity FROM fills"):
        net[symbol] += qty if side.upper() == "BUY" else -qty
    held = {s: q for s, q in await rows(url, "SELECT symbol, quantity FROM positions")}
    for symbol in set(net) | set(held):
        assert abs(net.get(symbol, 0.0) - held.get(symbol, 0.0)) < 1e-9 * max(1.0, abs(net.get(symbol, 0.0))), (
            symbol, net.get(symbol), held.get(symbol))
    # no duplicates (the unique constraints say so; check the rows themselves)
    for query in ("SELECT order_id, count(*) FROM orders GROUP BY order_id HAVING count(*) > 1",
                  "SELECT order_id, count(*) FROM fills GROUP BY order_id HAVING count(*) > 1",
                  "SELECT symbol, candle_ts, count(*) FROM decisions GROUP BY symbol, candle_ts HAVING count(*) > 1",
                  "SELECT outbox_id, chat_id, count(*) FROM deliveries GROUP BY outbox_id, chat_id HAVING count(*) > 1",
                  "SELECT o.order_id FROM orders o LEFT JOIN fills f ON f.order_id = o.order_id "
                  "WHERE o.status = 'filled' AND f.order_id IS NULL"):
        assert await rows(url, query) == [], query
    payloads = Counter(json.dumps(p, sort_keys=True) if not isinstance(p, str) else p
                       for (p,) in await rows(url, "SELECT payload FROM outbox"))
    assert not [p for p, n in payloads.items() if n > 1], "duplicate outbox events"
    decisions = await rows(url, "SELECT count(*) FROM decisions")
    fills = await rows(url, "SELECT count(*) FROM fills")
    return {"decisions": decisions[0][0], "fills": fills[0][0]}


async def decided_ts(url: str, symbol: str) -> list[int]:
    return [int(ts) for (ts,) in await rows(url, f"SELECT candle_ts FROM decisions WHERE symbol = '{symbol}' "
                                                 "ORDER BY candle_ts")]
