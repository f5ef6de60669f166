"""Every text the bot shows, in one module: replies, alerts and chart captions, in HTML parse mode
with every dynamic value escaped, and long replies split.

One function per kind of value, used by all of them: ``money``, ``signed`` (a PnL), ``price``,
``qty`` (a quantity), ``pct`` (a percentage), ``when`` (a time: ``2026-11-24 14:05 UTC``, or in
``Settings.timezone``), ``duration``, ``plural`` (a count of things) and ``missing`` (an absent or
non-finite value). Views of the engine's snapshots follow, then ``alert_text`` (the alert of each
engine event), then ``split_html``, which cuts a reply longer than Telegram's 4,096 characters into
several, at line boundaries, never inside a tag or an entity. Prices from synthetic feeds carry the
word "synthetic" wherever they show; every trade message says PAPER while the agent paper-trades.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.core.types import PositionView, Refusal, Trade
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
from engine.views import (
    BalanceView,
    DayView,
    HealthView,
    ModelView,
    OrderAck,
    PnlView,
    SignalView,
    StatusView,
    SymbolPerformance,
    SymbolStatus,
    TradesPage,
)

if TYPE_CHECKING:
    from engine.retrain import RetrainResult

MAX_MESSAGE = 4096
PAPER = "<b>PAPER</b>"

# ---------------------------------------------------------------------------- values


def esc(value: object) -> str:
    """Any dynamic value, escaped for HTML parse mode."""
    return html.escape(str(value), quote=False)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def missing() -> str:
    """What every value below shows when it is absent (None) or not a finite number."""
    return "n/a"


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 trade`` / ``2 trades`` / ``0 trades`` (``words``: an irregular plural)."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def number(value: float | None, decimals: int = 2) -> str:
    """``12345.678`` -> ``12,345.68``; None or non-finite -> ``missing()``."""
    if value is None or not math.isfinite(value):
        return missing()
    text = f"{value:,.{decimals}f}"
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]  # no "-0.00"
    return text


def money(value: float | None) -> str:
    """An amount of the quote currency: ``1,234.50``."""
    return number(value, 2)


def signed(value: float | None, decimals: int = 2) -> str:
    """Signed amount (a PnL): ``+1,234.50`` / ``-12.00`` / ``0.00``."""
    if value is None or not math.isfinite(value):
        return missing()
    text = number(value, decimals)
    return text if text.startswith("-") or not any(c in "123456789" for c in text) else "+" + text


def pct(fraction: float | None, *, sign: bool = True, decimals: int = 2) -> str:
    """A fraction as a percentage: ``0.0123`` -> ``+1.23%`` (``sign=False``: ``1.23%``)."""
    if fraction is None or not math.isfinite(fraction):
        return missing()
    return (signed(fraction * 100, decimals) if sign else number(fraction * 100, decimals)) + "%"


def price(value: float | None) -> str:
    """A price with decimals that suit its size (2 above 1,000, 4 above 1, five significant digits below)."""
    if value is None or not math.isfinite(value):
        return missing()
    magnitude = abs(value)
    if magnitude >= 1000:
        decimals = 2
    elif magnitude >= 1:
        decimals = 4
    elif magnitude == 0:
        decimals = 2
    else:
        decimals = min(10, 3 - math.floor(math.log10(magnitude)) + 1)
    return number(value, decimals)


def qty(value: float | None) -> str:
    """A base-currency quantity, the same in every message: up to 8 decimals, trailing zeros dropped
    (``0.03252481``, ``1,250.5``)."""
    if value is None or not math.isfinite(value):
        return missing()
    text = number(value, 8)
    return text.rstrip("0").rstrip(".") if "." in text else text


def zone(name: str) -> tzinfo:
    """The zone named in Settings.timezone; UTC when the name is unknown."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def when(ms: int | None, tz: tzinfo = UTC) -> str:
    """``2026-11-24 14:05 UTC`` (or the zone's abbreviation)."""
    if ms is None:
        return "never"
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz)
    label = "UTC" if tz is UTC else (moment.tzname() or str(tz))
    return f"{moment:%Y-%m-%d %H:%M} {esc(label)}"


