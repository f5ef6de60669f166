"""The exchange's rules in the live engine: the same candles through the live loop (``ReplayFeed``, a real SQLite
store) and through the backtest with the same ``MarketRules`` make identical trades; operator orders that break a
rule are refused before anything is stored; a fill the rules stop is marked cancelled in the store with its
reason; dust left by a sell survives a restart and shows in the balance, not in the positions; and the rules of
the new start apply to the restored state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backtest import BacktestConfig, run_backtest
from engine.core.clock import SimClock
from engine.core.model import CandleArrays, SmaCrossModel
from engine.core.risk import Costs, RiskLimits, SignalFilters
from engine.core.rules import MarketRules
from engine.core.trading import TradingCore
from engine.core.types import OrderRequest, Refusal
from engine.events import EventBus, OrderCancelled
from engine.facade import EngineFacade
from engine.feeds.replay import ReplayFeed
from engine.loop import LiveEngine
from engine.store.repo import Store
from engine.views import DustView
from tests.engine.helpers import real_candles

TF, STEP = "5m", 300_000
PROTECTIVE = RiskLimits(position_fraction=0.5, max_position_fraction=0.6, max_total_exposure=1.0, stop_loss_pct=0.02,
                        take_profit_pct=0.04, trailing_stop_pct=0.015, max_daily_loss_pct=0.03, max_drawdown_pct=0.10)
COSTS = Costs(fee_bps=10, slippage_bps=5)
FILTERS = SignalFilters(min_confidence=0.6, cooldown_ms=30 * 60_000)
# ETH/BTC at 0.083-0.101 BTC: a step of 0.1 ETH (~0.009 BTC), entries of about 0.49 BTC against a minimum order of
# 0.49 BTC, and a tick that slippage is rounded to
ETHBTC = MarketRules("ETHBTC", amount_step=0.1, price_tick=0.00001, min_amount=0.5, min_notional=0.49, base="ETH",
                     quote="BTC")
BTC = MarketRules("BTCUSDT", amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_notional=5.0, base="BTC",
                  quote="USDT")


async def live_trades(tmp_path: Path, candles: CandleArrays, rules: MarketRules, limits: RiskLimits) -> tuple[
        list[object], float]:
    """Every candle through the live loop, polled as it closes; the stored trades (oldest first) and final equity."""
    symbol = rules.symbol
    clock = SimClock(int(candles.ts[0]))  # nothing closed yet: every candle is traded live
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        core = TradingCore(limits=limits, costs=COSTS, filters=FILTERS, starting_cash=1.0, clock=clock)
        engine = LiveEngine(core=core, store=store, feeds={symbol: ReplayFeed(candles, symbol, TF, clock)},
                            models={symbol: SmaCrossModel(10, 30)}, clock=clock, bus=EventBus(), timeframe=TF,
                            poll_interval=3600, stale_after=10_000, rules={symbol: rules})
        await engine.poll_once(symbol)
        for i in range(len(candles)):
            clock.set(int(candles.ts[i]) + STEP)
            assert await engine.poll_once(symbol) == 1
        trades = await store.trades(limit=10_000)
    finally:
        await store.close()
    trades.reverse()
    return list(trades), core.portfolio.equity()


@pytest.mark.parametrize("limits", [PROTECTIVE, RiskLimits(1, 1, 1, 0, 0, 0, 0, 0)], ids=["protective", "all-in"])
async def test_the_live_loop_and_the_backtest_trade_identically_under_the_same_rules(tmp_path: Path,
                                                                                    limits: RiskLimits) -> None:
    candles = real_candles("ETH_BTC-5m.csv").slice(0, 1500)
    config = BacktestConfig(symbol="ETHBTC", cash=1.0, limits=limits, costs=COSTS, filters=FILTERS, rules=ETHBTC)
    expected = run_backtest(candles, SmaCrossModel(10, 30), config)
    free = run_backtest(candles, SmaCrossModel(10, 30), BacktestConfig(
        symbol="ETHBTC", cash=1.0, limits=limits, costs=COSTS, filters=FILTERS))
    assert expected.trades and expected.trades != free.trades  # the rules bite
    assert all(round(t.quantity * 10) == pytest.approx(t.quantity * 10, abs=1e-9) for t in expected.trades)

    trades, equity = await live_trades(tmp_path, candles, ETHBTC, limits)
    assert trades == expected.trades
    assert np.isclose(equity, expected.final_equity, rtol=0, atol=1e-12)


def flat(n: int, price: float = 30_000.0, start: int = 1_699_999_800_000) -> CandleArrays:
    ts = start + np.arange(n, dtype=np.int64) * STEP
    p = np.full(n, price)
    return CandleArrays(ts, p.copy(), p.copy(), p.copy(), p.copy(), np.ones(n))


class Rig:
    """A live engine on flat BTCUSDT candles (no automatic trades) and a SQLite store, stepped by hand."""

    def __init__(self, store: Store, clock: SimClock, candles: CandleArrays, rules: MarketRules) -> None:
        self.store, self.clock, self.candles = store, clock, candles
        core = TradingCore(limits=RiskLimits(0.2, 1, 1, 0, 0, 0, 0, 0), costs=Costs(fee_bps=10),
                           filters=SignalFilters(0.6, 0), starting_cash=10_000.0, clock=clock)
        self.engine = LiveEngine(core=core, store=store, feeds={"BTCUSDT": ReplayFeed(candles, "BTCUSDT", TF, clock)},
                                 models={"BTCUSDT": SmaCrossModel(10, 30)}, clock=clock, bus=EventBus(),
                                 timeframe=TF, poll_interval=3600, stale_after=10_000, rules={"BTCUSDT": rules})
        self.facade = EngineFacade(self.engine, records=store, strategy="test")

    async def candle(self) -> None:
        self.clock.advance(STEP)
        await self.engine.poll_once("BTCUSDT")


async def test_dust_survives_a_restart_shows_in_the_balance_and_the_new_rules_apply(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    candles = flat(200)
    clock = SimClock(int(candles.ts[50]))
    store = await Store.open(url)
    try:
        rig = Rig(store, clock, candles, BTC)
        await rig.engine.start()
        await rig.candle()
        commands = rig.engine.commands
        assert await commands.submit_order("BTCUSDT", "buy", 1.0) == Refusal(
            "below_minimum", "1 USDT is below the exchange's minimum order of 5 USDT")
        assert await commands.submit_order("BTCUSDT", "buy", None, quantity=0.0000001) == Refusal(
            "precision", "0.0000001 BTC has more decimals than BTCUSDT allows (step 0.00001)")
        assert await store.pending_orders() == []  # refused before anything was placed
        assert isinstance(await commands.submit_order("BTCUSDT", "buy", 1_000.0), OrderRequest)
        await rig.candle()
        assert rig.facade.positions()[0].quantity == 0.0333
        assert isinstance(await commands.submit_order("BTCUSDT", "sell", 998.0), OrderRequest)
        await rig.candle()
        assert rig.facade.positions() == () and rig.facade.status().open_positions == 0
        balance = rig.facade.balance()
        assert balance.dust == (DustView("BTCUSDT", "BTC", 0.00004, 30_000.0, 0.00004 * 30_000.0, "USDT"),)
        assert balance.equity == pytest.approx(balance.cash + 1.2, rel=1e-12)
        assert balance.realized_pnl + balance.unrealized_pnl == pytest.approx(balance.equity - 10_000.0, abs=1e-9)
        await rig.engine.stop()
    finally:
        await store.close()

    # a restart: a new core restores the dust from the store; today's rules (a higher minimum) apply
    stricter = MarketRules("BTCUSDT", amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_notional=10.0,
                           base="BTC", quote="USDT")
    store = await Store.open(url)
    try:
        rig2 = Rig(store, clock, candles, stricter)
        await rig2.engine.start()
        assert rig2.engine.restored
        assert rig2.facade.balance().dust == balance.dust and rig2.facade.positions() == ()
        assert rig2.facade.balance().equity == balance.equity
        assert rig2.engine.core.rules_for("BTCUSDT") == stricter
        assert await rig2.engine.commands.submit_order("BTCUSDT", "buy", 6.0) == Refusal(
            "below_minimum", "6 USDT is below the exchange's minimum order of 10 USDT")
        # the next buy takes the dust into its position
        assert isinstance(await rig2.engine.commands.submit_order("BTCUSDT", "buy", 100.0), OrderRequest)
        await rig2.candle()
        (position,) = rig2.facade.positions()
        assert position.quantity == 0.00337 and rig2.facade.balance().dust == ()
        await rig2.engine.stop()
    finally:
        await store.close()


async def test_a_fill_the_rules_stop_is_cancelled_in_the_store_with_its_reason(tmp_path: Path) -> None:
    candles = flat(200)
    candles.open[52:] = candles.high[52:] = candles.low[52:] = candles.close[52:] = 20_000.0  # a drop at candle 52
    clock = SimClock(int(candles.ts[50]))
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        rig = Rig(store, clock, candles, BTC)
        await rig.engine.start()
        events: list[object] = []
        rig.engine.bus.subscribe(events.append)
        await rig.candle()  # candle 50 closes
        await rig.engine.commands.submit_order("BTCUSDT", "buy", 40.0)
        await rig.candle()  # 51: the buy fills at 30,000
        sell = await rig.engine.commands.submit_order("BTCUSDT", "sell", None, quantity=0.0002)  # 6 USDT now
        assert isinstance(sell, OrderRequest)
        await rig.candle()  # 52 opens at 20,000: 0.0002 BTC is 4 USDT
        assert await store.order_status(sell.order_id) == "cancelled"
        cancelled = [e for e in events if isinstance(e, OrderCancelled)]
        assert [(e.order_id, e.by, e.reason) for e in cancelled] == [
            (sell.order_id, "exchange rules",
             "0.0002 BTC at 20000 is 4 USDT, below the exchange's minimum order of 5 USDT")]
        assert rig.facade.positions()[0].quantity == 0.00133  # nothing sold
        await rig.engine.stop()
    finally:
        await store.close()


def test_rules_are_for_the_symbols_the_engine_trades() -> None:
    clock = SimClock(0)
    core = TradingCore(limits=RiskLimits(), costs=Costs(), filters=SignalFilters(), starting_cash=1.0, clock=clock)
    with pytest.raises(ValueError, match="rules for BTC/USDT, which this engine does not trade"):
        LiveEngine(core=core, store=None, feeds={"BTCUSDT": ReplayFeed(flat(10), "BTCUSDT", TF, clock)},  # type: ignore[arg-type]
                   models={"BTCUSDT": SmaCrossModel(10, 30)}, clock=clock, bus=EventBus(), timeframe=TF,
                   poll_interval=1, rules={"BTC/USDT": BTC})
