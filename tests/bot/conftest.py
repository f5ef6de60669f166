"""Bot test fixtures: PTB_TIMEDELTA for RetryAfter (warnings are errors), and a running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.harness import Harness, running_bot


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB warns (PTBDeprecationWarning) when RetryAfter is built without this; warnings are errors here.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    """The real engine (SimClock, synthetic feed, SQLite) and the real PTB Application on the emulator."""
    async with running_bot(tmp_path) as harness:
        yield harness
