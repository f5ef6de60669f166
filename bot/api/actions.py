"""The actions (an admin's token and an ``Idempotency-Key``): the same engine commands the chat's /buy, /sell,
/close, /pause, /resume, /risk and /cancel run, through the facade; a refusal is the engine's, as 409 or 422 with
its reason. Orders fill at the symbol's next candle open, so an accepted order is 202."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from bot.api.auth import Admin
from bot.api.context import Ctx
from bot.api.errors import refused
from bot.api.idempotency import Answer, idempotency_key, once, request_hash
from bot.api.models import (
    CancelledOut,
    ErrorOut,
    OrderAckOut,
    OrdersPlacedOut,
    PendingOrderOut,
    RiskIn,
    RiskOut,
    SwitchOut,
    TradeIn,
)
from bot.api.reads import Symbol
from bot.api.tokens import Principal
from engine.core.types import Refusal
from engine.facade import EngineFacade
from engine.views import OrderAck

Key = Annotated[str, Depends(idempotency_key)]
ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": ErrorOut} for s in (400, 401, 403, 404, 409, 422, 429, 503)}
IN_PATH = frozenset({"unknown_symbol"})  # a symbol in the path that is not traded: 404
OrderId = Annotated[str, Path(min_length=1, max_length=100)]

router = APIRouter(tags=["actions"], responses=ERRORS)


def _by(principal: Principal) -> str:
    return f"api:{principal.owner}"


def _placed(result: OrderAck | tuple[OrderAck, ...] | Refusal, confidence: float | None = None, *,
            not_found: frozenset[str] = frozenset()) -> Answer:
    if isinstance(result, Refusal):
        raise refused(result, not_found=not_found)
    acks = result if isinstance(result, tuple) else (result,)
    out = OrdersPlacedOut(orders=[OrderAckOut.model_validate(a) for a in acks], confidence=confidence)
    return 202, out.model_dump(mode="json")


async def _once(request: Request, context: Ctx, principal: Principal, key: str, payload: object,
                action: Callable[[EngineFacade], Awaitable[Answer]]) -> JSONResponse:
    facade = context.facade
    return await once(context.idempotency, principal, key, request_hash(request, payload), lambda: action(facade))


@router.post("/trade", status_code=202, response_model=OrdersPlacedOut)
async def trade(order: TradeIn, request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """A market order at the next candle's open (/buy, /sell): ``amount`` in the quote currency; a sell without
    one sells the whole position."""

    async def act(facade: EngineFacade) -> Answer:
        if order.side not in ("buy", "sell"):  # the engine's words for a side it does not know
            checked = facade.check_order(order.symbol, order.side, order.amount)
            assert isinstance(checked, Refusal)
            raise refused(checked)
        submit = facade.buy if order.side == "buy" else facade.sell
        return _placed(await submit(order.symbol, order.amount), order.confidence)

    return await _once(request, context, principal, key, order.model_dump(mode="json"), act)


@router.post("/close/{symbol}", status_code=202, response_model=OrdersPlacedOut)
async def close(symbol: Symbol, request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """Close one position at the next candle's open (/close SYMBOL)."""

    async def act(facade: EngineFacade) -> Answer:
        if symbol.strip().lower() == "all":  # "all" is close-all's: a symbol is named here
            return _placed(Refusal("unknown_symbol", "name a symbol; POST close-all closes every position"))
        return _placed(await facade.close(symbol), not_found=IN_PATH)

    return await _once(request, context, principal, key, None, act)


@router.post("/close-all", status_code=202, response_model=OrdersPlacedOut)
async def close_all(request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """Close every open position at the next candle's open (/close all)."""

    async def act(facade: EngineFacade) -> Answer:
        return _placed(await facade.close("all"))

    return await _once(request, context, principal, key, None, act)


async def _switch(facade: EngineFacade, changed: bool) -> Answer:
    state = facade.status()
    return 200, SwitchOut(paused=state.paused, risk_state=str(state.risk_state), changed=changed).model_dump()


@router.post("/pause", response_model=SwitchOut)
async def pause(request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """Stop new automatic entries; exits and stops keep working (/pause). ``changed`` false: it was paused."""

    async def act(facade: EngineFacade) -> Answer:
        return await _switch(facade, await facade.pause(_by(principal)))

    return await _once(request, context, principal, key, None, act)


@router.post("/resume", response_model=SwitchOut)
async def resume(request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """Resume trading, also out of HALTED or REDUCING (/resume). ``changed`` false: there was nothing to resume."""

    async def act(facade: EngineFacade) -> Answer:
        return await _switch(facade, await facade.resume(_by(principal)))

    return await _once(request, context, principal, key, None, act)


@router.put("/risk", response_model=RiskOut)
async def set_risk(change: RiskIn, request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """Change one risk limit (/risk KEY VALUE): the limits after, or the engine's reason for refusing."""

    async def act(facade: EngineFacade) -> Answer:
        limits = await facade.set_risk(change.key, change.value)
        if isinstance(limits, Refusal):
            raise refused(limits)
        return 200, RiskOut(limits=limits).model_dump()

    return await _once(request, context, principal, key, change.model_dump(mode="json"), act)


@router.delete("/orders/{order_id}", response_model=CancelledOut)
async def cancel(order_id: OrderId, request: Request, principal: Admin, key: Key, context: Ctx) -> JSONResponse:
    """Withdraw a pending operator order before it fills (/cancel ID); a protective exit is not an order to
    cancel (PUT risk sets the levels of new positions, POST close leaves one)."""

    async def act(facade: EngineFacade) -> Answer:
        result = await facade.cancel(order_id, _by(principal))
        if isinstance(result, Refusal):
            raise refused(result)
        return 200, CancelledOut(cancelled=PendingOrderOut.model_validate(result)).model_dump(mode="json")

    return await _once(request, context, principal, key, None, act)
