"""Every text the bot shows: replies, alerts and chart captions, in HTML parse mode with every dynamic value
escaped, and long replies split. Callers use ``from bot import render`` / ``from bot.render import ...``.

By topic:

* ``values``: one function per kind of value, used by all the others (``money``, ``signed``, ``price``,
  ``qty``, ``pct``, ``when``, ``duration``, ``plural``, ``missing``, ``esc``);
* ``views``: the replies to the read commands, from the engine's snapshots;
* ``modelinfo``: models, their out-of-sample metrics and health, and a retrain's result;
* ``alerts``: ``alert_text``, the alert of each engine event;
* ``split``: ``split_html``, which cuts a reply longer than Telegram's 4,096 characters into several.

Prices from synthetic feeds carry the word "synthetic" wherever they show; every trade message says
PAPER while the agent paper-trades.
"""

from __future__ import annotations

from bot.render.alerts import ALERTS, alert_text
from bot.render.modelinfo import models, out_of_sample, retrain_result
from bot.render.split import MAX_MESSAGE, split_html
from bot.render.values import (
    PAPER,
    duration,
    esc,
    market_price,
    missing,
    mode_tag,
    money,
    number,
    pct,
    plural,
    price,
    price_age,
    qty,
    reason_text,
    refusal,
    signed,
    synthetic_tag,
    when,
    zone,
)
from bot.render.views import (
    balance,
    daily,
    health,
    order_ack,
    performance,
    performance_tags,
    pnl,
    positions,
    risk,
    signal,
    status,
    trade_line,
    trades,
)

__all__ = [
    "ALERTS", "MAX_MESSAGE", "PAPER", "alert_text", "balance", "daily", "duration", "esc", "health",
    "market_price", "missing", "mode_tag", "models", "money", "number", "order_ack", "out_of_sample", "pct",
    "performance", "performance_tags", "plural", "pnl", "positions", "price", "price_age", "qty", "reason_text",
    "refusal", "retrain_result", "risk", "signal", "signed", "split_html", "status", "synthetic_tag", "trade_line",
    "trades", "when", "zone",
]
