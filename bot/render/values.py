"""The values every text shows, one function per kind, so a number reads the same in every reply and alert.

``money``, ``signed`` (a PnL), ``price``, ``qty`` (a quantity), ``pct`` (a percentage), ``when`` (a time:
``2026-11-24 14:05 UTC``, or in the bot's ``TIMEZONE``), ``duration``, ``plural`` (a count of things) and
``missing`` (an absent or non-finite value); ``esc`` escapes any dynamic value for HTML parse mode.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.core.types import Refusal
from engine.views import SymbolStatus

PAPER = "<b>PAPER</b>"


def esc(value: object) -> str:
    """Any dynamic value, escaped for HTML parse mode."""
    return html.escape(str(value), quote=False)


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
    """The zone named by ``TIMEZONE``; UTC when the name is unknown."""
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