def duration(seconds: float | None) -> str:
    """``3d 4h`` / ``2h 5m`` / ``42s``."""
    if seconds is None or not math.isfinite(seconds):
        return missing()
    s = max(0, int(seconds))
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def synthetic_tag(synthetic: bool) -> str:
    return " <i>(synthetic)</i>" if synthetic else ""


def price_age(s: SymbolStatus | None) -> str:
    """`` (ticker, 3s ago)`` / `` (last close, 4m 10s ago)``: where a market price comes from and how old it is."""
    if s is None or s.last_price is None or s.price_age_ms is None:
        return ""
    source = "last close" if s.price_source == "candle" else s.price_source
    return f" ({esc(source)}, {duration(s.price_age_ms / 1000)} ago)"


def market_price(s: SymbolStatus) -> str:
    """A symbol's price as /status and the order preview show it: ``30,675.98 (ticker, 3s ago)``."""
    return f"{price(s.last_price)}{synthetic_tag(s.synthetic)}{price_age(s)}"


def mode_tag(mode: str) -> str:
    return PAPER if mode == "paper" else f"<b>{esc(mode.upper())}</b>"


def refusal(r: Refusal) -> str:
    return f"Refused: {esc(r.reason)}"


# ---------------------------------------------------------------------------- views


def status(v: StatusView, tz: tzinfo = UTC) -> str:
    state = "paused" if v.paused else "running"
    lines = [
        f"{mode_tag(v.mode)} trading agent: <b>{state}</b>",
        f"Risk state: <b>{esc(v.risk_state)}</b>" + (f" ({esc(v.risk_reason)})" if v.risk_reason else ""),
        f"Equity: {money(v.equity)}   Cash: {money(v.cash)}",
        f"Open positions: {v.open_positions}",
        f"Strategy: {esc(v.strategy)} on {esc(v.timeframe)} candles",
        f"Up since: {when(v.started_ms, tz)}",
    ]
    for s in v.symbols:
        flags = " <b>STALE</b>" if s.stale else ""
        held = f", holding {qty(s.position_qty)}" if s.position_qty else ""
        lines.append(f"• {esc(s.symbol)}: {market_price(s)}{held}"
                     f" (last candle {when(s.last_candle_ts, tz)}){flags}")
    lines.append(f"<i>As of {when(v.now_ms, tz)}</i>")
    return "\n".join(lines)


def balance(v: BalanceView, tz: tzinfo = UTC) -> str:
    return "\n".join([
        f"{mode_tag(v.mode)} balance",
        f"Equity: <b>{money(v.equity)}</b> ({pct(v.total_return)} since start at {money(v.starting_cash)})",
        f"Cash: {money(v.cash)}",
        f"Exposure: {money(v.exposure)}",
        f"Realised PnL: {signed(v.realized_pnl)}",
        f"Unrealised PnL: {signed(v.unrealized_pnl)}",
        f"Fees paid: {money(v.fees_paid)}",
        f"<i>As of {when(v.now_ms, tz)}</i>",
    ])


