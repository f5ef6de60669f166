"""How the decision kernel (``engine/core/kernel.py``) is compiled: numba's JIT at the first call, and the
module numba's AOT compiler built ahead of time (``python -m engine.kernel_aot``, run by ``make install``).

Every compiled function lives in kernel.py itself (numba's on-disk cache is keyed by the file a function is
defined in, so a callee or a constant in another file could be cached stale); this module only compiles them.
The one exception, live trading's external fills (kernel_live.py, which calls kernel.py's functions), is
compiled without the on-disk cache, so it is never stale: at its first use in a process, when numba is on.

* ``jit`` marks a kernel function. Under ``TRADING_AGENT_JIT=0`` (or without numba) it is the function itself,
  run by CPython. Otherwise it is a ``_Deferred`` whose first call compiles the whole kernel (``compiled``), so
  importing the kernel never imports numba.
* ``load_aot``: the kernel's ``run_series`` compiled ahead of time into an extension module named after the hash
  of kernel.py (``aot_module_name``), so a module built from another version of the kernel is never found.
  Loading it takes milliseconds and no numba (against ~0.7 s and ~115 MB for importing numba and loading its
  cache), which is most of a backtest's start-up.
* ``borrowed``: an array without numba's reference count, for ``_run_series``'s loop (counting the arrays handed to
  the inlined kernel functions was 70 % of its time). Its numba side is defined here, outside the key of numba's
  cache: it copies an array's fields and nothing else, so it has no version to go stale.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_SOURCE = Path(__file__).with_name("kernel.py")


def _numba_wanted() -> bool:
    """Compile unless ``TRADING_AGENT_JIT=0`` or numba is missing (found without importing it: ~0.2 s)."""
    return os.environ.get("TRADING_AGENT_JIT", "1") != "0" and importlib.util.find_spec("numba") is not None


JITTED = _numba_wanted()
_SOURCES: dict[str, Callable[..., Any]] = {}


class _Deferred:
    """A kernel function before numba has compiled it: its first call compiles the whole kernel (from
    numba's on-disk cache after the first time), so importing the kernel never imports numba."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.py_func = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any) -> Any:
        return compiled(self.__name__)(*args)


_COMPILED: dict[str, Any] = {}


def compiled(name: str) -> Any:
    """numba's dispatcher of the kernel function ``name``, the whole kernel compiled at the first ask (and a kernel
    module imported later, kernel_live's, at its first)."""
    if name not in _COMPILED:
        from numba import njit

        if not _COMPILED:
            _register_borrowed()
        # all bound (in every kernel module's globals) before any compiles, so callees resolve to dispatchers;
        # inlined into their callers in numba's IR (the same operations in the same order: results to the last bit,
        # 1.3-1.7x faster)
        for fn_name, fn in _SOURCES.items():
            if fn_name not in _COMPILED:
                cache = Path(fn.__code__.co_filename).resolve() == KERNEL_SOURCE.resolve()
                _COMPILED[fn_name] = njit(cache=cache, inline="always")(fn)
        for fn in _SOURCES.values():
            names = fn.__globals__
            names.update({n: _COMPILED[n] for n in _COMPILED.keys() & names.keys()})
    return _COMPILED[name]


def borrowed(a: np.ndarray) -> np.ndarray:
    """``a`` itself; compiled, the same array without a reference count, for the kernel's own loops over a series.

    numba counts references to every array a kernel function is handed, and its pass that removes pairs of counts
    cannot see through the kernel's nested, inlined calls: two atomic operations per array per call, 70 % of
    ``run_series``'s time on 1 M candles. A borrowed array's counts are no-ops; whoever borrows keeps ``a`` alive
    for as long as the borrowed array is used (``run_series``: its caller holds every array it is given)."""
    return a


def _register_borrowed() -> None:
    """Teach numba ``borrowed``: an array struct copied field by field but for its meminfo and parent, both null."""
    from numba.core import types
    from numba.extending import intrinsic, overload
    from numba.np.arrayobj import populate_array

    def typer(typingctx: Any, a: Any) -> Any:
        if not isinstance(a, types.Array):
            return None

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            src = context.make_array(sig.args[0])(context, builder, value=args[0])
            out = context.make_array(sig.return_type)(context, builder)
            populate_array(out, data=src.data, shape=src.shape, strides=src.strides,  # type: ignore[no-untyped-call]
                           itemsize=src.itemsize, meminfo=None)
            return out._getvalue()

        return a(a), codegen

    without_count: Any = intrinsic(typer)

    def borrowed_impl(a):  # type: ignore[no-untyped-def]  # (numba compares its parameters to borrowed's, unannotated)
        if isinstance(a, types.Array):
            return lambda a: without_count(a)
        return None

    overload(borrowed)(borrowed_impl)


def jit(fn: Callable[..., Any]) -> Any:
    """Mark a kernel function for numba (compiled at first use); under CPython, the function itself."""
    _SOURCES[fn.__name__] = fn
    return _Deferred(fn) if JITTED else fn


def aot_module_name() -> str:
    """The name of the extension module built from this very kernel source."""
    digest = hashlib.sha256(KERNEL_SOURCE.read_bytes()).hexdigest()[:16]
    return f"_kernel_aot_{digest}"


def load_aot() -> Callable[..., int] | None:
    """The kernel's ``run_series`` compiled ahead of time for this source, or None (not built, or JIT off)."""
    name = f"{__package__}.{aot_module_name()}"
    if not JITTED or importlib.util.find_spec(name) is None:
        return None
    fn: Callable[..., int] = importlib.import_module(name).run_series
    return fn


# the types of ``kernel._run_series``'s arguments the module is compiled for (others go to numba's JIT)
AOT_SIGNATURE = ("i8(f8[::1], f8[:, ::1], f8[::1], i8, i8[::1], f8[::1], f8[::1], f8[::1], f8[::1], i8[::1], "
                 "f8[::1], f8[::1], b1[::1], f8[:, ::1], f8[::1], f8[:, ::1])")
_AOT_DTYPES = (np.float64, np.float64, np.float64, None, np.int64, np.float64, np.float64, np.float64, np.float64,
               np.int64, np.float64, np.float64, np.bool_, np.float64, np.float64, np.float64)
_AOT_RUN_SERIES = load_aot()
COMPILED_AHEAD = _AOT_RUN_SERIES is not None


def aot_runner(args: tuple[Any, ...]) -> Callable[..., int] | None:
    """The ahead-of-time ``run_series`` when it is built and ``args`` fit its signature, else None."""
    if _AOT_RUN_SERIES is not None and all(
            want is None or (isinstance(a, np.ndarray) and a.dtype == want and a.flags.c_contiguous)
            for a, want in zip(args, _AOT_DTYPES, strict=True)):
        return _AOT_RUN_SERIES
    return None


def series_runner(*args: Any) -> Callable[..., int]:
    """The kernel's ``_run_series`` for these arguments: compiled ahead of time when built and they fit its
    signature, else numba's JIT (or CPython under ``TRADING_AGENT_JIT=0``)."""
    source = _SOURCES["_run_series"]  # the kernel's, as its module holds it now (numba's dispatcher once compiled)
    runner: Callable[..., int] = aot_runner(args) or source.__globals__["_run_series"]
    return runner
