"""The HTTP API's request and response bodies (Pydantic): each response is a view the engine's facade computed
(``engine/views.py``), field for field, read with ``from_attributes``; nothing here computes a figure.

Times are integer milliseconds since the Unix epoch (UTC), money in the quote currency, fractions as fractions
(0.05 is 5 %), as the engine keeps them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Out(BaseModel):
    """A response body, read from the facade's frozen dataclasses."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class In(BaseModel):
    """A request body: unknown fields are refused (a typo is a 422, not silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorOut(BaseModel):
    """Every error: a stable code and one line for a person."""

    error: str = Field(examples=["paused"])
    detail: str = Field(examples=["trading is paused"])


# ---------------------------------------------------------------- reads


class SymbolStatusOut(Out):
    symbol: str
    last_candle_ts: int | None
    last_price: float | None
    stale: bool
    position_qty: float
    synthetic: bool
    price_source: str
    price_age_ms: int | None


class StatusOut(Out):
    mode: str
    paused: bool
    risk_state: str
    risk_reason: str
    equity: float
    cash: float
    open_positions: int
    started_ms: int
    now_ms: int
    strategy: str
    timeframe: str
    symbols: list[SymbolStatusOut]


class DustOut(Out):
    symbol: str
    asset: str
    quantity: float
    mark_price: float
    value: float
    quote: str


class BalanceOut(Out):
    mode: str
    cash: float
    equity: float
    exposure: float
    starting_cash: float
    realized_pnl: float
    unrealized_pnl: float
    fees_paid: float
    total_return: float
    now_ms: int
    dust: list[DustOut]


class PositionOut(Out):
    symbol: str
    quantity: float
    avg_price: float
    entry_ts: int
    mark_price: float
    unrealized_pnl: float
    stop_price: float | None
    target_price: float | None
    trail_price: float | None


class PositionsOut(BaseModel):
    mode: str
    positions: list[PositionOut]


class TradeOut(Out):
    symbol: str
    side: str
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    quantity: float
    fee: float
    pnl: float
    pnl_pct: float
    exit_reason: str
    entry_tag: str | None
    exit_tag: str | None


class TradesOut(BaseModel):
    """One page of closed trades, newest first."""

    items: list[TradeOut]
    total: int
    offset: int
    limit: int


class PendingOrderOut(Out):
    order_id: str
    symbol: str
    side: str
    reason: str
    decided_ts: int
    quantity: float | None
    notional: float | None
    fraction: float | None
    cancellable: bool


class ProtectiveOrderOut(Out):
    order_id: str
    symbol: str
    kind: str
    level: float
    quantity: float
    mark_price: float


class OrdersOut(Out):
    pending: list[PendingOrderOut]
    protective: list[ProtectiveOrderOut]
    now_ms: int


class PnlOut(Out):
    period: str
    start_ms: int
    end_ms: int
    start_equity: float
    end_equity: float
    pnl: float
    pnl_pct: float
    trades: int
    wins: int
    fees: float


class DayOut(Out):
    day: str
    end_equity: float
    pnl: float
    pnl_pct: float
    trades: int


class DailyOut(BaseModel):
    days: list[DayOut]


class PerformanceRowOut(BaseModel):
    """Results of a group of closed trades: ``kind`` "symbol", or "entry" / "exit" (by the strategy's tag, an
    untagged exit by its reason); ``name`` the symbol or the tag."""

    kind: str
    name: str
    trades: int
    wins: int
    win_rate: float
    pnl: float
    fees: float
    avg_pnl_pct: float | None
    best_pnl_pct: float | None
    worst_pnl_pct: float | None


class PerformanceOut(BaseModel):
    by: Literal["symbol", "tags"]
    items: list[PerformanceRowOut]


class RiskOut(BaseModel):
    limits: dict[str, float]


class SignalRecordOut(Out):
    ts: int
    action: int
    confidence: float
    outcome: str


class SignalOut(Out):
    symbol: str
    model: str
    last: SignalRecordOut | None
    would_trade: bool
    side: str
    reasons: list[str]
    position_qty: float
    now_ms: int


class SignalsOut(BaseModel):
    signals: list[SignalOut]


class ParamOut(Out):
    name: str
    value: Any
    source: str
    allowed: str


class StopOut(Out):
    name: str
    value: float
    source: str


class StrategyOut(Out):
    spec: str
    name: str
    kind: str
    params: list[ParamOut]
    stops: list[StopOut]
    timeframe: str | None
    startup_candles: int
    chosen_by: str
    chosen_ts: int | None
    lookahead: str


class ModelHealthOut(Out):
    name: str
    healthy: bool
    reason: str
    p99_ms: float | None
    psi: float | None


class ModelOut(Out):
    symbol: str
    name: str
    metadata: dict[str, Any]
    health: list[ModelHealthOut]


class ModelsOut(BaseModel):
    models: list[ModelOut]


class HealthOut(BaseModel):
    """No figures: whether the agent is healthy (the unauthenticated probe)."""

    ok: bool


class HealthDetailsOut(Out):
    ok: bool
    loop_lag_ms: float
    last_candle_age_s: dict[str, float | None]
    stale: list[str]
    db_latency_ms: float | None
    outbox_backlog: int | None
    rss_mb: float
    uptime_s: float
    decision_p99_ms: float | None
    models: list[ModelHealthOut]


class EquitySeriesOut(Out):
    """The equity curve as numbers (what ``charts/equity.png`` draws): ``ts[i]``, ``equity[i]``, and the drawdown
    from the running peak as a fraction."""

    ts: list[int]
    equity: list[float]
    drawdown: list[float]


class OpenEntryOut(BaseModel):
    ts: int
    price: float


class PriceSeriesOut(BaseModel):
    """The last closes of a symbol with the agent's closed trades over them and the open position's entry (what
    ``charts/price/{symbol}.png`` draws)."""

    symbol: str
    synthetic: bool
    ts: list[int]
    close: list[float]
    trades: list[TradeOut]
    open_entry: OpenEntryOut | None


# ---------------------------------------------------------------- actions


class TradeIn(In):
    """An operator's market order, filled at the next candle's open: ``amount`` in the quote currency (a buy needs
    one; a sell without one sells the whole position). ``confidence`` (0-1) is kept with the request's answer:
    an operator's order is not bound by the signal filters, as in the chat."""

    symbol: str = Field(min_length=1, max_length=32, examples=["BTCUSDT"])
    side: str = Field(min_length=1, max_length=8, examples=["buy"])
    amount: float | None = Field(None, allow_inf_nan=False, examples=[250.0])
    confidence: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)

    @field_validator("side")
    @classmethod
    def _side(cls, value: str) -> str:
        return value.strip().lower()  # "BUY", "Sell": the engine checks what is left


class RiskIn(In):
    key: str = Field(min_length=1, max_length=64, examples=["stop_loss_pct"])
    value: float = Field(allow_inf_nan=False, examples=[0.05])


class OrderAckOut(Out):
    order_id: str
    symbol: str
    side: str
    amount: float | None
    quantity: float | None
    paper: bool
    note: str


class OrdersPlacedOut(BaseModel):
    """Orders accepted; each fills at its symbol's next candle open (``GET orders`` lists them until then)."""

    orders: list[OrderAckOut]
    confidence: float | None = None


class SwitchOut(BaseModel):
    """Pause or resume: the state after, and whether this request changed it."""

    paused: bool
    risk_state: str
    changed: bool


class CancelledOut(BaseModel):
    cancelled: PendingOrderOut