def positions(items: Sequence[PositionView], synthetic: Iterable[str] = (), mode: str = "paper",
              tz: tzinfo = UTC, markets: Iterable[SymbolStatus] = ()) -> str:
    """``markets`` (the status' symbols) tell where each "now" price comes from and how old it is."""
    if not items:
        return f"{mode_tag(mode)}: no open positions."
    fake = set(synthetic)
    by_symbol = {m.symbol: m for m in markets}
    lines = [f"{mode_tag(mode)} open positions ({len(items)})"]
    for p in items:
        ret = (p.mark_price / p.avg_price - 1.0) if p.avg_price else None
        stops = []
        if p.stop_price is not None:
            stops.append(f"stop {price(p.stop_price)}")
        if p.target_price is not None:
            stops.append(f"target {price(p.target_price)}")
        if p.trail_price is not None:
            stops.append(f"trail {price(p.trail_price)}")
        lines.append(f"• <b>{esc(p.symbol)}</b> {qty(p.quantity)} @ {price(p.avg_price)}, "
                     f"now {price(p.mark_price)}{synthetic_tag(p.symbol in fake)}{price_age(by_symbol.get(p.symbol))}: "
                     f"{signed(p.unrealized_pnl)} ({pct(ret)})")
        lines.append(f"  since {when(p.entry_ts, tz)}" + (f"; {', '.join(stops)}" if stops else ""))
    return "\n".join(lines)


def trade_line(t: Trade, tz: tzinfo = UTC) -> str:
    """One closed trade; its percentage is the engine's ``pnl_pct`` (net of both fees, over the entry cost)."""
    return (f"• {when(t.exit_time, tz)} <b>{esc(t.symbol)}</b> {qty(t.quantity)}: {price(t.entry_price)} → "
            f"{price(t.exit_price)} {signed(t.pnl)} ({pct(t.pnl_pct)}), {reason_text(t.exit_reason)}")


def trades(page: TradesPage, mode: str = "paper", tz: tzinfo = UTC) -> str:
    if not page.items:
        return f"{mode_tag(mode)}: no closed trades yet."
    head = f"{mode_tag(mode)} last {len(page.items)} of {plural(page.total, 'closed trade')} (newest first)"
    return "\n".join([head, *(trade_line(t, tz) for t in page.items)])


def pnl(v: PnlView, mode: str = "paper", tz: tzinfo = UTC) -> str:
    since = "since the start" if v.period == "all" else f"this {esc(v.period)} (since {when(v.start_ms, tz)})"
    win_rate = pct(v.wins / v.trades, sign=False, decimals=0) if v.trades else "n/a"
    return "\n".join([
        f"{mode_tag(mode)} PnL {since}",
        f"<b>{signed(v.pnl)}</b> ({pct(v.pnl_pct)})",
        f"Equity: {money(v.start_equity)} → {money(v.end_equity)}",
        f"Closed trades: {v.trades:,}, won {v.wins:,} ({win_rate}); fees {money(v.fees)}",
    ])


def daily(days: Sequence[DayView], mode: str = "paper") -> str:
    lines = [f"{mode_tag(mode)} last {plural(len(days), 'day')} (UTC)"]
    for d in days:
        lines.append(f"• {esc(d.day)}: {signed(d.pnl)} ({pct(d.pnl_pct)}), equity {money(d.end_equity)}, "
                     f"{plural(d.trades, 'trade')}")
    return "\n".join(lines)


def performance(items: Sequence[SymbolPerformance], mode: str = "paper") -> str:
    if not items:
        return f"{mode_tag(mode)}: no performance yet."
    lines = [f"{mode_tag(mode)} performance by symbol"]
    for p in items:
        line = f"• <b>{esc(p.symbol)}</b>: {plural(p.trades, 'trade')}"
        if p.trades:
            line += (f", win rate {pct(p.win_rate, sign=False, decimals=0)}, PnL {signed(p.pnl)}, fees {money(p.fees)}"
                     f"; per trade {pct(p.avg_pnl_pct)} on average, best {pct(p.best_pnl_pct)}, "
                     f"worst {pct(p.worst_pnl_pct)}")
        lines.append(line)
    return "\n".join(lines)


def risk(limits: dict[str, float]) -> str:
    lines = ["Risk limits (fractions: 0.05 is 5%; 0 switches a protective limit off)"]
    lines += [f"• {esc(k)}: <code>{esc(f'{v:g}')}</code>" for k, v in limits.items()]
    return "\n".join(lines)


