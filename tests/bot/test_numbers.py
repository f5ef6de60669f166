"""Numbers a user can trust: one PnL percentage per trade, the same in the alert, /trades, /performance and
the backtest JSON, and the texts around them (reasons, /signal, plurals, /daily, quantities).

The live side is the real engine and the real python-telegram-bot Application on the Bot API emulator,
trading real candles from the shipped sample one closed candle at a time; the backtest is the real
``trading-agent backtest`` process over the same candles with the same trading config.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path
from statistics import fmean

from bot import render
from bot.alerts import AlertSender
from config.settings import load_trading_config
from engine.core.clock import SimClock
from engine.feeds.base import Feed
from engine.feeds.replay import ReplayFeed
from sim.botapi import SentMessage
from tests.bot.harness import ADMIN, TF, Harness, running_bot
from tests.engine.helpers import real_candles

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTCUSDT"
ALERT_CHAT = 777
CANDLES = 400
FEE_RATE = 10 / 10_000
CONFIG = """
[trading]
symbols = ["BTCUSDT"]
timeframe = "5m"
update_interval = 3600
fast = 5
slow = 20

[signal_filters]
min_confidence = 0.6

[risk]
position_fraction = 0.5
max_position_fraction = 0.6
max_total_exposure = 1.0
stop_loss_pct = 0.004
take_profit_pct = 0.0
trailing_stop_pct = 0.0
max_daily_loss_pct = 0.0
max_drawdown_pct = 0.0

[paper]
starting_cash = 10000.0
fee_bps = 10.0
slippage_bps = 5.0

