"""The models directory: saved model folders plus ``active.json`` (symbol -> model folder).

``activate`` checks that the model loads and was trained on the symbol before it points the symbol at
it, and rewrites ``active.json`` atomically (temp file + ``os.replace``). ``load_active`` returns the model or a
``Refusal`` saying why not (no active model, missing, corrupt, truncated, mismatched features or
catboost version, unreadable); it never raises for those, so the engine keeps running without a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from engine.core.types import Refusal
from engine.models.catboost_model import META_FILE, CatBoostTradingModel, ModelLoadError, read_checked_metadata

log = structlog.get_logger("engine.models.registry")

ACTIVE_FILE = "active.json"


def plain_symbol(symbol: str) -> str:
    """``eth/btc``, ``ETH_BTC`` or ``ETH-BTC`` -> ``ETHBTC``: the form the engine trades (the trading config's)."""
    return "".join(c for c in symbol.upper() if c.isalnum())


def trained_symbols(model_symbol: str) -> list[str]:
    """The symbols in a model's metadata (``"BTC/USDT,ETH/USDT"`` for a model trained on several files)."""
    return [s.strip() for s in model_symbol.split(",") if s.strip()]


def symbol_problem(model_symbol: str, symbol: str) -> str | None:
    """Why a model trained on ``model_symbol`` does not fit ``symbol`` (None when it does, or when the model
    does not record its symbol)."""
    known = trained_symbols(model_symbol)
    if not known or plain_symbol(symbol) in {plain_symbol(s) for s in known}:
        return None
    return f"the model was trained on {', '.join(known)}, not {symbol}"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model folder of the registry, as ``trading-agent models list`` shows it."""

    model_id: str  # the folder name under the registry root
    path: Path
    meta: dict[str, Any]  # metadata.json as read ({} when it is unreadable)
    problem: str | None  # why the model cannot be loaded (the load checks), None when it passes them
    active_for: tuple[str, ...]  # symbols active.json points at it


class ModelRegistry:
    def __init__(self, root: Path = Path("models")) -> None:
        self.root = Path(root)

    @property
    def active_path(self) -> Path:
        return self.root / ACTIVE_FILE

    def _resolve(self, path: Path | str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def active(self) -> dict[str, str] | Refusal:
        """The symbol -> model folder mapping ({} when none was activated), or why it is unreadable."""
        if not self.active_path.exists():
            return {}
        try:
            data = json.loads(self.active_path.read_text())
        except (OSError, ValueError) as exc:
            return Refusal("corrupt", f"{self.active_path} is unreadable: {exc}")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return Refusal("corrupt", f"{self.active_path} is not a symbol -> path mapping")
        return {str(k): v for k, v in data.items()}

    def models(self) -> list[Path]:
        """Model folders under the root (folders holding a metadata file)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if (p / META_FILE).is_file())

    def entries(self) -> list[ModelEntry]:
        """Every model folder with its metadata, whether it passes the load checks, and where it is active."""
        active = self.active()
        mapping = {} if isinstance(active, Refusal) else active
        out = []
        for path in self.models():
            try:
                meta: dict[str, Any] = read_checked_metadata(path)
                problem = None
            except ModelLoadError as exc:
                meta, problem = _raw_metadata(path), str(exc)
            users = tuple(sorted(s for s, p in mapping.items() if self._resolve(p).resolve() == path.resolve()))
            out.append(ModelEntry(path.name, path, meta, problem, users))
        return out

    def find(self, model_id: str) -> Path | Refusal:
        """The folder of the model ``model_id`` (its folder name, as listed), or why there is none."""
        known = self.models()
        found = next((p for p in known if p.name == model_id), None)
        if found is not None:
            return found
        names = ", ".join(p.name for p in known) or "none"
        return Refusal("unknown_model", f"no model {model_id!r} in {self.root} (models there: {names})")

    def activate(self, symbol: str, path: Path | str) -> Refusal | None:
        """Make ``path`` the active model of ``symbol`` if it loads and was trained on ``symbol``; else a
        Refusal and nothing changes."""
        target = self._resolve(path)
        try:
            model = CatBoostTradingModel.load(target)
        except ModelLoadError as exc:
            return Refusal(exc.check, str(exc))
        problem = symbol_problem(model.symbol, symbol)
        if problem:
            return Refusal("symbol", f"{target.name} does not fit {symbol}: {problem}")
        current = self.active()
        if isinstance(current, Refusal):
            current = {}  # a corrupt mapping is replaced, not merged
        stored = str(target.relative_to(self.root)) if target.is_relative_to(self.root) else str(target)
        current[symbol] = stored
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.active_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(current, indent=2, sort_keys=True))
        os.replace(tmp, self.active_path)
        log.info("model_activated", symbol=symbol, path=stored)
        return None

    def deactivate(self, symbol: str) -> None:
        current = self.active()
        if isinstance(current, Refusal) or symbol not in current:
            return
        del current[symbol]
        tmp = self.active_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(current, indent=2, sort_keys=True))
        os.replace(tmp, self.active_path)

    def load_active(self, symbol: str) -> CatBoostTradingModel | Refusal:
        """The active model of ``symbol``, or a Refusal (code = the failed check) with the reason."""
        current = self.active()
        if isinstance(current, Refusal):
            return current
        if symbol not in current:
            return Refusal("no_active", f"no active model for {symbol} in {self.active_path}")
        try:
            return CatBoostTradingModel.load(self._resolve(current[symbol]))
        except ModelLoadError as exc:
            log.warning("active_model_refused", symbol=symbol, check=exc.check, reason=str(exc))
            return Refusal(exc.check, str(exc))


def _raw_metadata(path: Path) -> dict[str, Any]:
    """metadata.json without the load checks (to describe a model that fails them); {} when unreadable."""
    try:
        data = json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