def signal(v: SignalView, tz: tzinfo = UTC) -> str:
    lines = [f"Signal for <b>{esc(v.symbol)}</b> (model {esc(v.model)})"]
    if v.last is None:
        lines.append("No candle processed yet.")
    else:
        action = {1: "ENTER", 0: "HOLD", -1: "EXIT"}.get(v.last.action, str(v.last.action))
        lines.append(f"Last candle {when(v.last.ts, tz)}: <b>{esc(action)}</b>, confidence "
                     f"{pct(v.last.confidence, sign=False, decimals=0)}, outcome {esc(v.last.outcome)}")
    if v.would_trade:
        what = "exit (sell)" if v.side == "sell" else "enter (buy)"
        lines.append(f"Would trade now: <b>yes</b>: {what} at the next candle's open")
    else:
        lines.append("Would trade now: no")
    lines += [f"• {esc(r)}" for r in v.reasons]
    if v.position_qty:
        lines.append(f"Holding {qty(v.position_qty)}")
    return "\n".join(lines)


def _num(meta: Mapping[str, object], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def out_of_sample(overall: Mapping[str, object]) -> list[str]:
    """Walk-forward (out-of-sample) metrics: AUC, accuracy against the baseline, strategy against buy-and-hold."""
    lines = []
    if (auc := _num(overall, "auc")) is not None:
        lines.append(f"AUC {number(auc, 3)}")
    if (acc := _num(overall, "accuracy")) is not None:
        lines.append(f"accuracy {pct(acc, sign=False, decimals=1)} vs baseline "
                     f"{pct(_num(overall, 'baseline_accuracy'), sign=False, decimals=1)}")
    if (ret := _num(overall, "strategy_return")) is not None:
        trades = _num(overall, "trades")
        lines.append(f"strategy {pct(ret)} vs buy-and-hold {pct(_num(overall, 'buy_and_hold_return'))}"
                     + (f" ({plural(int(trades), 'trade')})" if trades is not None else ""))
    return lines


def _window(training: object) -> str:
    if not isinstance(training, Mapping):
        return ""
    first, last, rows = _num(training, "first_ts"), _num(training, "last_ts"), _num(training, "rows")
    if first is None or last is None:
        return ""
    return (f"trained on {when(int(first))} → {when(int(last))}"
            + (f" ({number(rows, 0)} rows)" if rows else ""))


def _model_lines(meta: Mapping[str, object], indent: str) -> list[str]:
    """One model's metadata: name and kind, what it trades, its training window and metrics."""
    kind = str(meta.get("kind", "?"))
    name = esc(meta.get("name", "?"))
    if kind == "none":
        return [f"{indent}<b>{name}</b> (no new entries): {esc(meta.get('reason', 'unknown reason'))}"]
    if kind == "rule":
        params = ", ".join(f"{esc(k)} {esc(meta[k])}" for k in ("fast", "slow") if k in meta)
        return [f"{indent}{name} (rule" + (f": {params}" if params else "") + ")"]
    head = f"{indent}{name} ({esc(kind)}"
    if meta.get("symbol") or meta.get("timeframe"):
        head += f", {esc(meta.get('symbol') or '?')} {esc(meta.get('timeframe') or '')}".rstrip()
    lines = [head + ")"]
    if window := _window(meta.get("training")):
        lines.append(f"{indent}  {window}")
    metrics = meta.get("metrics")
    if isinstance(metrics, Mapping) and metrics:
        overall = metrics.get("overall")
        shown = out_of_sample(overall if isinstance(overall, Mapping) else metrics)
        if shown:
            lines.append(f"{indent}  out of sample: " + "; ".join(shown))
    else:
        lines.append(f"{indent}  no validation metrics recorded")
    return lines


def models(items: Sequence[ModelView]) -> str:
    if not items:
        return "No models loaded."
    lines = ["Models"]
    for m in items:
        meta = m.metadata
        members = meta.get("members")
        if meta.get("kind") == "ensemble" and isinstance(members, list):
            lines.append(f"• <b>{esc(m.symbol)}</b>: {esc(m.name)} (ensemble of {len(members)})")
            for member in members:
                if isinstance(member, Mapping):
                    inner = member.get("metadata")
                    lines += _model_lines(inner if isinstance(inner, Mapping) else {"name": member.get("name")},
                                          "  ")
        else:
            first, *rest = _model_lines(meta, "  ")
            lines += [f"• <b>{esc(m.symbol)}</b>: {first.strip()}", *rest]
        for h in m.health:
            state = "healthy" if h.healthy else f"<b>degraded</b>: {esc(h.reason)}"
            extra = f", p99 {number(h.p99_ms, 1)} ms" if _finite(h.p99_ms) else ""
            extra += f", PSI {number(h.psi, 3)}" if _finite(h.psi) else ""
            lines.append(f"  health of {esc(h.name)}: {state}{extra}")
    return "\n".join(lines)


def retrain_result(r: RetrainResult) -> str:
    """What a retrain produced: walk-forward numbers (out of sample) and where the new model lives."""
    lines = [f"Retrained <b>{esc(r.symbol)}</b> on {number(r.rows, 0)} candles in {duration(r.seconds)}.",
             "Walk-forward validation, <b>out of sample</b> (each fold scored on candles it was not trained on):"]
    lines += [f"• {line}" for line in out_of_sample(r.out_of_sample)] or ["• no metrics"]
    lines.append(f"New model, now active: <code>{esc(r.path)}</code>")
    return "\n".join(lines)


def health(v: HealthView) -> str:
    lines = [
        "Health: <b>OK</b>" if v.ok else "Health: <b>DEGRADED</b>",
        f"Uptime: {duration(v.uptime_s)}",
        f"Event loop lag: {number(v.loop_lag_ms, 1)} ms",
        f"Database latency: {number(v.db_latency_ms, 1)} ms" if v.db_latency_ms is not None else "Database: n/a",
        f"Alert backlog: {v.outbox_backlog}" if v.outbox_backlog is not None else "Alert backlog: n/a",
        f"Memory: {number(v.rss_mb, 0)} MB",
        f"Decision p99: {number(v.decision_p99_ms, 2)} ms" if v.decision_p99_ms is not None else "Decision p99: n/a",
    ]
    for symbol, age in v.last_candle_age_s.items():
        shown = "none yet" if age is None else f"{duration(age)} ago"
        lines.append(f"• {esc(symbol)}: last candle {shown}" + (" <b>STALE</b>" if symbol in v.stale else ""))
    for m in v.models:
        if not m.healthy:
            lines.append(f"• model {esc(m.name)}: {esc(m.reason)}")
    return "\n".join(lines)


def order_ack(acks: Sequence[OrderAck]) -> str:
    lines = []
    for a in acks:
        tag = PAPER + " " if a.paper else ""
        amount = "whole position" if a.amount is None else money(a.amount)
        lines.append(f"{tag}{esc(a.side.upper())} <b>{esc(a.symbol)}</b> {amount} accepted: {esc(a.note)}."
                     f"\nOrder <code>{esc(a.order_id)}</code>")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- alerts (engine events)

ALERT_PAPER = "🧪 <b>PAPER</b>"
TRIGGERS = {"stop_loss": "Stop-loss", "take_profit": "Take-profit", "trailing_stop": "Trailing stop"}
REASONS = {
    "manual": "operator order",
    "stop_loss": "stop-loss",
    "take_profit": "take-profit",
    "trailing_stop": "trailing stop",
    "reduce": "risk reduction",
}


def reason_text(reason: str, source: str = "") -> str:
    """Why a fill or a trade happened: ``sma-cross(10,30) signal`` (``source``: what decided it), ``stop-loss``."""
    if reason == "signal":
        return esc(f"{source} signal" if source else "signal")
    return esc(REASONS.get(reason, reason.replace("_", " ")))


def _paper(paper: bool) -> str:
    return f"{ALERT_PAPER} · " if paper else ""


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
    return (f"{_paper(e.paper or paper)}🚫 <b>{esc(e.side.upper())} {esc(e.symbol)} cancelled</b> before it filled\n"
            f"Order <code>{esc(e.order_id)}</code> · by {esc(e.by)}\n{_stamp(e.ts, tz)}")


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
}


