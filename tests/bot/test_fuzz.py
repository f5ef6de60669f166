"""Fuzz every command's arguments through the real bot: always an answer, never an error, never a change.

Hypothesis drives synchronous tests, so the stack runs in one ``asyncio.Runner`` kept for the module
(starting it per example would cost ~0.4 s each); each example is run to completion in that loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.app import COMMANDS, GENERIC_ERROR
from engine.events import ALERT_KINDS
from engine.facade import ALERT_MODES
from tests.bot.harness import ADMIN, Harness, running_bot

SPECIAL = [
    "", "0", "-1", "-0", "0.0", "00", "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e-309", "1e3",
    "0.000000001", "99999999999999999999", "1000000000000", "1,000", "1_000", "0x10", "١٢٣", "１２３", "5%", "+5",
    "BTCUSDT", "btcusdt", "ETHUSDT", "DOGEUSDT", "BTC", "all", "ALL", "day", "week", "month", "year", "all-time",
    "on", "off", "silent", "feed", "model", "stop_loss_pct", "position_fraction", "max_drawdown_pct",
    "<b>", "</b>", "<i>x", "&amp;", "&", "&#0;", "<", ">", "*bold*", "_it_", "`code`", "```", "[x](http://e.x)",
    "||spoiler||", "\\", "'", '"', "@paper_agent_bot", "/start", "\u200b", "\u202e", "🚀", "𝟙", "\ufeff", "%s",
    "{}", "None", "null", "True", "-", "--", ".", "..", "1.", ".5", "5.", "1e", "e5",
]
token = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=24),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats().map(repr),
    st.text(alphabet="<>&*_`[]()#+-=|{}.!\\0123456789aZ", min_size=300, max_size=1500),
)
arguments = st.lists(token, max_size=4)


class Stack:
    """The harness running in its own loop, driven synchronously."""

    def __init__(self, manager: AbstractAsyncContextManager[Harness]) -> None:
        self.runner = asyncio.Runner()
        self.manager = manager
        self.harness = self.runner.run(manager.__aenter__())

    def run(self, coro: object) -> object:
        return self.runner.run(coro)  # type: ignore[arg-type]

    def close(self) -> None:
        self.runner.run(self.manager.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    mp = pytest.MonkeyPatch()
    mp.setenv("PTB_TIMEDELTA", "true")
    s = Stack(running_bot(tmp_path_factory.mktemp("fuzz")))
    s.run(s.harness.candle(2))
    try:
        yield s
    finally:
        s.close()
        mp.undo()


async def check(h: Harness, text: str) -> None:
    errors, before = h.errors_seen, await h.state()
    replies = await h.ask(ADMIN, ADMIN, text)
    assert replies, f"no answer to {text!r}"
    assert all((m.text or "").strip() and m.text != GENERIC_ERROR for m in replies), text
    assert h.errors_seen == errors, f"an exception escaped a handler for {text!r}"
    assert await h.state() == before, f"{text!r} changed state without a confirmation"


def legit_change(name: str, args: list[str]) -> bool:
    """Only /alerts with a valid type and mode changes something without asking."""
    return (name == "alerts" and len(args) == 2 and args[0].lower() in ALERT_KINDS
            and args[1].lower() in ALERT_MODES)


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_any_arguments_get_an_answer_and_change_nothing(stack: Stack, name: str) -> None:
    examples = 15 if name in ("chart", "equity") else 30  # charts render a PNG per valid example

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(args=arguments)
    def run(args: list[str]) -> None:
        assume(not legit_change(name, args))
        text = f"/{name} {' '.join(args)}".rstrip()
        assume(len(text) <= 4096)
        stack.run(check(stack.harness, text))

    sent = len(stack.harness.emu.transcript(ADMIN))
    run()
    assert len(stack.harness.emu.transcript(ADMIN)) - sent >= examples // 2  # the examples really ran
    assert stack.harness.errors_seen == 0
