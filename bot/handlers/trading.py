"""Money and switches: /buy /sell /close /pause /resume, each validated first, then confirmed."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import confirm, render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, parse_amount, parse_symbol, reply, reply_problem
from engine.core.types import Refusal
from engine.facade import MAX_AMOUNT
from engine.views import OrderAck, SymbolStatus


def _market(context: BotContext, symbol: str) -> SymbolStatus | None:
    return next((s for s in context.facade.status().symbols if s.symbol == symbol), None)


def _now_price(context: BotContext, symbol: str) -> str:
    market = _market(context, symbol)
    if market is None or market.last_price is None:
        return ""
    return f" (last price {render.market_price(market)})"


def _order_args(command: str, context: BotContext, *, amount_required: bool) -> tuple[str, float | None] | Problem:
    args = args_of(context)
    if not args or len(args) > 2 or (amount_required and len(args) != 2):
        return bad(command, "Give a symbol and an amount in the quote currency." if amount_required
                   else "Give a symbol, and optionally an amount in the quote currency.")
    symbol = parse_symbol(command, args[0], context.facade.symbols)
    if isinstance(symbol, Problem):
        return symbol
    amount = parse_amount(command, args[1]) if len(args) == 2 else None
    if isinstance(amount, Problem):
        return amount
    return symbol, amount


def _too_much(context: BotContext, symbol: str, amount: float) -> str:
    """Why a buy is too big, with the real limit: what cash and the risk limits allow now."""
    facade = context.facade
    limits = facade.risk()
    return (f"Refused: {render.money(amount)} is more than a buy of {render.esc(symbol)} may spend now: at most "
            f"<b>{render.money(facade.buy_room(symbol))}</b> (cash available {render.money(facade.balance().cash)}; "
            f"risk limits max_position_fraction {limits['max_position_fraction']:g} of equity per symbol and "
            f"max_total_exposure {limits['max_total_exposure']:g} in all; /risk shows them).")


def _too_little_held(context: BotContext, symbol: str, amount: float) -> str | None:
    """A sell of more than the position is worth (or of nothing): refused with the numbers."""
    held = next((p for p in context.facade.positions() if p.symbol == symbol), None)
    if held is None:
        return f"Refused: no {render.esc(symbol)} position to sell"
    worth = held.quantity * held.mark_price
    if amount <= worth * (1 + 1e-9):
        return None
    return (f"Refused: you asked to sell {render.money(amount)} of {render.esc(symbol)}, but the position is "
            f"{render.qty(held.quantity)}, worth about {render.money(worth)} at {render.price(held.mark_price)}. "
            f"Send /sell {render.esc(symbol)} to sell all of it.")


def _acks(result: OrderAck | tuple[OrderAck, ...] | Refusal) -> str:
    if isinstance(result, Refusal):
        return render.refusal(result)
    return render.order_ack(result if isinstance(result, tuple) else (result,))


async def buy(update: Update, context: BotContext) -> None:
    """Paper buy for an amount of quote currency, after confirmation."""
    parsed = _order_args("buy", context, amount_required=True)
    if isinstance(parsed, Problem):
        return await reply_problem(update, parsed)
    symbol, amount = parsed
    assert amount is not None
    facade = context.facade
    checked = facade.check_order(symbol, "buy", min(amount, MAX_AMOUNT))  # beyond that: told the real limit
    if isinstance(checked, Refusal):
        too_much = checked.code == "limit" or amount > MAX_AMOUNT
        return await reply(update, _too_much(context, symbol, amount) if too_much else render.refusal(checked))

    async def act() -> str:
        return _acks(await facade.buy(symbol, amount))

    summary = (f"{render.mode_tag(facade.mode)} BUY <b>{render.esc(symbol)}</b> for {render.money(amount)} "
               f"(quote currency) at the next candle's open{_now_price(context, symbol)}.")
    await confirm.ask(update, context, summary, act)


async def sell(update: Update, context: BotContext) -> None:
    """Paper sell of an amount (or the whole position), after confirmation."""
    parsed = _order_args("sell", context, amount_required=False)
    if isinstance(parsed, Problem):
        return await reply_problem(update, parsed)
    symbol, amount = parsed
    facade = context.facade
    if amount is not None and (refused := _too_little_held(context, symbol, amount)):
        return await reply(update, refused)
    checked = facade.check_order(symbol, "sell", amount)
    if isinstance(checked, Refusal):
        return await reply(update, render.refusal(checked))

    async def act() -> str:
        return _acks(await facade.sell(symbol, amount))

    what = "the whole position" if amount is None else f"{render.money(amount)} (quote currency)"
    summary = (f"{render.mode_tag(facade.mode)} SELL <b>{render.esc(symbol)}</b>: {what} at the next candle's "
               f"open{_now_price(context, symbol)}.")
    await confirm.ask(update, context, summary, act)


async def close(update: Update, context: BotContext) -> None:
    """Close one position or all of them, after confirmation."""
    args = args_of(context)
    if len(args) != 1:
        return await reply_problem(update, bad("close", "Give a symbol, or all."))
    facade = context.facade
    if args[0].lower() == "all":
        target = "all"
    else:
        symbol = parse_symbol("close", args[0], facade.symbols)
        if isinstance(symbol, Problem):
            return await reply_problem(update, symbol)
        target = symbol
    checked = facade.check_close(target)
    if isinstance(checked, Refusal):
        return await reply(update, render.refusal(checked))
    held = {p.symbol: p.quantity for p in facade.positions()}

    async def act() -> str:
        return _acks(await facade.close(target))

    listed = ", ".join(f"<b>{render.esc(s)}</b> {render.qty(held.get(s))}" for s in checked)
    summary = f"{render.mode_tag(facade.mode)} CLOSE {listed} at the next candle's open."
    await confirm.ask(update, context, summary, act)


async def pause(update: Update, context: BotContext) -> None:
    """Stop new automatic entries, after confirmation."""
    if context.args:
        return await reply_problem(update, bad("pause", "/pause takes no arguments."))
    facade = context.facade
    if facade.status().paused:
        return await reply(update, "Already paused.")
    by = _who(update)

    async def act() -> str:
        done = await facade.pause(by)
        return "Paused: no new automatic entries; exits and stops keep working." if done else "Already paused."

    await confirm.ask(update, context, "Pause trading? Open positions keep their exits and stops.", act)


async def resume(update: Update, context: BotContext) -> None:
    """Resume trading (also leaves HALTED / REDUCING), after confirmation."""
    if context.args:
        return await reply_problem(update, bad("resume", "/resume takes no arguments."))
    facade = context.facade
    state = facade.status()
    if not state.paused and state.risk_state == "ACTIVE":
        return await reply(update, "Nothing to resume: trading is active.")
    by = _who(update)

    async def act() -> str:
        done = await facade.resume(by)
        return "Resumed: trading is active." if done else "Nothing to resume: trading is active."

    extra = f" and leave {render.esc(state.risk_state)}" if state.risk_state != "ACTIVE" else ""
    await confirm.ask(update, context, f"Resume trading{extra}?", act)


def _who(update: Update) -> str:
    return f"telegram:{update.effective_user.id}" if update.effective_user else "telegram"


def register(app: BotApplication) -> None:
    for name, callback in (("buy", buy), ("sell", sell), ("close", close), ("pause", pause), ("resume", resume)):
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(CallbackQueryHandler(confirm.on_confirm, pattern=f"^{confirm.PREFIX}"))
