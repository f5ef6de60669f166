"""/orders (readers): what waits to fill and the protective exits; /cancel ID (admins, confirmed)."""

from __future__ import annotations

from datetime import tzinfo

from telegram import Update
from telegram.ext import CommandHandler

from bot import confirm, render
from bot.context import BotApplication, BotContext
from bot.handlers.common import args_of, bad, reply, reply_problem, tz
from engine.core.types import Refusal
from engine.views import OrdersView, PendingOrderView, ProtectiveOrderView

MAX_ID = 100  # characters; longer arguments are no order id of ours
KINDS = {"stop_loss": "stop-loss", "take_profit": "take-profit", "trailing_stop": "trailing stop"}
WHO = {"manual": "operator order", "signal": "strategy order"}


def size(o: PendingOrderView) -> str:
    """How much the order trades, in the words the user ordered it with."""
    if o.notional is not None:
        return f"{render.money(o.notional)} (quote currency)"
    if o.quantity is not None:
        return render.qty(o.quantity)
    if o.side == "sell" and (o.fraction is None or o.fraction >= 1.0):
        return "the whole position"
    return f"{render.pct(o.fraction, sign=False)} of equity"


def pending_lines(o: PendingOrderView, zone: tzinfo) -> list[str]:
    who = WHO.get(o.reason, render.esc(o.reason))
    how = f"/cancel {render.esc(o.order_id)}" if o.cancellable and not o.sent_as else "cannot be cancelled"
    lines = [f"• {render.esc(o.side.upper())} <b>{render.esc(o.symbol)}</b> {size(o)}: {who} "
             f"placed {render.when(o.decided_ts, zone)}",
             f"  id <code>{render.esc(o.order_id)}</code> ({how})"]
    if o.sent_as:
        lines.append(f"  sent to the exchange as <code>{render.esc(o.sent_as)}</code>, filled "
                     f"{render.qty(o.filled)} so far")
    return lines


def protective_lines(p: ProtectiveOrderView) -> list[str]:
    return [f"• <b>{render.esc(p.symbol)}</b> {KINDS.get(p.kind, render.esc(p.kind))} at {render.price(p.level)} "
            f"(now {render.price(p.mark_price)}): sells {render.qty(p.quantity)}",
            f"  id <code>{render.esc(p.order_id)}</code>"]


def orders_text(v: OrdersView, mode: str, zone: tzinfo) -> str:
    tag = render.mode_tag(mode)
    if not v.pending and not v.protective:
        return (f"{tag}: no pending orders, and no open position with a stop-loss, take-profit or trailing stop."
                f"\nAs of {render.when(v.now_ms, zone)}")
    lines = [f"{tag} orders"]
    paper = mode == "paper"
    if v.pending:
        when_filled = "filled at the next candle's open" if paper else "sent to the exchange at once"
        lines.append(f"Pending ({len(v.pending)}), {when_filled}:")
        lines += [line for o in v.pending for line in pending_lines(o, zone)]
    if v.protective:
        checked = "within every candle" if paper else "on every ticker price"
        lines.append(f"Protective exits ({len(v.protective)}), checked {checked}:")
        lines += [line for p in v.protective for line in protective_lines(p)]
        lines.append("They belong to their position: /risk changes the levels of positions opened after it, "
                     "/close SYMBOL leaves one now.")
    lines.append(f"As of {render.when(v.now_ms, zone)}")
    return "\n".join(lines)


async def orders(update: Update, context: BotContext) -> None:
    """Pending market orders and the protective exits of open positions, each with its id."""
    if context.args:
        return await reply_problem(update, bad("orders", "/orders takes no arguments."))
    facade = context.facade
    await reply(update, orders_text(facade.orders(), facade.mode, tz(context)))


async def cancel(update: Update, context: BotContext) -> None:
    """Cancel a pending operator order (from /orders), after confirmation."""
    args = args_of(context)
    if len(args) != 1 or len(args[0]) > MAX_ID:
        return await reply_problem(update, bad("cancel", "Give the id of one pending order; /orders lists them."))
    facade = context.facade
    checked = await facade.check_cancel(args[0])
    if isinstance(checked, Refusal):
        return await reply(update, render.refusal(checked))
    by = f"telegram:{update.effective_user.id}" if update.effective_user else "telegram"

    async def act() -> str:
        result = await facade.cancel(checked.order_id, by)
        if isinstance(result, Refusal):
            return render.refusal(result)
        return (f"{render.mode_tag(facade.mode)} {render.esc(result.side.upper())} <b>{render.esc(result.symbol)}"
                f"</b> {size(result)} cancelled: it will not fill.\nOrder <code>{render.esc(result.order_id)}</code>")

    summary = (f"{render.mode_tag(facade.mode)} CANCEL the pending {render.esc(checked.side.upper())} "
               f"<b>{render.esc(checked.symbol)}</b> {size(checked)}, order "
               f"<code>{render.esc(checked.order_id)}</code>?")
    await confirm.ask(update, context, summary, act)


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("orders", orders))
    app.add_handler(CommandHandler("cancel", cancel))
