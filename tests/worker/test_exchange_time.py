"""The worker's clock against an exchange whose time runs 600x (the fake exchange) or 1x (Binance),
sampled through requests of random, sometimes long, duration: it never runs ahead of the exchange
(that would take the open candle for a closed one) and it converges to the exchange's time."""

from __future__ import annotations

import random

import pytest

from engine.feeds.exchange_time import ExchangeTime


@pytest.mark.parametrize("speed", [1.0, 600.0])
def test_never_ahead_and_converges(speed: float) -> None:
    rng = random.Random(int(speed))
    wall = [1_000_000]

    def server_at(w: float) -> int:
        return int(5_000_000_000 + (w - 1_000_000) * speed)

    def sample() -> tuple[int, int, int]:
        before = wall[0]
        rtt = rng.choice([1, 5, 20, 400, 1500])  # a loaded machine: some requests take seconds
        at = before + rng.uniform(0, rtt)
        wall[0] = before + rtt
        return server_at(at), before, wall[0]

    clock = ExchangeTime(*sample(), wall=lambda: wall[0])
    worst_lag = 0.0
    for step in range(400):
        wall[0] += rng.randint(0, 300)
        now = clock.now_ms()
        assert now <= server_at(wall[0]) + 1, f"ahead by {now - server_at(wall[0])} ms at step {step}"
        if step > 300:
            worst_lag = max(worst_lag, server_at(wall[0]) - now)
        if step % 4 == 0:
            clock.resync(*sample())
    assert worst_lag <= 50 * speed, worst_lag  # after a while: behind by less than 50 ms of wall time
    assert clock.rate == 1.0 if speed == 1.0 else 0.95 * speed < clock.rate <= speed


def test_a_clock_started_without_the_exchange_takes_its_time_at_the_first_answer_even_backwards() -> None:
    wall = [1_800_000_000_000]  # the wall clock stands in while the exchange is down
    clock = ExchangeTime.unsynced(wall=lambda: wall[0])
    assert not clock.ready() and clock.now_ms() == wall[0]
    wall[0] += 5_000
    server = 1_672_000_000_000  # a fake exchange replaying 2023: years behind the wall clock
    clock.resync(server, wall[0] - 10, wall[0])
    assert clock.ready()
    assert clock.now_ms() == server  # not held at the stand-in's later time
    wall[0] += 1_000
    assert server <= clock.now_ms() <= server + 1_000
