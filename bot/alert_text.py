"""HTML text of every engine event, for Telegram (parse_mode HTML).

Every dynamic value goes through ``html.escape``; numbers are formatted for people; every trade
message carries "PAPER" while the agent paper-trades; times are shown in the configured zone.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from engine.events import (
    DailySummary,
    EngineEvent,
    EngineStarted,
    EngineStopped,
    FeedRecovered,
    FeedStale,
    ModelDegraded,
    ModelRecovered,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    ProtectiveExitHit,
    RiskStateChanged,
    TradingPaused,
)

PAPER_TAG = "🧪 <b>PAPER</b>"
TRIGGERS = {"stop_loss": "Stop-loss", "take_profit": "Take-profit", "trailing_stop": "Trailing stop"}
REASONS = {
    "signal": "model signal",
    "manual": "operator order",
    "stop_loss": "stop-loss",
    "take_profit": "take-profit",
    "trailing_stop": "trailing stop",
    "reduce": "risk reduction",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def price(value: float | None) -> str:
    """A price with precision that suits its size: 64,123.45 / 1.2346 / 0.00012345."""
    if value is None:
        return "—"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.2f}"
    if size >= 1:
        return f"{value:,.4f}"
    return f"{value:.8g}"


def money(value: float) -> str:
    return f"{value:,.2f}"


def signed_money(value: float) -> str:
    return f"{value:+,.2f}"


def qty(value: float) -> str:
    return f"{value:.8g}"


def pct(fraction: float) -> str:
    return f"{fraction * 100:+.2f} %"


def when(ts_ms: int | None, tz: tzinfo = UTC) -> str:
    if ts_ms is None:
        return "never"
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=tz)
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or "")


def reason_text(reason: str) -> str:
    return esc(REASONS.get(reason, reason.replace("_", " ")))


def _paper(paper: bool) -> str:
    return f"{PAPER_TAG} · " if paper else ""


def order_filled(e: OrderFilled, tz: tzinfo, paper: bool) -> str:
    icon = "🟢" if e.side == "buy" else "🔴"
    return (f"{_paper(e.paper or paper)}{icon} <b>{esc(e.side.upper())} {esc(e.symbol)}</b> filled\n"
            f"{qty(e.quantity)} @ {price(e.price)} (fee {money(e.fee)})\n"
            f"Reason: {reason_text(e.reason)}\n<i>{esc(when(e.ts, tz))}</i>")


def position_opened(e: PositionOpened, tz: tzinfo, paper: bool) -> str:
    return (f"{_paper(e.paper or paper)}📈 <b>Position opened: {esc(e.symbol)}</b>\n"
            f"{qty(e.quantity)} @ {price(e.price)}\n"
            f"Stop {price(e.stop_price)} · target {price(e.target_price)}\n<i>{esc(when(e.ts, tz))}</i>")


def position_closed(e: PositionClosed, tz: tzinfo, paper: bool) -> str:
    icon = "✅" if e.pnl >= 0 else "❌"
    basis = e.entry_price * e.quantity
    ret = f" ({pct(e.pnl / basis)})" if basis else ""
    return (f"{_paper(e.paper or paper)}{icon} <b>Position closed: {esc(e.symbol)}</b>\n"
            f"{qty(e.quantity)} · entry {price(e.entry_price)} → exit {price(e.exit_price)}\n"
            f"PnL <b>{signed_money(e.pnl)}</b>{ret}\nReason: {reason_text(e.reason)}\n<i>{esc(when(e.ts, tz))}</i>")


def protective_exit(e: ProtectiveExitHit, tz: tzinfo, paper: bool) -> str:
    name = TRIGGERS.get(e.trigger, e.trigger.replace("_", " ").capitalize())
    return (f"{_paper(paper)}🛑 <b>{esc(name)} hit: {esc(e.symbol)}</b>\n"
            f"Level {price(e.level)} · filled at {price(e.fill_price)}\n<i>{esc(when(e.ts, tz))}</i>")


def risk_state(e: RiskStateChanged, tz: tzinfo, paper: bool) -> str:
    icon = {"ACTIVE": "🟢", "REDUCING": "🟠", "HALTED": "⛔"}.get(e.new, "⚠️")
    return (f"{icon} <b>Risk state: {esc(e.old)} → {esc(e.new)}</b>\n{esc(e.reason)}\n"
            f"<i>{esc(when(e.ts, tz))}</i>")


def trading_paused(e: TradingPaused, tz: tzinfo, paper: bool) -> str:
    what = "⏸ <b>Trading paused</b> (exits and stops keep working)" if e.paused else "▶️ <b>Trading resumed</b>"
    return f"{what}\nBy {esc(e.by)} · <i>{esc(when(e.ts, tz))}</i>"


def feed_stale(e: FeedStale, tz: tzinfo, paper: bool) -> str:
    return (f"📡 <b>Feed stale: {esc(e.symbol)}</b> — no new entries until it recovers\n{esc(e.detail)}\n"
            f"Last candle: {esc(when(e.last_candle_ts, tz))}")


def feed_recovered(e: FeedRecovered, tz: tzinfo, paper: bool) -> str:
    return f"📡 <b>Feed recovered: {esc(e.symbol)}</b>\nLast candle: {esc(when(e.last_candle_ts, tz))}"


def model_degraded(e: ModelDegraded, tz: tzinfo, paper: bool) -> str:
    return f"🧠 <b>Model degraded: {esc(e.model)}</b>\n{esc(e.reason)}\n<i>{esc(when(e.ts, tz))}</i>"


def model_recovered(e: ModelRecovered, tz: tzinfo, paper: bool) -> str:
    return f"🧠 <b>Model recovered: {esc(e.model)}</b>\n<i>{esc(when(e.ts, tz))}</i>"


def daily_summary(e: DailySummary, tz: tzinfo, paper: bool) -> str:
    return (f"{_paper(paper)}📊 <b>Daily summary {esc(e.day)}</b>\n"
            f"Equity {money(e.equity)}\nPnL <b>{signed_money(e.pnl)}</b> ({pct(e.pnl_pct)})\n"
            f"Trades {e.trades} · fees {money(e.fees)}")


def engine_started(e: EngineStarted, tz: tzinfo, paper: bool) -> str:
    extra = "\n⚠️ The previous run did not shut down cleanly; state was restored." if e.unclean_restart else ""
    return f"🚀 <b>Agent started</b> — mode {esc(e.mode.upper())}{extra}\n<i>{esc(when(e.ts, tz))}</i>"


def engine_stopped(e: EngineStopped, tz: tzinfo, paper: bool) -> str:
    return f"🛑 <b>Agent stopped</b> — mode {esc(e.mode.upper())}\n<i>{esc(when(e.ts, tz))}</i>"


RENDERERS: dict[type[EngineEvent], Callable[[Any, tzinfo, bool], str]] = {
    OrderFilled: order_filled,
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
}


def render(event: EngineEvent, *, tz: tzinfo = UTC, paper: bool = True) -> str:
    """The alert for ``event`` as Telegram HTML; ``paper``: the agent is paper-trading."""
    renderer = RENDERERS.get(type(event))
    if renderer is None:
        return f"ℹ️ <b>{esc(type(event).__name__)}</b>\n<i>{esc(when(event.ts, tz))}</i>"
    return renderer(event, tz, paper)
