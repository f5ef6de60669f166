"""Load ccxt's async support with only the exchange classes asked for.

``import ccxt.async_support`` runs two package ``__init__`` files that import every exchange class, sync
and async (~105 each): measured here for ccxt 4.5.90, 0.46-1.4 s and ~100 MB RSS. The agent needs one.

So the two packages are built from their own ``__init__`` source with only the per-exchange class imports
left out (found by parsing: an ``from ccxt[.async_support].ID import ID`` where ID is in the package's own
``exchanges`` list). Everything else they define (errors, ``Exchange``, ``Precise``, the ``exchanges``
list, the version) is there as ccxt wrote it, and a module ``__getattr__`` (PEP 562) imports an exchange's
class the first time it is named, so ``ccxt.async_support.okx`` and ``from ccxt.async_support import okx``
keep working for any code that uses them. If the source ever stops parsing this way, the plain import is
used (correct, only slower), and the log says so.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_PACKAGES = ("ccxt", "ccxt.async_support")


def _exchange_ids(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "exchanges"):
            value = ast.literal_eval(node.value)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
    raise ImportError("no exchanges list")


def _lean_package(name: str) -> types.ModuleType:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} not found")
    with open(spec.origin, encoding="utf-8") as fh:
        source = fh.read()
    tree = ast.parse(source, spec.origin)
    ids = set(_exchange_ids(tree))
    kept: list[ast.stmt] = []
    for node in tree.body:
        if (isinstance(node, ast.ImportFrom) and node.module is not None
                and node.module.rpartition(".")[0] == name and node.module.rpartition(".")[2] in ids):
            continue  # one exchange's class: imported on first use instead
        kept.append(node)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running: the kept imports import submodules of this package

    def __getattr__(attr: str) -> Any:  # PEP 562
        if attr in ids:
            cls = getattr(importlib.import_module(f"{name}.{attr}"), attr)
            setattr(module, attr, cls)
            return cls
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    module.__dict__["__getattr__"] = __getattr__
    try:
        exec(compile(ast.Module(body=kept, type_ignores=[]), spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def async_support() -> types.ModuleType:
    """``ccxt.async_support``, with exchange classes loaded on first use."""
    loaded = sys.modules.get("ccxt.async_support")
    if loaded is not None:
        return loaded
    try:
        if "ccxt" not in sys.modules:
            _lean_package("ccxt")
        module = _lean_package("ccxt.async_support")
        sys.modules["ccxt"].__dict__["async_support"] = module  # as a normal import sets the parent's attribute
        return module
    except (ImportError, SyntaxError, ValueError) as exc:  # ccxt changed its layout: the plain, slow import
        for name in _PACKAGES:
            sys.modules.pop(name, None)
        log.warning("ccxt_lean_import_failed", error=str(exc), fallback="import ccxt.async_support (all exchanges)")
        return importlib.import_module("ccxt.async_support")


def exchange_class(exchange_id: str) -> type[Any]:
    """The async ccxt class of ``exchange_id`` (a ccxt id), loading only it; KeyError for an unknown id."""
    package = async_support()
    if exchange_id not in package.exchanges:
        raise KeyError(exchange_id)
    cls: type[Any] = getattr(importlib.import_module(f"{package.__name__}.{exchange_id}"), exchange_id)
    # importing a submodule sets the package's attribute to the MODULE (okxus imports okx): put classes back,
    # as ccxt's own __init__ has them
    for name, value in list(vars(package).items()):
        if isinstance(value, types.ModuleType) and name in package.exchanges:
            setattr(package, name, getattr(value, name))
    return cls


def exchange_ids() -> list[str]:
    """Every exchange id this ccxt knows (without loading any exchange)."""
    return list(async_support().exchanges)
