"""The engine trading on a real CatBoost model from the registry, and refusing broken model files.

Models are really trained (small) and really loaded from files; a broken file never stops the engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from config.settings import Settings, TradingConfig
from engine.app import build
from engine.core.clock import SimClock
from engine.core.model import NoModel
from engine.feeds.replay import ReplayFeed
from engine.models.catboost_model import CatBoostParams, CatBoostTradingModel
from engine.models.features import compute_features
from engine.models.labels import make_labels
from engine.models.registry import ModelRegistry
from tests.engine.helpers import real_candles

SYMBOL, STEP = "ETHBTC", 300_000


def _train(models_dir: Path) -> Path:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 3000)
    x = compute_features(candles)
    y = make_labels(candles.close, 6)
    keep = (y >= 0) & ~np.isnan(x).any(axis=1)
    model = CatBoostTradingModel(CatBoostParams(iterations=40, depth=4, thread_count=1), horizon=6, symbol=SYMBOL,
                                 timeframe="5m")
    model.fit(x[keep], y[keep])
    return model.save(models_dir / "eth")


def _config() -> TradingConfig:
    return TradingConfig.model_validate({"trading": {"symbols": [SYMBOL], "strategy": "model"},
                                         "signal_filters": {"min_confidence": 0.4}})


async def _run(tmp_path: Path, models_dir: Path, candles_from: int, n: int) -> tuple[object, int]:
    candles = real_candles("ETH_BTC-5m.csv")
    clock = SimClock(int(candles.ts[candles_from]))
    settings = Settings(models_dir=models_dir, sqlite_path=tmp_path / "agent.db")
    feed = ReplayFeed(candles, SYMBOL, "5m", clock, history=200)
    app = await build(settings, _config(), clock=clock, feeds={SYMBOL: feed}, poll_interval=3600)
    await app.engine.poll_once(SYMBOL)  # warm-up history
    stepped = 0
    for i in range(candles_from, candles_from + n):
        clock.set(int(candles.ts[i]) + STEP)
        stepped += await app.engine.poll_once(SYMBOL)
    model = app.engine.symbols[SYMBOL].model
    await app.store.close()
    return model, stepped


async def test_engine_trades_on_the_active_catboost_model(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    path = _train(models_dir)
    assert ModelRegistry(models_dir).activate(SYMBOL, path) is None

    model, stepped = await _run(tmp_path, models_dir, 3200, 150)

    assert stepped == 150
    assert not isinstance(model, NoModel)
    health = model.health()  # type: ignore[attr-defined]
    assert health and health[0].errors == 0


async def test_corrupt_model_is_refused_and_the_engine_keeps_running(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    path = _train(models_dir)
    assert ModelRegistry(models_dir).activate(SYMBOL, path) is None
    cbm = path / "model.cbm"
    data = bytearray(cbm.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cbm.write_bytes(bytes(data))

    model, stepped = await _run(tmp_path, models_dir, 3200, 40)

    assert isinstance(model, NoModel)
    assert "corrupt" in model.reason or "hash" in model.reason
    assert stepped == 40  # still deciding every candle: exits and risk keep working, no entries come from it
