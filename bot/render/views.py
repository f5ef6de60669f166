"""Replies to the read commands: each view of the engine's snapshots (``engine/views.py``) as Telegram HTML."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, tzinfo

from bot.render.values import (
    PAPER,
    duration,
    esc,
    market_price,
    mode_tag,
    money,
    number,
    pct,
    plural,
    price,
    price_age,
    qty,
    reason_text,
    signed,
    synthetic_tag,
    when,
)
from engine.core.types import PositionView, Trade
from engine.views import (
    BalanceView,
    DayView,
    DustView,
    HealthView,
    OrderAck,
    PnlView,
    SignalView,
    StatusView,
    SymbolPerformance,
    SymbolStatus,
    TagPerformance,
    TradesPage,
)


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
    if v.exchange:
        lines.append(f"Exchange: {esc(v.exchange)} · books: {esc(v.books)}")
        lines += [f"⚠️ {esc(line)}" for line in v.mismatches]
    for s in v.symbols:
        flags = " <b>STALE</b>" if s.stale else ""
        held = f", holding {qty(s.position_qty)}" if s.position_qty else ""
        lines.append(f"• {esc(s.symbol)}: {market_price(s)}{held}"
                     f" (last candle {when(s.last_candle_ts, tz)}){flags}")
    lines.append(f"<i>As of {when(v.now_ms, tz)}</i>")
    return "\n".join(lines)


def balance(v: BalanceView, tz: tzinfo = UTC) -> str:
    lines = [
        f"{mode_tag(v.mode)} balance",
        f"Equity: <b>{money(v.equity)}</b> ({pct(v.total_return)} since start at {money(v.starting_cash)})",
        f"Cash: {money(v.cash)}",
        f"Exposure: {money(v.exposure)}",
        f"Realised PnL: {signed(v.realized_pnl)}",
        f"Unrealised PnL: {signed(v.unrealized_pnl)}",
        f"Fees paid: {money(v.fees_paid)}",
    ]
    if v.dust:
        lines.append("Dust (below the exchange's minimum order, in equity, not a position):")
        lines += [dust_line(d) for d in v.dust]
    if v.exchange:
        if v.exchange_at is None:
            lines.append(f"{esc(v.exchange)}: balances not read yet (/reconcile reads them now)")
        else:
            lines.append(f"On {esc(v.exchange)} (read {when(v.exchange_at, tz)}) · the agent's books:")
            lines += [f"• {esc(asset)} {qty(theirs)} · books {qty(ours)}{'' if abs(theirs - ours) <= 1e-9 else ' ⚠️'}"
                      for asset, ours, theirs in v.exchange_balances]
    lines.append(f"<i>As of {when(v.now_ms, tz)}</i>")
    return "\n".join(lines)


def dust_line(d: DustView) -> str:
    """``• BTC 0.00000412 (BTCUSDT), worth 0.12 at 29,876.5000``."""
    worth = money(d.value) if abs(d.value) >= 0.01 else price(d.value)
    symbol = "" if d.asset == d.symbol else f" ({esc(d.symbol)})"
    quote = f" {esc(d.quote)}" if d.quote else ""
    return f"• {esc(d.asset)} {qty(d.quantity)}{symbol}, worth {worth}{quote} at {price(d.mark_price)}"


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
    line = (f"• {when(t.exit_time, tz)} <b>{esc(t.symbol)}</b> {qty(t.quantity)}: {price(t.entry_price)} → "
            f"{price(t.exit_price)} {signed(t.pnl)} ({pct(t.pnl_pct)}), {reason_text(t.exit_reason)}")
    if t.entry_tag or t.exit_tag:  # the strategy's tags: which rule entered, which left
        line += f" [{esc(t.entry_tag or '–')} → {esc(t.exit_tag or '–')}]"
    return line


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


def performance_tags(items: Sequence[TagPerformance], mode: str = "paper") -> str:
    """/performance tags: results by the strategy's entry tag, then by exit tag (or exit reason)."""
    if not items:
        return f"{mode_tag(mode)}: no closed trades yet, so no results by tag."
    lines = [f"{mode_tag(mode)} performance by tag"]
    for kind, title in (("entry", "By entry tag:"), ("exit", "By exit tag (or reason):")):
        rows = [p for p in items if p.kind == kind]
        if not rows:
            continue
        lines.append(title)
        for p in rows:
            lines.append(f"• <b>{esc(p.tag)}</b>: {plural(p.trades, 'trade')}, win rate "
                         f"{pct(p.win_rate, sign=False, decimals=0)}, PnL {signed(p.pnl)}; per trade "
                         f"{pct(p.avg_pnl_pct)} on average")
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
        amount = (qty(a.quantity) if a.quantity is not None else
                  "whole position" if a.amount is None else money(a.amount))
        lines.append(f"{tag}{esc(a.side.upper())} <b>{esc(a.symbol)}</b> {amount} accepted: {esc(a.note)}."
                     f"\nOrder <code>{esc(a.order_id)}</code>")
    return "\n".join(lines)

