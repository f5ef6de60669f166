"""The closed trades' read model (engine.results.ClosedTrades behind Store.closed_trades): its figures are the
per-trade computation over the store's trades (``trades_between``, oldest first) to the last bit, whether the trades
were loaded or fed as their steps committed, in any order of exit times; and after the first read, reading it costs
no query however many trades there are."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from engine.core.types import Trade
from engine.results import RECENT, ClosedTrades, Figures
from engine.store import Store
from engine.views import UNTAGGED
from tests.store import factories as f

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
END = f.T0 + 10**10  # after every trade here


def make_trades(n: int, seed: int) -> list[Trade]:
    """Trades whose sums depend on their order (values of many magnitudes), with every kind of tag, exits at
    random times (so the order they are recorded in is not the order they closed in), some at the same time, a
    pnl of -0.0 and of exactly 0.0, and a tag longer than the column (the store keeps 63 characters and "…")."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        pnl = rng.choice([-1.0, 1.0]) * rng.random() * 10.0 ** rng.randint(-4, 5)
        if k % 97 == 5:
            pnl = -0.0
        elif k % 89 == 7:
            pnl = 0.0
        exit_time = f.T0 + rng.randrange(0, 40) * f.MINUTE * 30  # many share an exit time
        entry_tag = rng.choice([None, "breakout", "dip", "x" * 80])
        exit_tag = rng.choice([None, None, "trail", "tp1"])
        out.append(Trade(rng.choice(SYMBOLS), "long", exit_time - f.MINUTE, exit_time, 100.0, 101.0, 0.5,
                         rng.random() * 10.0 ** rng.randint(-3, 1), pnl, rng.choice(["signal", "stop_loss"]),
                         pnl / (rng.random() * 10.0 ** rng.randint(1, 4) + 1.0), entry_tag, exit_tag))
    return out


async def record(store: Store, trades: Sequence[Trade], first: int = 0) -> None:
    """The trades through record_step, a few per step (each step its own candle)."""
    for i in range(0, len(trades), 3):
        assert await store.record_step(f.step(f.T0 + (first + i) * f.MINUTE, trades=trades[i:i + 3]))


def figures(trades: Sequence[Trade]) -> Figures:
    """The per-trade computation the read side did before the read model (engine.results before it)."""
    pct = tuple(t.pnl_pct for t in trades)
    return Figures(len(trades), sum(1 for t in trades if t.pnl > 0), sum(t.pnl for t in trades),
                   sum(t.fee for t in trades), sum(pct), max(pct, default=None), min(pct, default=None))


def grouped(trades: Sequence[Trade], key: Callable[[Trade], str]) -> dict[str, Figures]:
    groups: dict[str, list[Trade]] = {}
    for t in trades:
        groups.setdefault(key(t), []).append(t)
    return {k: figures(v) for k, v in groups.items()}


def bits(value: Any) -> str:
    """repr tells -0.0 from 0.0 and shows every digit: equal reprs are equal floats to the last bit (a dict's
    groups by name: the read side orders them itself)."""
    return repr(sorted(value.items()) if isinstance(value, dict) else value)


