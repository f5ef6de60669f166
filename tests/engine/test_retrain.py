"""/retrain's engine side: a real walk-forward retrain in a worker thread while the loop keeps its pace,
then an atomic swap to the new model, which is really loaded from its files."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from config.settings import Settings, TradingConfig
from engine.app import EngineApp, build
from engine.core.clock import SimClock
from engine.core.types import Refusal
from engine.feeds.replay import ReplayFeed
from engine.models.catboost_model import META_FILE
from engine.models.registry import ModelRegistry
from engine.retrain import MIN_CANDLES, RetrainResult
from tests.engine.helpers import real_candles, wait_until
from tests.sample import sample_path

SYMBOL = "ETHBTC"


async def test_retrain_keeps_event_loop_lag_under_100ms_and_swaps_the_model(tmp_path: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv")
    clock = SimClock(int(candles.ts[2000]))
    settings = Settings(models_dir=tmp_path / "models", sqlite_path=tmp_path / "agent.db")
    config = TradingConfig.model_validate({"trading": {"symbols": [SYMBOL], "strategy": "model"},
                                           "feed": {"history": 2000}, "paper": {"fee_bps": 25.0}})
    feed = ReplayFeed(candles, SYMBOL, "5m", clock, history=2000)
    app = await build(settings, config, clock=clock, feeds={SYMBOL: feed}, poll_interval=3600)
    await app.engine.poll_once(SYMBOL)  # 2000 candles of history: what the retrain learns from
    before = app.engine.symbols[SYMBOL].model

    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - t - 0.01)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    result = await app.facade.retrain(SYMBOL)
    seconds = time.perf_counter() - t0
    stop.set()
    await tick
    await app.store.close()

    assert isinstance(result, RetrainResult), result
    assert seconds > 0.2 and len(lags) > 10  # it really trained while the loop ran
    assert max(lags) < 0.100, f"event loop lag {max(lags) * 1000:.0f} ms during retrain"
    assert "auc" in str(result.out_of_sample).lower()
    assert app.engine.symbols[SYMBOL].model is not before
    active = ModelRegistry(settings.models_dir).active()
    assert isinstance(active, dict) and Path(active[SYMBOL]).name == result.path.name
    # the model learned the fee the agent pays (labels, fold backtests), not a constant
    assert json.loads((result.path / META_FILE).read_text())["fee_bps"] == 25.0


async def test_retrain_is_refused_for_the_rule_strategy(tmp_path: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv")
    clock = SimClock(int(candles.ts[300]))
    settings = Settings(models_dir=tmp_path / "models", sqlite_path=tmp_path / "agent.db")
    config = TradingConfig.model_validate({"trading": {"symbols": [SYMBOL]}})
    app = await build(settings, config, clock=clock, feeds={SYMBOL: ReplayFeed(candles, SYMBOL, "5m", clock)})
    result = await app.facade.retrain(SYMBOL)
    await app.store.close()
    assert isinstance(result, Refusal) and result.code == "strategy"


async def _model_app(tmp_path: Path, clock: SimClock, history: int | None) -> EngineApp:
    """The worker's own wiring (build_feeds: a replay feed of the sample file) with strategy = "model"."""
    feed: dict[str, object] = {"source": "replay", "replay_files": [str(sample_path("ETH_BTC-5m.csv"))]}
    if history is not None:
        feed["history"] = history
    config = TradingConfig.model_validate({"trading": {"symbols": [SYMBOL], "strategy": "model"}, "feed": feed})
    settings = Settings(models_dir=tmp_path / "models", sqlite_path=tmp_path / "agent.db")
    return await build(settings, config, clock=clock, poll_interval=3600)


async def test_retrain_works_with_the_default_history_and_after_a_restart(tmp_path: Path) -> None:
    """With the default feed.history a fresh engine holds enough candles to retrain at once, and so does
    a restarted one: the restart refills the history, not only the model window."""
    candles = real_candles("ETH_BTC-5m.csv")
    clock = SimClock(int(candles.ts[3000]))
    app = await _model_app(tmp_path, clock, None)
    assert app.config.feed.history >= MIN_CANDLES
    await app.engine.poll_once(SYMBOL)
    assert len(app.engine.symbols[SYMBOL].recent) == app.config.feed.history
    assert app.facade.check_retrain(SYMBOL) == SYMBOL
    await app.store.close()

    clock.set(int(candles.ts[3010]))  # ten candles later, a new process on the same database
    restarted = await _model_app(tmp_path, clock, None)
    await restarted.engine.start()  # its first poll: the refill, then the ten missed candles
    await wait_until(lambda: restarted.engine.core.last_candle_ts.get(SYMBOL) == int(candles.ts[3009]))
    await restarted.engine.stop()
    held = list(restarted.engine.symbols[SYMBOL].recent)
    await restarted.store.close()
    assert restarted.engine.restored
    assert held[-1].ts == int(candles.ts[3009]) and len(held) == restarted.config.feed.history + 10
    assert restarted.facade.check_retrain(SYMBOL) == SYMBOL


async def test_retrain_with_too_little_history_is_refused_before_confirmation_with_the_reason(tmp_path: Path) -> None:
    candles = real_candles("ETH_BTC-5m.csv")
    app = await _model_app(tmp_path, SimClock(int(candles.ts[3000])), 500)
    await app.engine.poll_once(SYMBOL)
    refusal = app.facade.check_retrain(SYMBOL.lower())
    await app.store.close()
    assert isinstance(refusal, Refusal) and refusal.code == "data"
    assert refusal.reason == (f"{SYMBOL}: 500 candles held; retraining needs at least {MIN_CANDLES} "
                              f"(raise feed.history to {MIN_CANDLES} or more, or wait for 100 more candles)")