def alert_text(event: EngineEvent, *, tz: tzinfo = UTC, paper: bool = True) -> str:
    """The alert for ``event`` as Telegram HTML; ``paper``: the agent is paper-trading."""
    write = ALERTS.get(type(event))
    if write is None:
        return f"ℹ️ <b>{esc(type(event).__name__)}</b>\n{_stamp(event.ts, tz)}"
    return write(event, tz, paper)


# ---------------------------------------------------------------------------- splitting

_TOKEN_RE = re.compile(r"<[^>]*>|&[^;\s<>&]{1,10};|\n| +|[^<&\n ]{1,64}|[<&]")
_TAG_NAME_RE = re.compile(r"</?\s*([a-zA-Z0-9-]+)")


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _closers(stack: Sequence[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _openers(stack: Sequence[tuple[str, str]]) -> str:
    return "".join(tag for _, tag in stack)


def _step(stack: list[tuple[str, str]], token: str) -> None:
    if not token.startswith("<") or len(token) < 3:
        return
    match = _TAG_NAME_RE.match(token)
    if match is None:
        return
    name = match.group(1).lower()
    if token.startswith("</"):
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == name:
                del stack[i:]
                break
    elif not token.endswith("/>"):
        stack.append((name, token))


def _has_text(chunk: str) -> bool:
    return bool(html.unescape(re.sub(r"<[^>]*>", "", chunk)).strip())


def split_html(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units, at line boundaries when it can.

    A line longer than a message is cut between words (or, failing that, between tokens). Tags
    open at a cut are closed at the end of one piece and reopened at the start of the next;
    entities (``&amp;``) and tags are never cut. Pieces with no visible text are dropped.
    """
    if _u16(text) <= limit:
        return [text] if _has_text(text) else []
    chunks: list[str] = []
    stack: list[tuple[str, str]] = []
    current: list[str] = []
    breaks: dict[str, tuple[int, list[tuple[str, str]]]] = {}  # "\n" / " " -> last index there, open tags

    size = 0

    def flush(upto: int, open_tags: list[tuple[str, str]], skip: int) -> None:
        nonlocal current, size
        piece = "".join(current[:upto]) + _closers(open_tags)
        if _has_text(piece):
            chunks.append(piece.strip("\n "))
        current = [_openers(open_tags), *current[upto + skip:]]
        size = sum(_u16(t) for t in current)
        breaks.clear()
        probe = list(open_tags)
        for i, tok in enumerate(current[1:], start=1):  # cut points left in the remainder
            if tok == "\n" or tok.startswith(" "):
                breaks["\n" if tok == "\n" else " "] = (i, list(probe))
            _step(probe, tok)

    for token in _TOKEN_RE.findall(text):
        need = _u16(token) + _u16(_closers(stack)) + 40
        if current and size + need > limit:
            cut = breaks.get("\n") or breaks.get(" ")
            if cut is not None and cut[0] > 0:
                flush(cut[0], cut[1], 1)
            if size + need > limit:
                flush(len(current), list(stack), 0)
        if token == "\n" or token.startswith(" "):
            breaks["\n" if token == "\n" else " "] = (len(current), list(stack))
        current.append(token)
        size += _u16(token)
        _step(stack, token)
    piece = "".join(current)
    if _has_text(piece):
        chunks.append(piece.strip("\n "))
    return chunks