async def assert_matches(store: Store, closed: ClosedTrades) -> None:
    stored = await store.trades_between(0, END)  # oldest first: exit time, then id
    assert len(closed) == len(stored) == await store.trade_count()
    assert bits(closed.by_symbol()) == bits(grouped(stored, lambda t: t.symbol))
    assert bits(closed.by_entry_tag()) == bits(grouped(stored, lambda t: t.entry_tag or UNTAGGED))
    assert bits(closed.by_exit_tag()) == bits(grouped(stored, lambda t: t.exit_tag or t.exit_reason))
    cut = stored[len(stored) // 2].exit_time  # only the trades closed before a time, as a read at that time
    before = [t for t in stored if t.exit_time < cut]
    assert bits(closed.by_symbol(cut)) == bits(grouped(before, lambda t: t.symbol))
    for start, end in ((0, END), (f.T0 + 3 * 30 * f.MINUTE, f.T0 + 17 * 30 * f.MINUTE), (cut, cut + 1), (END, END)):
        assert bits(closed.between(start, end)) == bits(figures(await store.trades_between(start, end)))
    for limit, offset in ((10, 0), (200, 0), (7, 33), (5, len(stored) - 2), (5, len(stored) + 3)):
        page = closed.newest(limit, offset)
        if page is None:  # past the newest RECENT kept whole: the facade asks the store
            assert offset + limit > RECENT < len(stored)
        else:
            assert page == await store.trades(limit, offset)


async def test_read_model_equals_the_per_trade_computation(store: Store, db_url: str) -> None:
    trades = make_trades(900, seed=7)
    # the data can tell: summed in another order, the figures differ
    assert sum(t.pnl for t in trades) != sum(t.pnl for t in sorted(trades, key=lambda t: t.exit_time))
    await record(store, trades[:400])
    closed = await store.closed_trades()  # loaded from the database
    await assert_matches(store, closed)
    await record(store, trades[400:], first=400)  # fed as each step commits, out of order of exit time
    assert await store.closed_trades() is closed
    await assert_matches(store, closed)
    assert {t.entry_tag for t in (await store.trades_between(0, END))} >= {"x" * 63 + "…"}

    reopened = await Store.open(db_url)  # a restart: the same figures, loaded at once
    try:
        assert bits((await reopened.closed_trades()).by_symbol()) == bits(closed.by_symbol())
    finally:
        await reopened.close()


async def test_figures_read_after_every_step_stay_exact(store: Store) -> None:
    """Read after each step (a group's figures then move on by the newest trade, where the interpreter's sum is a
    plain fold) and after trades that close before others already in (recomputed): still the per-trade figures."""
    await record(store, make_trades(60, seed=11))
    closed = await store.closed_trades()
    later = [dataclasses.replace(t, exit_time=END - 10**9 + k * f.MINUTE) for k, t in enumerate(make_trades(150, 12))]
    late = make_trades(30, seed=13)  # exits among the first ones'
    for i, t in enumerate(later + late):
        assert await store.record_step(f.step(f.T0 + (1000 + i) * f.MINUTE, trades=[t]))
        closed.by_symbol()
        closed.by_entry_tag()
        closed.by_exit_tag()
        closed.between(0, END)
        closed.between(END - 10**9 + 40 * f.MINUTE, END)
        if i + 1 == len(later):  # every one the newest so far
            await assert_matches(store, closed)
    await assert_matches(store, closed)


async def test_trades_committed_while_the_model_loads_are_in_it_once(store: Store) -> None:
    await record(store, make_trades(600, seed=21))
    loading = asyncio.create_task(store.closed_trades())  # its queries and these steps' commits interleave
    for i, t in enumerate(make_trades(12, seed=22)):
        assert await store.record_step(f.step(f.T0 + (5000 + i) * f.MINUTE, trades=[t]))
    await assert_matches(store, await loading)


async def test_a_step_that_fails_feeds_nothing(store: Store) -> None:
    await record(store, make_trades(30, seed=3))
    closed = await store.closed_trades()
    version = closed.version
    again = f.step(f.T0, trades=make_trades(3, seed=4))  # the same candle: refused, rolled back
    assert await store.record_step(again) is False
    assert closed.version == version
    await assert_matches(store, closed)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store's engine sends meanwhile."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    engine = store._engine.sync_engine  # the store's own engine: every statement passes here
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def test_reads_after_the_first_cost_no_query_however_many_trades(store: Store) -> None:
    loads: dict[int, int] = {}  # queries of the first read
    for n in (300, 3_000):
        await record(store, make_trades(n - len(await store.trades_between(0, END)), seed=n), first=10 * n)
        fresh = Store(store._engine)  # a new process's store over the same database
        with statements(fresh) as first:
            closed = await fresh.closed_trades()
        assert len(closed) == n
        loads[n] = len([s for s in first if s.startswith("SELECT")])
        more = make_trades(6, seed=n + 1)
        await record(fresh, more, first=20 * n)
        with statements(fresh) as later:
            for _ in range(20):
                closed = await fresh.closed_trades()
                closed.by_symbol()
                closed.by_entry_tag()
                closed.between(0, END)
                closed.newest(10)
        assert later == []  # the reads after it: none, at 300 trades as at 3,000
        assert len(closed) == n + 6
        await assert_matches(fresh, closed)
    assert loads == {300: 2, 3_000: 2}  # the figures of every trade, the newest whole: as many at 3,000 as at 300


async def test_equity_before_is_kept_once_a_later_snapshot_exists(store: Store) -> None:
    assert await store.record_step(f.step(f.T0, equity=10_010.0, now_ms=f.T0 + f.MINUTE))
    with statements(store) as sent:
        assert await store.equity_before(f.T0 + 2 * f.MINUTE, inclusive=True) == 10_010.0  # none after it yet
        assert await store.equity_before(f.T0 + 2 * f.MINUTE, inclusive=True) == 10_010.0
    assert len([s for s in sent if s.startswith("SELECT")]) == 2  # asked twice: it could still change
    assert await store.record_step(f.step(f.T0 + f.MINUTE, equity=10_020.0, now_ms=f.T0 + 2 * f.MINUTE))
    assert await store.equity_before(f.T0 + 2 * f.MINUTE, inclusive=True) == 10_020.0  # at it: counted
    assert await store.record_step(f.step(f.T0 + 2 * f.MINUTE, equity=10_030.0, now_ms=f.T0 + 3 * f.MINUTE))
    with statements(store) as sent:
        for _ in range(3):
            assert await store.equity_before(f.T0 + 2 * f.MINUTE, inclusive=True) == 10_020.0
            assert await store.equity_before(f.T0 + 2 * f.MINUTE) == 10_010.0
    assert len([s for s in sent if s.startswith("SELECT")]) == 2  # once each, then kept: a later snapshot exists
