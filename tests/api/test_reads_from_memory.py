"""The API's reads of closed trades (performance by symbol and by tag, pnl of every period, daily, the newest
trades) answer from the store's read model: after the first, they send no query about trades or equity to the
database, and a trade closed meanwhile is in the next answer at once (fed as its step commits)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from engine.store import Store
from tests.api.rig import ADMIN, ApiRig, running_api

READS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("performance", {}), ("performance", {"by": "tags"}), ("pnl", {"period": "day"}), ("pnl", {"period": "all"}),
    ("trades", {"limit": 20}), ("daily", {"days": 3}))


@contextmanager
def ledger_queries(store: Store) -> Iterator[list[str]]:
    """The statements about trades or equity snapshots the store's engine sends meanwhile."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "trades" in statement or "equity_snapshots" in statement:
            sent.append(statement)

    engine = store._engine.sync_engine  # the store's own engine: every statement passes here
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def round_trip(rig: ApiRig, token: str, symbol: str, amount: float) -> None:
    for body in ({"symbol": symbol, "side": "buy", "amount": amount}, {"symbol": symbol, "side": "sell"}):
        answer = await rig.client.post("/api/v1/trade", json=body, headers=rig.act(token))
        assert answer.status_code in (200, 202), answer.text
        await rig.bot.candle(2)


async def test_closed_trade_reads_send_no_query_and_see_new_trades(tmp_path: Path) -> None:
    async with running_api(tmp_path) as rig:
        token = await rig.chat_token(ADMIN)
        store = rig.bot.engine.store
        await round_trip(rig, token, "BTCUSDT", 1000.0)
        for path, params in READS:  # the first read loads the model (and the equity at the day's start)
            await rig.get(path, token, **params)
        with ledger_queries(store) as sent:
            before = {(path, tuple(params.items())): await rig.get(path, token, **params) for path, params in READS}
        # none about trades; about equity only daily's series of snapshots (the equity at a period's start is kept)
        assert len(sent) == 1 and "FROM equity_snapshots" in sent[0] and "trades" not in sent[0], sent
        assert before[("trades", (("limit", 20),))]["total"] == 1

        await round_trip(rig, token, "ETHUSDT", 700.0)
        with ledger_queries(store) as sent:
            trades = await rig.get("trades", token, limit=20)
            performance = await rig.get("performance", token)
            pnl = await rig.get("pnl", token, period="all")
        assert not [s for s in sent if "FROM trades" in s], sent
        assert trades["total"] == 2 and [t["symbol"] for t in trades["items"]] == ["ETHUSDT", "BTCUSDT"]
        assert {row["name"]: row["trades"] for row in performance["items"]}["ETHUSDT"] == 1
        assert pnl["trades"] == 2
        # the same figures as the store's own per-trade rows
        stored = await store.trades_between(0, 2**62)
        assert pnl["fees"] == sum(t.fee for t in stored)
        assert sorted(t["pnl"] for t in trades["items"]) == sorted(t.pnl for t in stored)
