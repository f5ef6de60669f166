"""Formatting for people, HTML escaping of hostile values, and splitting long replies."""

from __future__ import annotations

import html

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render
from engine.core.types import PositionView, Trade
from engine.views import BalanceView, StatusView, SymbolStatus, TradesPage
from sim.botapi.state import parse_html

HOSTILE = '<b>x</b>&amp;<a href="javascript:alert(1)">*_[`]</a>\\'


def plain(text: str) -> str:
    return parse_html(text)[0]


@pytest.mark.parametrize(("value", "expected"), [
    (1234567.891, "1,234,567.89"), (0.0, "0.00"), (-0.001, "0.00"), (float("nan"), "n/a"), (None, "n/a"),
    (float("inf"), "n/a"),
])
def test_money_has_thousands_separators_and_two_decimals(value: float | None, expected: str) -> None:
    assert render.money(value) == expected


def test_pnl_and_percentages_are_signed() -> None:
    assert render.signed(12.5) == "+12.50"
    assert render.signed(-3) == "-3.00"
    assert render.signed(0.0) == "0.00"
    assert render.pct(0.01234) == "+1.23%"
    assert render.pct(-0.5) == "-50.00%"
    assert render.pct(0.25, sign=False, decimals=0) == "25%"


def test_prices_get_decimals_that_suit_their_size() -> None:
    assert render.price(30123.456) == "30,123.46"
    assert render.price(12.3456789) == "12.3457"
    assert render.price(0.000123456) == "0.00012346"
    assert render.qty(0.50000000) == "0.5"
    assert render.qty(3.0) == "3"


def test_times_are_utc_by_default_and_in_the_configured_zone() -> None:
    ms = 1795529100000  # 2026-11-24 14:05 UTC
    assert render.when(ms) == "2026-11-24 14:05 UTC"
    assert render.when(ms, render.zone("Europe/Berlin")) == "2026-11-24 15:05 CET"
    assert render.zone("Not/AZone") is render.zone("UTC")
    assert render.duration(3 * 86400 + 4 * 3600 + 5) == "3d 4h"


def status_view(symbol: str, synthetic: bool) -> StatusView:
    return StatusView("paper", False, "ACTIVE", HOSTILE, 1e4, 1e4, 0, 0, 0, HOSTILE, "5m",
                      (SymbolStatus(symbol, 0, 1.5, True, 0.0, synthetic),))


def test_hostile_values_are_escaped_everywhere() -> None:
    trade = Trade(HOSTILE, "long", 0, 60_000, 10.0, 11.0, 1.0, 0.01, 0.99, HOSTILE, 0.099)
    pos = PositionView(HOSTILE, 1.0, 10.0, 0, 11.0, 1.0, 9.0, None, None)
    texts = [render.status(status_view(HOSTILE, True)), render.trades(TradesPage((trade,), 1, 0)),
             render.positions([pos], [HOSTILE]), render.risk({HOSTILE: 0.5})]
    for text in texts:
        shown = plain(text)  # parses: no markup injected
        assert HOSTILE in shown


def test_synthetic_prices_are_labelled() -> None:
    assert "(synthetic)" in plain(render.status(status_view("BTCUSDT", True)))
    assert "synthetic" not in plain(render.status(status_view("BTCUSDT", False)))
    pos = PositionView("BTCUSDT", 1.0, 10.0, 0, 11.0, 1.0, None, None, None)
    assert "(synthetic)" in plain(render.positions([pos], ["BTCUSDT"]))


def test_paper_is_said_on_money_views() -> None:
    bal = BalanceView("paper", 1, 1, 0, 1, 0, 0, 0, 0, 0)
    assert plain(render.balance(bal)).startswith("PAPER")
    assert plain(render.trades(TradesPage((), 0, 0))).startswith("PAPER")


def test_short_text_is_one_message() -> None:
    assert render.split_html("<b>hi</b>") == ["<b>hi</b>"]
    assert render.split_html("  \n ") == []


