"""A strategy's tags in the chat: /trades shows each trade's entry and exit tag, /performance tags groups the
closed trades by them (exits without a tag by their reason), with figures computed from the same trades.

The real engine trades real candles one closed candle at a time with a tagged strategy from a file (as the
worker's [trading] strategy), and the real python-telegram-bot answers on the Bot API emulator."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from bot import render
from config.settings import load_trading_config
from engine.core.clock import SimClock
from engine.feeds.base import Feed
from engine.feeds.replay import ReplayFeed
from tests.bot.harness import ADMIN, TF, running_bot
from tests.engine.helpers import real_candles

SYMBOL = "BTCUSDT"
CANDLES = 700
TAGGED = '''
import numpy as np
from engine.strategy import Strategy, crossed_above, crossed_below, ema, rsi


class Tagged(Strategy):
    startup_candles = 30

    def populate_indicators(self, df):
        df["fast"] = ema(df["close"], 5)
        df["slow"] = ema(df["close"], 13)
        df["rsi"] = rsi(df["close"], 14)
        return df

    def populate_entry_trend(self, df):
        cross = crossed_above(df["fast"], df["slow"])
        dip = df["rsi"] < 35
        df["enter_long"] = (cross | dip).astype(int)
        df["enter_tag"] = np.where(cross, "ema_cross", np.where(dip, "rsi_dip", None))
        return df

    def populate_exit_trend(self, df):
        cross = crossed_below(df["fast"], df["slow"])
        df["exit_long"] = cross.astype(int)
        df["exit_tag"] = np.where(cross, "ema_down", None)
        return df
'''
CONFIG = """
[trading]
symbols = ["BTCUSDT"]
timeframe = "5m"
update_interval = 3600
strategy = "{path}:Tagged"

[signal_filters]
min_confidence = 0.0

[risk]
position_fraction = 0.5
max_position_fraction = 0.6
stop_loss_pct = 0.0025
take_profit_pct = 0.0
trailing_stop_pct = 0.0
max_daily_loss_pct = 0.0
max_drawdown_pct = 0.0

[feed]
source = "synthetic"
history = 300
stale_after = 1000
"""


async def test_trades_and_performance_tags_show_the_strategys_tags(tmp_path: Path) -> None:
    strategy = tmp_path / "tagged.py"
    strategy.write_text(TAGGED, encoding="utf-8")
    config_path = tmp_path / "trading.toml"
    config_path.write_text(CONFIG.format(path=strategy))
    config = load_trading_config(config_path)
    candles = real_candles("BTC_USDT-5m.csv").slice(0, CANDLES)
    clock = SimClock(int(candles.ts[0]))
    feeds: dict[str, Feed] = {SYMBOL: ReplayFeed(candles, SYMBOL, TF, clock, history=300)}
    async with running_bot(tmp_path, symbols=(SYMBOL,), config=config, feeds=feeds, clock=clock) as h:
        for _ in range(CANDLES - 1):
            await h.candle()
        trades = list((await h.engine.facade.trades(1000)).items)
        (trades_reply,) = await h.ask(ADMIN, ADMIN, "/trades 50")
        (by_tag,) = await h.ask(ADMIN, ADMIN, "/performance tags")
        (bad,) = await h.ask(ADMIN, ADMIN, "/performance tag")

    assert len(trades) >= 5
    entry_tags = {t.entry_tag for t in trades}
    assert entry_tags <= {"ema_cross", "rsi_dip"} and "ema_cross" in entry_tags, entry_tags
    assert {t.exit_tag for t in trades if t.exit_reason == "signal"} == {"ema_down"}
    assert all(t.exit_tag is None for t in trades if t.exit_reason != "signal")

    shown = re.findall(r"\[(\S+) → (\S+)\]", trades_reply.text or "")
    assert shown == [(t.entry_tag or "–", t.exit_tag or "–") for t in trades[:50]]

    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for t in trades:
        groups[("entry", t.entry_tag or "(no tag)")].append(t.pnl)
        groups[("exit", t.exit_tag or t.exit_reason)].append(t.pnl)
    text = by_tag.text or ""
    assert "By entry tag:" in text and "By exit tag (or reason):" in text
    for (_, tag), pnls in groups.items():
        line = next(line for line in text.splitlines() if line.startswith(f"• {tag}:"))
        assert f"{len(pnls)} trade" in line and f"PnL {render.signed(sum(pnls))}" in line, (tag, line)
    stops = {t.exit_reason for t in trades if t.exit_reason != "signal"}
    assert all(f"• {reason}:" in text for reason in stops)  # exits without a tag (the stops'), by their reason
    assert "tags" in (bad.text or "") and "must be one of" in (bad.text or "")
