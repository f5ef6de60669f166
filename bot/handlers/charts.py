"""/chart (price with entries and exits) and /equity (equity with drawdown) as PNG photos."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.constants import ChatAction, ParseMode
from telegram.ext import CommandHandler

from bot import render
from bot.context import BotApplication, BotContext
from bot.handlers.common import Problem, args_of, bad, parse_choice, parse_count, parse_symbol, reply, reply_problem
from engine.core.types import Refusal
from engine.facade import PERIODS

MIN_CANDLES, MAX_CANDLES, DEFAULT_CANDLES = 10, 2000, 300
DAY_MS = 86_400_000
PERIOD_MS = {"day": DAY_MS, "week": 7 * DAY_MS, "month": 30 * DAY_MS, "all": None}


def _candles(context: BotContext, arg: str) -> int | Problem:
    """A count of candles, or a period word turned into one."""
    if arg.lower() in PERIOD_MS:
        span = PERIOD_MS[arg.lower()]
        step = context.facade.timeframe_ms
        return MAX_CANDLES if span is None else max(MIN_CANDLES, min(MAX_CANDLES, span // step))
    if arg.isdigit() or not arg.isalpha():
        return parse_count("chart", arg, MIN_CANDLES, MAX_CANDLES)
    return bad("chart", f"The second argument is a number of candles ({MIN_CANDLES}-{MAX_CANDLES}) or one of "
                        f"{', '.join(PERIODS)}.")


async def _send_photo(update: Update, context: BotContext, png: bytes, caption: str) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_photo(png, caption=caption, parse_mode=ParseMode.HTML)


async def _uploading(update: Update) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)


async def chart(update: Update, context: BotContext) -> None:
    """Price chart of a symbol with the agent's entries and exits."""
    args, facade = args_of(context), context.facade
    if len(args) > 2:
        return await reply_problem(update, bad("chart", "Too many arguments."))
    symbol = parse_symbol("chart", args[0], facade.symbols) if args else facade.symbols[0]
    if isinstance(symbol, Problem):
        return await reply_problem(update, symbol)
    candles = _candles(context, args[1]) if len(args) == 2 else DEFAULT_CANDLES
    if isinstance(candles, Problem):
        return await reply_problem(update, candles)
    data = await facade.price_chart_with_trades(symbol, candles)
    if isinstance(data, Refusal):
        return await reply(update, render.refusal(data))
    await _uploading(update)
    title = f"{symbol} close" + (" (synthetic)" if data.synthetic else "")
    from engine.charts import price_png  # matplotlib (~30 MB, ~0.5 s) loads on the first chart, not at start-up

    png = await asyncio.to_thread(price_png, data.ts, data.close, data.trades, title=title, open_entry=data.open_entry,
                                  price=render.price)
    caption = (f"{render.mode_tag(facade.mode)} <b>{render.esc(symbol)}</b>, "
               f"last {render.plural(len(data.ts), 'candle')}{render.synthetic_tag(data.synthetic)}; "
               f"{render.plural(len(data.trades), 'closed trade')} shown"
               + (", position open" if data.open_entry else "") + ". ▲ entry, ▼ exit.")
    await _send_photo(update, context, png, caption)


def _drawdown_pct(fraction: float) -> str:
    return render.pct(fraction, sign=False, decimals=1)


async def equity(update: Update, context: BotContext) -> None:
    """Equity curve with drawdown for a period."""
    args, facade = args_of(context), context.facade
    if len(args) > 1:
        return await reply_problem(update, bad("equity", "Too many arguments."))
    period = parse_choice("equity", args[0], PERIODS, "The period") if args else "all"
    if isinstance(period, Problem):
        return await reply_problem(update, period)
    data = await facade.equity_chart(period)
    await _uploading(update)
    from engine.charts import equity_png

    png = await asyncio.to_thread(equity_png, data.ts, data.equity, title=f"Equity ({period})", money=render.money,
                                  percent=_drawdown_pct)
    if data.equity:
        change = data.equity[-1] / data.equity[0] - 1.0 if data.equity[0] else None
        summary = (f"equity {render.money(data.equity[-1])} ({render.pct(change)} over the period), "
                   f"max drawdown {render.pct(max(data.drawdown), sign=False)}")
    else:
        summary = "no equity history yet"
    await _send_photo(update, context, png, f"{render.mode_tag(facade.mode)} {render.esc(period)}: {summary}.")


def register(app: BotApplication) -> None:
    app.add_handler(CommandHandler("chart", chart))
    app.add_handler(CommandHandler("equity", equity))
