"""The models directory: saved model folders plus ``active.json`` (symbol -> model folder).

``activate`` checks that the model loads before it points a symbol at it and rewrites
``active.json`` atomically (temp file + ``os.replace``). ``load_active`` returns the model or a
``Refusal`` saying why not (no active model, missing, corrupt, truncated, mismatched features or
catboost version, unreadable); it never raises for those, so the engine keeps running without a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import structlog

from engine.core.types import Refusal
from engine.models.catboost_model import META_FILE, CatBoostTradingModel, ModelLoadError

log = structlog.get_logger("engine.models.registry")

ACTIVE_FILE = "active.json"


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

    def activate(self, symbol: str, path: Path | str) -> Refusal | None:
        """Make ``path`` the active model of ``symbol`` if it loads; else a Refusal and nothing changes."""
        target = self._resolve(path)
        try:
            CatBoostTradingModel.load(target)
        except ModelLoadError as exc:
            return Refusal(exc.check, str(exc))
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
