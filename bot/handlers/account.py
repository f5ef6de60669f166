"""Read-only account views: /status /balance /positions /trades /pnl /daily /performance, and Refresh."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, parse_choice, parse_count, reply, reply_problem, tz
from engine.facade import PERIODS

REFRESH = "rf:"
MAX_TRADES = 200
MAX_DAYS = 31


def refresh_button(what: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Refresh", callback_data=f"{REFRESH}{what}")]])


def no_args(command: str, context: BotContext) -> Problem | None:
    return bad(command, f"/{command} takes no arguments.") if context.args else None


async def status_text(context: BotContext) -> str:
    return render.status(context.facade.status(), tz(context))


async def balance_text(context: BotContext) -> str:
    return render.balance(context.facade.balance(), tz(context))


async def daily_text(context: BotContext, days: int) -> str:
    return render.daily(await context.facade.daily(days), context.facade.mode)


async def status(update: Update, context: BotContext) -> None:
    """Agent state, equity and the latest prices."""
    if problem := no_args("status", context):
        return await reply_problem(update, problem)
    await reply(update, await status_text(context), refresh_button("status"))


async def balance(update: Update, context: BotContext) -> None:
    """Cash, equity, PnL and fees."""
    if problem := no_args("balance", context):
        return await reply_problem(update, problem)
    await reply(update, await balance_text(context), refresh_button("balance"))


async def positions(update: Update, context: BotContext) -> None:
    """Open positions with marks and stops."""
    if problem := no_args("positions", context):
        return await reply_problem(update, problem)
    markets = context.facade.status().symbols
    synthetic = [s.symbol for s in markets if s.synthetic]
    await reply(update, render.positions(context.facade.positions(), synthetic, context.facade.mode, tz(context),
                                         markets))


async def trades(update: Update, context: BotContext) -> None:
    """The last n closed trades."""
    args = args_of(context)
    if len(args) > 1:
        return await reply_problem(update, bad("trades", "Too many arguments."))
    n = parse_count("trades", args[0], 1, MAX_TRADES) if args else 10
    if isinstance(n, Problem):
        return await reply_problem(update, n)
    page = await context.facade.trades(n)
    await reply(update, render.trades(page, context.facade.mode, tz(context)))


async def pnl(update: Update, context: BotContext) -> None:
    """Profit and loss for day, week, month or all."""
    args = args_of(context)
    if len(args) > 1:
        return await reply_problem(update, bad("pnl", "Too many arguments."))
    period = parse_choice("pnl", args[0], PERIODS, "The period") if args else "day"
    if isinstance(period, Problem):
        return await reply_problem(update, period)
    await reply(update, render.pnl(await context.facade.pnl(period), context.facade.mode, tz(context)))


async def daily(update: Update, context: BotContext) -> None:
    """PnL of each of the last n days."""
    args = args_of(context)
    if len(args) > 1:
        return await reply_problem(update, bad("daily", "Too many arguments."))
    days = parse_count("daily", args[0], 1, MAX_DAYS) if args else 7
    if isinstance(days, Problem):
        return await reply_problem(update, days)
    await reply(update, await daily_text(context, days), refresh_button(f"daily:{days}"))


async def performance(update: Update, context: BotContext) -> None:
    """Results by symbol, or (``/performance tags``) by the strategy's entry and exit tags."""
    args = args_of(context)
    if len(args) > 1:
        return await reply_problem(update, bad("performance", "Too many arguments."))
    if args:
        choice = parse_choice("performance", args[0], ("tags",), "The breakdown")
        if isinstance(choice, Problem):
            return await reply_problem(update, choice)
        facade = context.facade
        return await reply(update, render.performance_tags(await facade.performance_by_tag(), facade.mode))
    await reply(update, render.performance(await context.facade.performance(), context.facade.mode))


async def refresh(update: Update, context: BotContext) -> None:
    """Re-render a /status, /balance or /daily message in place."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    what, _, arg = query.data.removeprefix(REFRESH).partition(":")
    if what == "status":
        text = await status_text(context)
    elif what == "balance":
        text = await balance_text(context)
    elif what == "daily" and arg.isdigit() and 1 <= int(arg) <= MAX_DAYS:
        text = await daily_text(context, int(arg))
    else:
        await query.answer("This button is no longer supported.")
        return
    try:
        await query.edit_message_text(render.split_html(text)[0], parse_mode=ParseMode.HTML,
                                      reply_markup=refresh_button(query.data.removeprefix(REFRESH)))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
        await query.answer("Already up to date.")
        return
    await query.answer("Refreshed.")


def register(app: BotApplication) -> None:
    for name, callback in (("status", status), ("balance", balance), ("positions", positions), ("trades", trades),
                           ("pnl", pnl), ("daily", daily), ("performance", performance)):
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(CallbackQueryHandler(refresh, pattern=f"^{REFRESH}"))
