"""Charts as PNG, drawn by the same code and from the same facade reads as the chat's /chart and /equity."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from bot import render
from bot.api.auth import Viewer
from bot.api.context import Ctx
from bot.api.errors import refused
from bot.api.models import ErrorOut
from bot.api.reads import ERRORS, Symbol
from bot.handlers.charts import DEFAULT_CANDLES, MAX_CANDLES, MIN_CANDLES
from engine.core.types import Refusal

PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG image"}}

router = APIRouter(prefix="/charts", tags=["charts"], responses=ERRORS)


@router.get("/equity.png", response_class=Response, responses=PNG)
async def equity(_: Viewer, context: Ctx, period: Literal["day", "week", "month", "all"] = "all") -> Response:
    """Equity over the period with its drawdown below (/equity)."""
    data = await context.facade.equity_chart(period)
    from engine.charts import equity_png  # matplotlib loads on the first chart, not at start-up

    png = await asyncio.to_thread(equity_png, data.ts, data.equity, title=f"Equity ({period})", money=render.money,
                                  percent=lambda f: render.pct(f, sign=False, decimals=1))
    return Response(png, media_type="image/png")


@router.get("/price/{symbol}.png", response_class=Response, responses={**PNG, 404: {"model": ErrorOut}})
async def price(_: Viewer, context: Ctx, symbol: Symbol,
                candles: Annotated[int, Query(ge=MIN_CANDLES, le=MAX_CANDLES)] = DEFAULT_CANDLES) -> Response:
    """The last ``candles`` closes of ``symbol`` with the agent's entries and exits (/chart)."""
    data = await context.facade.price_chart_with_trades(symbol, candles)
    if isinstance(data, Refusal):
        raise refused(data, not_found=frozenset({"unknown_symbol"}))
    from engine.charts import price_png

    title = f"{data.symbol} close" + (" (synthetic)" if data.synthetic else "")
    png = await asyncio.to_thread(price_png, data.ts, data.close, data.trades, title=title, open_entry=data.open_entry,
                                  price=render.price)
    return Response(png, media_type="image/png")
