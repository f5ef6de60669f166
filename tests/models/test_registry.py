from __future__ import annotations

import json
from pathlib import Path

from engine.core.types import Refusal
from engine.models.catboost_model import MODEL_FILE, CatBoostTradingModel
from engine.models.registry import ModelRegistry


def test_activate_and_load_active(model_copy: Path) -> None:
    reg = ModelRegistry(model_copy.parent)
    assert reg.load_active("ETH/BTC") == Refusal("no_active", f"no active model for ETH/BTC in {reg.active_path}")
    assert reg.activate("ETH/BTC", model_copy.name) is None
    assert json.loads(reg.active_path.read_text()) == {"ETH/BTC": model_copy.name}
    assert not list(model_copy.parent.glob("*.tmp"))
    model = reg.load_active("ETH/BTC")
    assert isinstance(model, CatBoostTradingModel) and model.name == "eth-btc-test"
    assert reg.models() == [model_copy]


def test_broken_active_model_is_a_refusal_not_a_crash(model_copy: Path) -> None:
    reg = ModelRegistry(model_copy.parent)
    assert reg.activate("ETH/BTC", model_copy) is None
    f = model_copy / MODEL_FILE
    f.write_bytes(f.read_bytes()[:100])
    refusal = reg.load_active("ETH/BTC")
    assert isinstance(refusal, Refusal) and refusal.code == "truncated"
    f.unlink()
    refusal = reg.load_active("ETH/BTC")
    assert isinstance(refusal, Refusal) and refusal.code == "missing"


def test_activate_refuses_a_bad_model_and_keeps_the_old_mapping(model_copy: Path, tmp_path: Path) -> None:
    reg = ModelRegistry(model_copy.parent)
    assert reg.activate("ETH/BTC", model_copy.name) is None
    refusal = reg.activate("ETH/BTC", tmp_path / "absent")
    assert isinstance(refusal, Refusal) and refusal.code == "missing"
    assert reg.active() == {"ETH/BTC": model_copy.name}


def test_corrupt_active_json_is_a_refusal(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    reg.active_path.write_text("[1, 2")
    refusal = reg.load_active("BTC/USDT")
    assert isinstance(refusal, Refusal) and refusal.code == "corrupt"
