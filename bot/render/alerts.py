"""The alert of each engine event (``alert_text``), as Telegram HTML; every trade alert says PAPER while the
agent paper-trades, and LIVE when it trades on the exchange."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any

from bot.render.values import esc, money, pct, plural, price, qty, reason_text, signed, when
from engine.core.events import BooksAgree, BooksMismatch, LiveStarted, StrategySwitched
from engine.events import (
    DailySummary,
    EngineEvent,
    EngineStarted,
    EngineStopped,
    FeedRecovered,
    FeedStale,
    ModelDegraded,
    ModelRecovered,
    OrderCancelled,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    ProtectiveExitHit,
    RiskStateChanged,
    TradingPaused,
)

ALERT_PAPER = "🧪 <b>PAPER</b>"
ALERT_LIVE = "⚡ <b>LIVE</b>"
TRIGGERS = {"stop_loss": "Stop-loss", "take_profit": "Take-profit", "trailing_stop": "Trailing stop"}


def _paper(paper: bool) -> str:
    """Every trade alert says which money it is about: PAPER, or LIVE (real orders on the exchange)."""
    return f"{ALERT_PAPER} · " if paper else f"{ALERT_LIVE} · "


def _stamp(ts: int | None, tz: tzinfo) -> str:
    return f"<i>{when(ts, tz)}</i>"


def _level(value: float | None) -> str:
    """A protective level that may be switched off."""
    return "none" if value is None else price(value)


def order_filled(e: OrderFilled, tz: tzinfo, paper: bool) -> str:
    icon = "🟢" if e.side == "buy" else "🔴"
    return (f"{_paper(e.paper or paper)}{icon} <b>{esc(e.side.upper())} {esc(e.symbol)}</b> filled\n"
            f"{qty(e.quantity)} @ {price(e.price)} (fee {money(e.fee)})\n"
            f"Reason: {reason_text(e.reason, e.source)}\n{_stamp(e.ts, tz)}")


def order_cancelled(e: OrderCancelled, tz: tzinfo, paper: bool) -> str:
    why = f"{esc(e.reason)}\n" if e.reason else ""
    return (f"{_paper(e.paper or paper)}🚫 <b>{esc(e.side.upper())} {esc(e.symbol)} cancelled</b> before it filled\n"
            f"Order <code>{esc(e.order_id)}</code> · by {esc(e.by)}\n{why}{_stamp(e.ts, tz)}")


def position_opened(e: PositionOpened, tz: tzinfo, paper: bool) -> str:
    return (f"{_paper(e.paper or paper)}📈 <b>Position opened: {esc(e.symbol)}</b>\n"
            f"{qty(e.quantity)} @ {price(e.price)}\n"
            f"Stop {_level(e.stop_price)} · target {_level(e.target_price)}\n{_stamp(e.ts, tz)}")


def position_closed(e: PositionClosed, tz: tzinfo, paper: bool) -> str:
    """The trade's percentage is the engine's ``pnl_pct``, the one /trades and /performance show."""
    icon = "✅" if e.pnl >= 0 else "❌"
    ret = f" ({pct(e.pnl_pct)})" if e.pnl_pct is not None else ""
    return (f"{_paper(e.paper or paper)}{icon} <b>Position closed: {esc(e.symbol)}</b>\n"
            f"{qty(e.quantity)} · entry {price(e.entry_price)} → exit {price(e.exit_price)}\n"
            f"PnL <b>{signed(e.pnl)}</b>{ret}\nReason: {reason_text(e.reason, e.source)}\n{_stamp(e.ts, tz)}")


def protective_exit(e: ProtectiveExitHit, tz: tzinfo, paper: bool) -> str:
    name = TRIGGERS.get(e.trigger, e.trigger.replace("_", " ").capitalize())
    return (f"{_paper(paper)}🛑 <b>{esc(name)} hit: {esc(e.symbol)}</b>\n"
            f"Level {price(e.level)} · filled at {price(e.fill_price)}\n{_stamp(e.ts, tz)}")


def risk_state(e: RiskStateChanged, tz: tzinfo, paper: bool) -> str:
    icon = {"ACTIVE": "🟢", "REDUCING": "🟠", "HALTED": "⛔"}.get(e.new, "⚠️")
    return f"{icon} <b>Risk state: {esc(e.old)} → {esc(e.new)}</b>\n{esc(e.reason)}\n{_stamp(e.ts, tz)}"


def trading_paused(e: TradingPaused, tz: tzinfo, paper: bool) -> str:
    what = "⏸ <b>Trading paused</b> (exits and stops keep working)" if e.paused else "▶️ <b>Trading resumed</b>"
    return f"{what}\nBy {esc(e.by)} · {_stamp(e.ts, tz)}"


def feed_stale(e: FeedStale, tz: tzinfo, paper: bool) -> str:
    return (f"📡 <b>Feed stale: {esc(e.symbol)}</b> — no new entries until it recovers\n{esc(e.detail)}\n"
            f"Last candle: {when(e.last_candle_ts, tz)}")


def feed_recovered(e: FeedRecovered, tz: tzinfo, paper: bool) -> str:
    return f"📡 <b>Feed recovered: {esc(e.symbol)}</b>\nLast candle: {when(e.last_candle_ts, tz)}"


def model_degraded(e: ModelDegraded, tz: tzinfo, paper: bool) -> str:
    return f"🧠 <b>Model degraded: {esc(e.model)}</b>\n{esc(e.reason)}\n{_stamp(e.ts, tz)}"


def model_recovered(e: ModelRecovered, tz: tzinfo, paper: bool) -> str:
    return f"🧠 <b>Model recovered: {esc(e.model)}</b>\n{_stamp(e.ts, tz)}"


def daily_summary(e: DailySummary, tz: tzinfo, paper: bool) -> str:
    return (f"{_paper(paper)}📊 <b>Daily summary {esc(e.day)}</b>\n"
            f"Equity {money(e.equity)}\nPnL <b>{signed(e.pnl)}</b> ({pct(e.pnl_pct)})\n"
            f"{plural(e.trades, 'trade')} · fees {money(e.fees)}")


def engine_started(e: EngineStarted, tz: tzinfo, paper: bool) -> str:
    extra = "\n⚠️ The previous run did not shut down cleanly; state was restored." if e.unclean_restart else ""
    return f"🚀 <b>Agent started</b> — mode {esc(e.mode.upper())}{extra}\n{_stamp(e.ts, tz)}"


def engine_stopped(e: EngineStopped, tz: tzinfo, paper: bool) -> str:
    return f"🛑 <b>Agent stopped</b> — mode {esc(e.mode.upper())}\n{_stamp(e.ts, tz)}"


def strategy_switched(e: StrategySwitched, tz: tzinfo, paper: bool) -> str:
    kept = f"Open positions kept: {esc(e.positions)}" if e.positions else "No position was open."
    return (f"🔀 <b>Strategy switched: {esc(e.old)} → {esc(e.new)}</b>\n{kept}\nBy {esc(e.by)} · "
            f"{_stamp(e.ts, tz)}")


def books_mismatch(e: BooksMismatch, tz: tzinfo, paper: bool) -> str:
    lines = "\n".join(f"• {esc(line)}" for line in e.lines)
    return (f"⚠️ <b>Books disagree with {esc(e.exchange)}</b> — new entries paused for {esc(', '.join(e.symbols))}\n"
            f"{lines}\nNo order is sent to fix it. /reconcile shows it; /reconcile accept adopts the exchange's "
            f"figures.\n{_stamp(e.ts, tz)}")


def books_agree(e: BooksAgree, tz: tzinfo, paper: bool) -> str:
    by = f" · by {esc(e.by)}" if e.by else ""
    return f"✅ <b>Books agree with {esc(e.exchange)}</b> — entries resume\n{esc(e.how)}{by}\n{_stamp(e.ts, tz)}"


def live_started(e: LiveStarted, tz: tzinfo, paper: bool) -> str:
    balances = "\n".join(f"• {esc(line)}" for line in e.balances) or "• (no balance of the traded assets)"
    return (f"{ALERT_LIVE} <b>trading started on {esc(e.exchange)}</b> — real orders from now on\n"
            f"Account (traded assets):\n{balances}\nLimits: {esc(e.limits)}\n{_stamp(e.ts, tz)}")


ALERTS: dict[type[EngineEvent], Callable[[Any, tzinfo, bool], str]] = {
    OrderFilled: order_filled,
    OrderCancelled: order_cancelled,
    PositionOpened: position_opened,
    PositionClosed: position_closed,
    ProtectiveExitHit: protective_exit,
    RiskStateChanged: risk_state,
    TradingPaused: trading_paused,
    FeedStale: feed_stale,
    FeedRecovered: feed_recovered,
    ModelDegraded: model_degraded,
    ModelRecovered: model_recovered,
    DailySummary: daily_summary,
    EngineStarted: engine_started,
    EngineStopped: engine_stopped,
    StrategySwitched: strategy_switched,
    BooksMismatch: books_mismatch,
    BooksAgree: books_agree,
    LiveStarted: live_started,
}


def alert_text(event: EngineEvent, *, tz: tzinfo = UTC, paper: bool = True) -> str:
    """The alert for ``event`` as Telegram HTML; ``paper``: the agent is paper-trading."""
    write = ALERTS.get(type(event))
    if write is None:
        return f"ℹ️ <b>{esc(type(event).__name__)}</b>\n{_stamp(event.ts, tz)}"
    return write(event, tz, paper)

