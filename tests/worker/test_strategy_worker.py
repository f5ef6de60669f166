"""The worker (a real ``python -m bot``) runs the strategy its config names: a strategy file trades on the fake
exchange after passing the look-ahead gate (well within a second) and sees candles and its parameters only, not
the secrets of the environment; a leaky strategy (a planted ``shift(-1)``), a broken file, a bad parameter and a
timeframe the strategy was not written for each stop it with one line, exit 2, no traceback; sma-cross keeps its
fast path, without pandas."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sim.botapi import BotApiEmulator
from tests.worker.rig import (
    ROOT,
    SYMBOLS,
    FakeExchangeProc,
    Worker,
    decided_ts,
    trading_toml,
    worker_env,
    write_market,
)
from tests.worker.test_startup import SYNTHETIC, one_line, run_worker

LEAKY = '''
from engine.strategy import Strategy


class Peeker(Strategy):
    def populate_indicators(self, df):
        df["next_close"] = df["close"].shift(-1)  # the planted leak: tomorrow's close, today
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["next_close"] > df["close"]).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["next_close"] < df["close"]).astype(int)
        return df
'''

PROBING = '''
import json
import os
from pathlib import Path

from engine.strategy import IntParam, Strategy, ema


class EmaProbe(Strategy):
    """An EMA cross that also writes down what it was handed and what the environment holds."""

    startup_candles = 30
    fast = IntParam(2, 50, default=5)
    slow = IntParam(5, 200, default=20)

    def populate_indicators(self, df):
        secrets = ("TELEGRAM_BOT_TOKEN", "DATABASE_URL", "EXCHANGE_API_KEY", "EXCHANGE_API_SECRET")
        seen = {"df": type(df).__name__, "columns": list(df.columns), "attrs": sorted(vars(self)),
                "secrets": [k for k in secrets if k in os.environ],
                "values": [k for k, v in os.environ.items() if "TEST-TOKEN" in v]}
        Path(__file__).with_name("probe.json").write_text(json.dumps(seen))
        df["ema_fast"] = ema(df["close"], self.fast)
        df["ema_slow"] = ema(df["close"], self.slow)
        return df

    def populate_entry_trend(self, df):
        df["enter_long"] = (df["ema_fast"] > df["ema_slow"]).astype(int)
        return df

    def populate_exit_trend(self, df):
        df["exit_long"] = (df["ema_fast"] < df["ema_slow"]).astype(int)
        return df
'''


def with_strategy(tmp_path: Path, source: str, spec_suffix: str, extra: str = "") -> str:
    path = tmp_path / "strats" / "mine.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return SYNTHETIC.replace("[trading]\n", f'[trading]\nstrategy = "{path}{spec_suffix}"\n') + extra


def test_a_leaky_strategy_is_refused_with_its_column_and_candle_exit_2(tmp_path: Path) -> None:
    proc = run_worker(tmp_path, with_strategy(tmp_path, LEAKY, ":Peeker"))
    assert proc.returncode == 2
    line = one_line(proc, "configuration error: Peeker fails the look-ahead check: ")
    assert "column 'action' looks ahead: first at candle 2024-01-01 00:05 UTC (row 1)" in line
    assert not (tmp_path / "agent.db").exists()  # refused before the database was opened


@pytest.mark.parametrize(("source", "suffix", "extra", "needle"), [
    ("class Broken(:\n    pass\n", ":Broken", "", "mine.py:1: syntax error"),
    (PROBING, ":NoSuchClass", "", "mine.py: no class 'NoSuchClass' (strategies in it: EmaProbe)"),
    (PROBING, ":EmaProbe", "[strategy.params]\nfast = 500\n", "parameter fast=500 is out of range 2..50"),
    (PROBING, ":EmaProbe", "[strategy.params]\nspeed = 3\n", "unknown parameter 'speed'"),
    (PROBING.replace("startup_candles = 30", "startup_candles = 30\n    timeframe = \"1h\""), ":EmaProbe", "",
     "EmaProbe is written for 1h candles but [trading] timeframe is 5m"),
])
def test_a_strategy_that_cannot_be_used_is_one_line_exit_2(tmp_path: Path, source: str, suffix: str, extra: str,
                                                           needle: str) -> None:
    proc = run_worker(tmp_path, with_strategy(tmp_path, source, suffix, extra))
    assert proc.returncode == 2
    assert needle in one_line(proc, "configuration error: ")


@pytest.mark.timeout(120)
async def test_a_strategy_file_trades_on_the_exchange_with_candles_and_parameters_only(
        tmp_path: Path, emu: BotApiEmulator) -> None:
    strategy = tmp_path / "strats" / "probe.py"
    strategy.parent.mkdir()
    strategy.write_text(PROBING, encoding="utf-8")
    toml = trading_toml(tmp_path / "trading.toml")
    toml.write_text(toml.read_text().replace("[trading]\n", f'[trading]\nstrategy = "{strategy}:EmaProbe"\n')
                    + "[strategy.params]\nfast = 4\n", encoding="utf-8")
    exchange = await FakeExchangeProc.start(write_market(tmp_path / "market", 600), speed=120.0)
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    env = worker_env(tmp_path, emulator_url=emu.base_url, exchange_url=exchange.base_url, db=None,
                     trading_config=toml)
    worker = await Worker.start(env, tmp_path)
    try:
        checked = await worker.wait_for("lookahead_checked", timeout=60)
        assert checked["strategy"] == "EmaProbe(fast=4,slow=20)" and checked["seconds"] < 1.0
        await worker.wait_for("ready", timeout=60)
        for _ in range(60):
            if len(await decided_ts(url, SYMBOLS[0])) >= 5:
                break
            await asyncio.sleep(0.5)
        assert len(await decided_ts(url, SYMBOLS[0])) >= 5
        seen = json.loads((strategy.parent / "probe.json").read_text())
        assert seen["df"] == "DataFrame" and seen["columns"] == ["date", "open", "high", "low", "close", "volume"]
        assert seen["attrs"] == ["_param_values", "lookback", "name"]  # its parameters; no settings, store or keys
        assert seen["secrets"] == [] and seen["values"] == []  # the environment was scrubbed before it ran
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.finish(15) == 0
        assert "Traceback" not in worker.text()
    finally:
        worker.kill()
        await exchange.stop()


def test_sma_cross_keeps_its_fast_path_without_pandas(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from config.settings import load_trading_config\n"
        "from engine.app import build_strategy\n"
        "from engine.core.clock import LiveClock\n"
        "from engine.core.model import SmaCrossModel\n"
        f"config = load_trading_config(__import__('pathlib').Path({str(tmp_path / 't.toml')!r}))\n"
        "catalog, prepared = build_strategy(config, __import__('pathlib').Path('models'), LiveClock())\n"
        "models = list(prepared.models.values())\n"
        "assert all(type(m) is SmaCrossModel and (m.fast, m.slow) == (3, 8) for m in models), models\n"
        "assert prepared.label == 'sma-cross(3,8)'\n"
        "print('pandas' in sys.modules)\n"
    )
    (tmp_path / "t.toml").write_text('[trading]\nsymbols = ["BTCUSDT", "ETHUSDT"]\nfast = 3\nslow = 8\n')
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