def test_long_text_splits_at_line_boundaries() -> None:
    lines = [f"<b>line {i}</b> {'x' * 90} &amp; more" for i in range(200)]
    chunks = render.split_html("\n".join(lines))
    assert len(chunks) > 4
    assert all(len(c) <= render.MAX_MESSAGE for c in chunks)
    assert [line for c in chunks for line in c.split("\n")] == lines  # never cut inside a line


def test_one_huge_line_is_cut_between_tags_with_tags_reopened() -> None:
    text = "<b>" + "&lt;word&gt; " * 2000 + "</b>"
    chunks = render.split_html(text, limit=1000)
    assert len(chunks) > 5
    for c in chunks:
        assert len(c) <= 1000
        assert c.startswith("<b>") and c.endswith("</b>")
        parse_html(c)
    assert "".join(plain(c) + " " for c in chunks).split() == plain(text).split()


piece = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=80).map(html.escape),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=30).map(
        lambda t: f"<b>{html.escape(t)}</b>"),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=30).map(
        lambda t: f"<i><code>{html.escape(t)}</code></i>"),
    st.just("\n"),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(piece, max_size=120), st.integers(min_value=200, max_value=1200))
def test_split_pieces_are_valid_html_within_the_limit_and_lose_no_text(parts: list[str], limit: int) -> None:
    text = "".join(parts)
    chunks = render.split_html(text, limit=limit)
    for c in chunks:
        assert len(c.encode("utf-16-le")) // 2 <= limit
        parse_html(c)  # raises on a cut tag or entity
    assert "".join(plain(c) for c in chunks).replace("\n", "").replace(" ", "") == \
        plain(text).replace("\n", "").replace(" ", "") if plain(text).strip() else chunks == []


@pytest.mark.parametrize(("count", "expected"),
                         [(0, "0 trades"), (1, "1 trade"), (2, "2 trades"), (1500, "1,500 trades")])
def test_counts_agree_with_their_noun(count: int, expected: str) -> None:
    assert render.plural(count, "trade") == expected


def test_a_quantity_reads_the_same_in_an_alert_and_in_a_reply() -> None:
    from engine.events import OrderFilled, PositionOpened

    for quantity, shown in [(0.03252481, "0.03252481"), (1234.5, "1,234.5"), (0.00001, "0.00001"), (2.0, "2")]:
        filled = OrderFilled(ts=0, order_id="o", symbol="BTCUSDT", side="buy", quantity=quantity, price=30_000.0,
                             fee=1.0, reason="manual")
        opened = PositionOpened(ts=0, symbol="BTCUSDT", quantity=quantity, price=30_000.0, stop_price=None,
                                target_price=None)
        pos = PositionView("BTCUSDT", quantity, 30_000.0, 0, 30_100.0, 1.0, None, None, None)
        for text in (render.alert_text(filled), render.alert_text(opened), render.positions([pos])):
            assert f"{shown} @ 30,000.00" in plain(text), text
        assert "target none" in plain(render.alert_text(opened))  # a level switched off, not a missing value


def test_a_missing_value_reads_the_same_everywhere() -> None:
    from engine.events import ProtectiveExitHit

    hit = ProtectiveExitHit(ts=0, symbol="BTCUSDT", trigger="stop_loss", level=float("nan"), fill_price=1.0)
    assert f"Level {render.missing()}" in plain(render.alert_text(hit))
    assert render.price(None) == render.qty(None) == render.pct(None) == render.money(None) == render.missing()


def test_a_signal_fill_names_its_rule_or_model() -> None:
    from engine.events import OrderFilled

    fill = OrderFilled(ts=0, order_id="o", symbol="BTCUSDT", side="buy", quantity=1.0, price=1.0, fee=0.0,
                       reason="signal", source="sma-cross(10,30)")
    assert "Reason: sma-cross(10,30) signal" in plain(render.alert_text(fill))
    assert "model" not in plain(render.alert_text(fill))
    older = OrderFilled(ts=0, order_id="o", symbol="BTCUSDT", side="buy", quantity=1.0, price=1.0, fee=0.0,
                        reason="signal")  # an outbox row from before sources were recorded
    assert "Reason: signal\n" in plain(render.alert_text(older))
