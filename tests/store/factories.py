"""Builders for store tests: plain values from engine.core.types, with sensible defaults."""

from __future__ import annotations

from collections.abc import Sequence

from engine.core.types import Fill, OrderRequest, PositionView, Side, SignalRecord, StepRecord, Trade, trade_pnl_pct
from engine.events import EngineEvent, OrderFilled, PositionClosed

SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000
MINUTE = 60_000


def order(order_id: str, side: Side = Side.BUY, ts: int = T0, symbol: str = SYMBOL) -> OrderRequest:
    return OrderRequest(order_id=order_id, symbol=symbol, side=side, reason="signal", decided_ts=ts, fraction=0.5)


def fill(
    order_id: str, side: Side = Side.BUY, qty: float = 0.1, price: float = 30_000.0, fee: float = 3.0,
    ts: int = T0 + MINUTE, symbol: str = SYMBOL,
) -> Fill:  # fmt: skip
    return Fill(order_id, symbol, side, qty, price, fee, ts, "signal")


def trade(exit_time: int, pnl: float = 10.0, symbol: str = SYMBOL) -> Trade:
    return Trade(symbol, "long", exit_time - 10 * MINUTE, exit_time, 30_000.0, 30_100.0, 0.1, 6.0, pnl, "signal",
                 trade_pnl_pct(pnl, 30_000.0, 0.1, 3.0))


def position(symbol: str = SYMBOL, qty: float = 0.1, mark: float = 30_050.0) -> PositionView:
    return PositionView(symbol, qty, 30_000.0, T0, mark, (mark - 30_000.0) * qty, 29_000.0, 32_000.0, None)


def filled_event(f: Fill) -> OrderFilled:
    return OrderFilled(ts=f.ts, order_id=f.order_id, symbol=f.symbol, side=str(f.side), quantity=f.quantity,
                       price=f.price, fee=f.fee, reason=f.reason)  # fmt: skip


def closed_event(ts: int, pnl: float = 10.0) -> PositionClosed:
    return PositionClosed(ts=ts, symbol=SYMBOL, quantity=0.1, entry_price=30_000.0, exit_price=30_100.0,
                          pnl=pnl, reason="signal")  # fmt: skip


def step(
    candle_ts: int | None = T0,
    *,
    symbol: str | None = SYMBOL,
    orders: Sequence[OrderRequest] = (),
    fills: Sequence[Fill] = (),
    trades: Sequence[Trade] = (),
    events: Sequence[EngineEvent | object] = (),
    positions: Sequence[PositionView] = (),
    cash: float = 10_000.0,
    equity: float | None = None,
    signal: SignalRecord | None = None,
    core_state: dict[str, object] | None = None,
    now_ms: int | None = None,
) -> StepRecord:
    return StepRecord(
        symbol=symbol,
        candle_ts=candle_ts,
        now_ms=now_ms if now_ms is not None else (candle_ts or T0) + MINUTE,
        orders=tuple(orders),
        fills=tuple(fills),
        trades=tuple(trades),
        events=tuple(events),
        signal=signal,
        equity=equity if equity is not None else cash,
        cash=cash,
        positions=tuple(positions),
        core_state=core_state if core_state is not None else {"candle_ts": candle_ts},
    )
