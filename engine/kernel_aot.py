"""Compile the kernel's ``run_series`` ahead of time: ``python -m engine.kernel_aot`` (``make install`` runs it).

numba's AOT compiler turns the very source of ``engine.core.kernel.run_series`` (and the ``step`` it calls)
into an extension module beside the kernel, named after the hash of ``kernel.py``
(``engine/core/_kernel_aot_<hash>.so``). The kernel loads it in milliseconds without importing numba;
edit the kernel and the module is no longer found (its name no longer matches) until this is run again,
and backtests use numba's JIT meanwhile. Modules built from earlier versions of the kernel are removed.

Needs numba and a C compiler; without them backtests simply keep numba's JIT.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any


def build() -> Path:
    os.environ["TRADING_AGENT_JIT"] = "1"
    from engine.core import kernel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc announces its own deprecation
        pycc = importlib.import_module("numba.pycc")  # untyped; imported only here, never at run time
    CC: Any = pycc.CC

    folder = Path(kernel.__file__).parent
    name = kernel.aot_module_name()
    cc = CC(name)
    cc.output_dir = str(folder)
    cc.verbose = False
    kernel.compiled("step")  # _run_series calls the other kernel functions: numba must see them compiled
    cc.export("run_series", kernel.AOT_SIGNATURE)(kernel._SOURCES["_run_series"])
    cc.compile()
    built = next(folder.glob(f"{name}.*"))
    for old in folder.glob("_kernel_aot_*"):
        if not old.name.startswith(name):
            old.unlink()
    return built


def main() -> int:
    try:
        built = build()
    except Exception as exc:
        print(f"kernel not compiled ahead of time ({type(exc).__name__}: {exc}); backtests use numba's JIT",
              file=sys.stderr)
        return 1
    print(f"kernel compiled ahead of time: {built}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
