"""The decision kernel's one source gives the same results compiled (numba) and interpreted (CPython).

The worker runs the kernel under CPython (TRADING_AGENT_JIT=0 saves numba's memory); backtests run
it compiled. Both must make the same decisions to the last bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict

import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core import kernel
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from tests.engine.helpers import real_candles
from tests.sample import sample_path

CASES = {
    "all-in": RiskLimits(1, 1, 1, 0, 0, 0, 0, 0),
    "protective": RiskLimits(0.5, 0.6, 1, 0.02, 0.03, 0.01, 0.02, 0.05),
}

SCRIPT = """
import json, sys
from dataclasses import asdict
from engine.backtest import BacktestConfig, run_backtest
from engine.core import kernel
from engine.core.model import SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.feeds.csvio import read_csv
assert not kernel.JITTED
candles = read_csv(sys.argv[1])
limits = RiskLimits(*json.loads(sys.argv[2]))
r = run_backtest(candles, SmaCrossModel(10, 30), BacktestConfig(limits=limits, costs=Costs(10, 5),
                 filters=SignalFilters(0.6, 3_600_000)))
print(json.dumps({"trades": [asdict(t) for t in r.trades], "equity": [float(x) for x in r.equity]}))
"""


@pytest.mark.skipif(not kernel.JITTED, reason="numba is not installed, so there is no compiled kernel to compare")
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_and_interpreted_kernels_agree_exactly(case: str) -> None:
    name = "BTC_USDT-5m.csv"
    candles = real_candles(name)
    limits = CASES[case]
    compiled = run_backtest(candles, SmaCrossModel(10, 30), BacktestConfig(limits=limits, costs=Costs(10, 5),
                            filters=SignalFilters(0.6, 3_600_000)))
    env = {**os.environ, "TRADING_AGENT_JIT": "0"}
    args = [str(sample_path(name)), json.dumps(list(limits.as_dict().values()))]
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True, check=True,
                         timeout=300)
    interpreted = json.loads(out.stdout)

    assert len(compiled.trades) > 20
    assert [asdict(t) for t in compiled.trades] == interpreted["trades"]
    assert [float(x) for x in compiled.equity] == interpreted["equity"]
