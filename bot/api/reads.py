"""The reads, one per read command of the chat, each the facade's view as JSON (a viewer's token suffices);
``health`` answers anyone, with no figures."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from bot.api.auth import Viewer
from bot.api.context import Ctx
from bot.api.errors import ApiError, refused
from bot.api.models import (
    BalanceOut,
    DailyOut,
    DayOut,
    EquitySeriesOut,
    ErrorOut,
    HealthDetailsOut,
    HealthOut,
    ModelOut,
    ModelsOut,
    OpenEntryOut,
    OrdersOut,
    PerformanceOut,
    PerformanceRowOut,
    PnlOut,
    PositionOut,
    PositionsOut,
    PriceSeriesOut,
    RiskOut,
    SignalOut,
    SignalsOut,
    StatusOut,
    StrategyOut,
    TradeOut,
    TradesOut,
)
from bot.handlers.charts import DEFAULT_CANDLES, MAX_CANDLES, MIN_CANDLES
from engine.core.types import Refusal

MAX_TRADES = 200  # per page, as /trades
MAX_DAYS = 31  # as /daily
ERRORS: dict[int | str, dict[str, object]] = {401: {"model": ErrorOut}, 429: {"model": ErrorOut}}
Symbol = Annotated[str, Path(min_length=1, max_length=32, examples=["BTCUSDT"])]

router = APIRouter(tags=["reads"], responses=ERRORS)
public = APIRouter(tags=["health"])


@public.get("/health", response_model=HealthOut)
async def health(context: Ctx) -> HealthOut:
    """Whether the agent is healthy (feeds fresh, models healthy); no token needed, no figures."""
    return HealthOut(ok=(await context.facade.health()).ok)


@router.get("/health/details", response_model=HealthDetailsOut)
async def health_details(_: Viewer, context: Ctx) -> HealthDetailsOut:
    """Loop lag, database latency, feeds, models, memory (the chat's /health)."""
    return HealthDetailsOut.model_validate(await context.facade.health())


@router.get("/status", response_model=StatusOut)
async def status(_: Viewer, context: Ctx) -> StatusOut:
    """State, equity and the latest price of every symbol (/status)."""
    return StatusOut.model_validate(context.facade.status())


@router.get("/balance", response_model=BalanceOut)
async def balance(_: Viewer, context: Ctx) -> BalanceOut:
    """Cash, equity, PnL and fees (/balance)."""
    return BalanceOut.model_validate(context.facade.balance())


@router.get("/positions", response_model=PositionsOut)
async def positions(_: Viewer, context: Ctx) -> PositionsOut:
    """Open positions with their marks and protective levels (/positions)."""
    facade = context.facade
    return PositionsOut(mode=facade.mode, positions=[PositionOut.model_validate(p) for p in facade.positions()])


@router.get("/trades", response_model=TradesOut)
async def trades(_: Viewer, context: Ctx, limit: Annotated[int, Query(ge=1, le=MAX_TRADES)] = 10,
                 offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> TradesOut:
    """Closed trades, newest first, a page at a time (/trades)."""
    page = await context.facade.trades(limit, offset)
    return TradesOut(items=[TradeOut.model_validate(t) for t in page.items], total=page.total, offset=page.offset,
                     limit=limit)


@router.get("/orders", response_model=OrdersOut)
async def orders(_: Viewer, context: Ctx) -> OrdersOut:
    """Orders waiting for the next candle's open, and each open position's protective exits (/orders)."""
    return OrdersOut.model_validate(context.facade.orders())


@router.get("/pnl", response_model=PnlOut)
async def pnl(_: Viewer, context: Ctx,
              period: Literal["day", "week", "month", "all"] = "day") -> PnlOut:
    """Profit and loss of the current UTC day, week, month, or since the start (/pnl)."""
    return PnlOut.model_validate(await context.facade.pnl(period))


@router.get("/daily", response_model=DailyOut)
async def daily(_: Viewer, context: Ctx, days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7) -> DailyOut:
    """PnL of each of the last ``days`` UTC days, newest first (/daily)."""
    return DailyOut(days=[DayOut.model_validate(d) for d in await context.facade.daily(days)])


@router.get("/performance", response_model=PerformanceOut)
async def performance(_: Viewer, context: Ctx, by: Literal["symbol", "tags"] = "symbol") -> PerformanceOut:
    """Results of the closed trades by symbol, or by the strategy's entry and exit tags (/performance [tags])."""
    facade = context.facade
    if by == "tags":
        rows = [_row(p.kind, p.tag, p) for p in await facade.performance_by_tag()]
    else:
        rows = [_row("symbol", p.symbol, p) for p in await facade.performance()]
    return PerformanceOut(by=by, items=rows)


def _row(kind: str, name: str, p: object) -> PerformanceRowOut:
    return PerformanceRowOut.model_validate({"kind": kind, "name": name, **{
        f: getattr(p, f) for f in ("trades", "wins", "win_rate", "pnl", "fees", "avg_pnl_pct", "best_pnl_pct",
                                   "worst_pnl_pct")}})


@router.get("/risk", response_model=RiskOut)
async def risk(_: Viewer, context: Ctx) -> RiskOut:
    """The risk limits every order is checked against (/risk)."""
    return RiskOut(limits=context.facade.risk())


@router.get("/signals", response_model=SignalsOut)
async def signals(_: Viewer, context: Ctx) -> SignalsOut:
    """Every symbol's last signal and whether it would trade now (/signal)."""
    facade = context.facade
    return SignalsOut(signals=[_signal(facade.signal(s)) for s in facade.symbols])


@router.get("/signal/{symbol}", response_model=SignalOut, responses={404: {"model": ErrorOut}})
async def signal(_: Viewer, context: Ctx, symbol: Symbol) -> SignalOut:
    """One symbol's last signal and why it would or would not trade now (/signal SYMBOL)."""
    return _signal(context.facade.signal(symbol))


def _signal(view: object) -> SignalOut:
    if isinstance(view, Refusal):
        raise refused(view, not_found=frozenset({"unknown_symbol"}))
    return SignalOut.model_validate(view)


@router.get("/strategy", response_model=StrategyOut, responses={503: {"model": ErrorOut}})
async def strategy(_: Viewer, context: Ctx) -> StrategyOut:
    """The strategy in charge: parameters and where each came from, stops, who chose it (/strategy)."""
    view = context.facade.active_strategy()
    if view is None:
        raise ApiError(503, "unavailable", "this engine cannot say which strategy is in charge")
    return StrategyOut.model_validate(view)


@router.get("/models", response_model=ModelsOut)
async def models(_: Viewer, context: Ctx) -> ModelsOut:
    """The model of every symbol and its health (/model)."""
    return ModelsOut(models=[ModelOut.model_validate(m) for m in context.facade.models()])


@router.get("/series/equity", response_model=EquitySeriesOut)
async def equity_series(_: Viewer, context: Ctx,
                        period: Literal["day", "week", "month", "all"] = "all") -> EquitySeriesOut:
    """The equity curve and its drawdown as numbers, over the period (/equity's chart; the dashboard draws it)."""
    return EquitySeriesOut.model_validate(await context.facade.equity_chart(period))


@router.get("/series/price/{symbol}", response_model=PriceSeriesOut, responses={404: {"model": ErrorOut}})
async def price_series(_: Viewer, context: Ctx, symbol: Symbol,
                       candles: Annotated[int, Query(ge=MIN_CANDLES, le=MAX_CANDLES)] = DEFAULT_CANDLES
                       ) -> PriceSeriesOut:
    """The last ``candles`` closes of ``symbol`` with the agent's trades and open entry (/chart's data)."""
    data = await context.facade.price_chart_with_trades(symbol, candles)
    if isinstance(data, Refusal):
        raise refused(data, not_found=frozenset({"unknown_symbol"}))
    entry = OpenEntryOut(ts=data.open_entry[0], price=data.open_entry[1]) if data.open_entry else None
    return PriceSeriesOut(symbol=data.symbol, synthetic=data.synthetic, ts=list(data.ts), close=list(data.close),
                          trades=[TradeOut.model_validate(t) for t in data.trades], open_entry=entry)