[feed]
source = "synthetic"
history = 50
stale_after = 1000
"""
CLOSED_RE = re.compile(r"Position closed: BTCUSDT\n.*\nPnL ([+-]?[\d,.]+) \(([+-][\d.]+%)\)\nReason: (.+)\n")
TRADE_LINE_RE = re.compile(r"• .* BTCUSDT [\d.,]+: [\d.,]+ → [\d.,]+ [+-]?[\d,.]+ \(([+-][\d.]+%)\), (.+)")


def backtest_json(tmp_path: Path, config: Path) -> dict[str, object]:
    """The real CLI over the first CANDLES candles of the sample file, written as a CSV of its own."""
    src = (ROOT / "data" / "sample" / "BTC_USDT-5m.csv").read_text().splitlines()
    data = tmp_path / "BTC_USDT-5m.csv"
    data.write_text("\n".join(src[:CANDLES + 1]) + "\n")
    out = tmp_path / "bt.json"
    done = subprocess.run([sys.executable, "-m", "engine.cli", "backtest", "--data", str(data), "--symbol", SYMBOL,
                           "--fast", "5", "--slow", "20", "--fee-bps", "10", "--slippage-bps", "5", "--cash", "10000",
                           "--config", str(config), "--json", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded: dict[str, object] = json.loads(out.read_text())
    return loaded


async def closed_alerts(h: Harness, count: int) -> list[SentMessage]:
    messages = await h.emu.wait_for_messages(ALERT_CHAT, 1, timeout=10.0)
    for _ in range(200):
        messages = h.emu.transcript(ALERT_CHAT)
        closed = [m for m in messages if m.text and "Position closed" in m.text]
        if len(closed) >= count:
            return closed
        with contextlib.suppress(TimeoutError):  # none in this 0.1 s (a loaded machine): look again
            await h.emu.wait_for_messages(ALERT_CHAT, len(messages) + 1, timeout=0.1)
    raise AssertionError(f"{count} position-closed alerts expected, got {len(closed)}")


async def test_alert_trades_performance_and_backtest_json_show_one_pnl_pct(tmp_path: Path) -> None:
    config_path = tmp_path / "trading.toml"
    config_path.write_text(CONFIG)
    config = load_trading_config(config_path)
    candles = real_candles("BTC_USDT-5m.csv").slice(0, CANDLES)
    clock = SimClock(int(candles.ts[0]))  # nothing has closed yet: every candle is decided live
    feeds: dict[str, Feed] = {SYMBOL: ReplayFeed(candles, SYMBOL, TF, clock)}
    signal_while_exiting: list[str] = []
    async with running_bot(tmp_path, symbols=(SYMBOL,), config=config, feeds=feeds, clock=clock) as h:
        facade = h.engine.facade
        await facade.register_chat(ALERT_CHAT)
        sender = AlertSender(h.app.bot, facade, poll_interval=30.0, max_backoff=0.4, chat_rate=0.0)
        h.engine.bus.subscribe(sender.on_event)
        sender.start()
        try:
            st = h.engine.engine.symbols[SYMBOL]
            for _ in range(CANDLES - 1):
                await h.candle()
                last = st.last_signal
                if (not signal_while_exiting and last is not None and last.outcome == "order" and last.action < 0
                        and facade.positions()):
                    (answer,) = await h.ask(ADMIN, ADMIN, f"/signal {SYMBOL}")
                    signal_while_exiting.append(answer.text or "")
            trades = list(reversed((await facade.trades(1000)).items))  # oldest first
            assert len(trades) >= 5
            alerts = await closed_alerts(h, len(trades))
        finally:
            h.engine.bus.unsubscribe(sender.on_event)
            await sender.stop(1.0)
        (trades_reply,) = await h.ask(ADMIN, ADMIN, "/trades 50")
        (performance,) = await h.ask(ADMIN, ADMIN, "/performance")

    # the definition, checked from the trade's own numbers: PnL net of both fees over entry notional + entry fee
    for t in trades:
        entry_cost = t.entry_price * t.quantity * (1 + FEE_RATE)
        assert abs(t.pnl_pct - t.pnl / entry_cost) <= 1e-12
    shown = [render.pct(t.pnl_pct) for t in trades]
    # not the price change (what /trades showed before): the fees make them differ
    assert any(s != render.pct(t.exit_price / t.entry_price - 1.0) for s, t in zip(shown, trades, strict=True))

    # the alerts
    parsed = [CLOSED_RE.search(m.text or "") for m in alerts]
    assert all(parsed), [m.text for m in alerts]
    assert [p.group(2) for p in parsed if p] == shown
    reasons = {p.group(3) for p in parsed if p}
    assert reasons <= {"sma-cross(5,20) signal", "stop-loss"} and "sma-cross(5,20) signal" in reasons
    # /trades, newest first
    lines = [TRADE_LINE_RE.match(line) for line in (trades_reply.text or "").splitlines()[1:]]
    assert all(lines), trades_reply.text
    assert [m.group(1) for m in lines if m][::-1] == shown
    assert f"of {len(trades)} closed trades" in (trades_reply.text or "")
    # /performance: the average, best and worst of the same percentages
    pcts = [t.pnl_pct for t in trades]
    assert (f"{len(trades)} trades" in (performance.text or "")
            and f"per trade {render.pct(fmean(pcts))} on average, best {render.pct(max(pcts))}, "
                f"worst {render.pct(min(pcts))}" in (performance.text or "")), performance.text
    # the backtest JSON: the same trades, each with the same pnl_pct
    report = backtest_json(tmp_path, config_path)
    rows = report["trades"]
    assert isinstance(rows, list)
    assert [(r["entry_time"], r["exit_time"], r["quantity"], r["pnl"], r["pnl_pct"]) for r in rows] == [
        (t.entry_time, t.exit_time, t.quantity, t.pnl, t.pnl_pct) for t in trades]
    assert [render.pct(r["pnl_pct"]) for r in rows] == shown

    # /signal with an exit order placed while holding: it would trade (sell), and says so without contradiction
    assert signal_while_exiting, "no exit order was placed while the test traded"
    assert "Would trade now: yes: exit (sell) at the next candle's open" in signal_while_exiting[0]
    assert "already holding a position" not in signal_while_exiting[0]
