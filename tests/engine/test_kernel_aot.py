"""The kernel's ``run_series`` compiled ahead of time (``python -m engine.kernel_aot``, run by ``make install``)
is the same source as numba's JIT and gives the same results to the last bit; a backtest loads it without
importing numba. The module is named after the kernel's source hash, so an edited kernel never runs an old one.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from engine.backtest import model_signals
from engine.core import kernel
from engine.core.clock import SimClock
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.trading import TradingCore
from tests.engine.helpers import real_candles
from tests.sample import sample_path


def _run(runner_of: str, limits: RiskLimits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    candles = real_candles("BTC_USDT-5m.csv")
    action, confidence = model_signals(SmaCrossModel(10, 30), candles)
    core = TradingCore(limits=limits, costs=Costs(10, 5), filters=SignalFilters(0.6, 3_600_000), starting_cash=1e4,
                       clock=SimClock())
    i = core.row("BTCUSDT")
    n = len(candles)
    equity, held, trades = np.empty(n), np.zeros(n, dtype=np.bool_), np.zeros((n, kernel.NT))
    args = (core.g.copy(), core.s.copy(), core.p, i, candles.ts, candles.open, candles.high, candles.low,
            candles.close, action, confidence, equity, held, trades, np.zeros(kernel.NH), np.zeros((2, kernel.NF)))
    if runner_of == "aot":
        runner = kernel.series_runner(*args)
    else:
        runner = kernel.compiled("_run_series")
    count = runner(*args)
    return equity, held, trades[:count]


def test_the_kernel_is_compiled_ahead_of_time_for_this_source() -> None:
    assert kernel.COMPILED_AHEAD, "run `python -m engine.kernel_aot` (make install does)"
    assert f"engine.core.{kernel.aot_module_name()}" in sys.modules


def test_ahead_of_time_and_jit_kernels_agree_exactly() -> None:
    for limits in (RiskLimits(1, 1, 1, 0, 0, 0, 0, 0), RiskLimits(0.5, 0.6, 1, 0.02, 0.03, 0.01, 0.02, 0.05)):
        aot, jit = _run("aot", limits), _run("jit", limits)
        assert len(aot[2]) > 20
        for a, b in zip(aot, jit, strict=True):
            assert np.array_equal(a, b)


def test_arguments_outside_the_signature_go_to_the_jit() -> None:
    f = np.zeros(3)
    args = (f, np.zeros((1, kernel.NS)), f, 0, np.zeros(3, dtype=np.int32), f, f, f, f, np.zeros(3, dtype=np.int64),
            f, f, np.zeros(3, dtype=np.bool_), np.zeros((1, kernel.NT)), np.zeros(kernel.NH), np.zeros((2, kernel.NF)))
    assert kernel.series_runner(*args) is kernel._run_series


def test_a_backtest_command_does_not_import_numba() -> None:
    code = ("import sys; from engine.cli import main; code = main(['backtest', '--data', sys.argv[1]]); "
            "print('numba' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", code, str(sample_path("BTC_USDT-5m.csv"))], capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.splitlines()[-1] == "False 0", out.stdout + out.stderr
