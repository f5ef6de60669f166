"""Client order ids and the state machine, without an exchange: ids are deterministic, fit Binance's rule and
tell the agent's orders apart; the transitions never leave a final state and never go back to SUBMITTING."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.types import Side
from engine.live.ids import CLIENT_ID, PREFIX, client_order_id, is_ours
from engine.live.types import (
    FINAL_STATES,
    LIVE_STATES,
    TRANSITIONS,
    OrderIntent,
    OrderSettings,
    OrderState,
    OrderType,
    may_become,
    sources_of,
)

S = OrderState


def make(**changes: object) -> OrderIntent:
    values: dict[str, object] = {"symbol": "BTCUSDT", "side": Side.BUY, "type": OrderType.MARKET, "amount": 0.01,
                                 "decided_ts": 1_700_000_000_000, "reason": "signal"}
    return OrderIntent(**(values | changes))  # type: ignore[arg-type]


def test_the_same_decision_is_the_same_id_whatever_its_amount_or_price() -> None:
    assert client_order_id(make()) == client_order_id(make(amount=0.02, price=5.0, intent_id="x"))
    others = [make(symbol="ETHUSDT"), make(side=Side.SELL), make(type=OrderType.LIMIT), make(decided_ts=1),
              make(reason="manual"), make(seq=1)]
    ids = {client_order_id(i) for i in others} | {client_order_id(make())}
    assert len(ids) == len(others) + 1
    assert client_order_id(make(), "agent-2") != client_order_id(make())


@given(st.text(min_size=1, max_size=40), st.sampled_from(list(Side)), st.integers(0, 2**62),
       st.text(max_size=80), st.integers(0, 10**6), st.text(max_size=20))
def test_every_id_fits_binances_rule_and_is_recognisably_ours(symbol: str, side: Side, ts: int, reason: str,
                                                               seq: int, namespace: str) -> None:
    cid = client_order_id(make(symbol=symbol, side=side, decided_ts=ts, reason=reason, seq=seq), namespace)
    assert CLIENT_ID.match(cid) and len(cid) <= 36 and cid.startswith(PREFIX) and is_ours(cid)


@pytest.mark.parametrize("other", [None, "", "x-AB12CD", "web_123", "ta1-short", "and_ta1-0123456789abcdef01234567"])
def test_other_ids_are_not_ours(other: str | None) -> None:
    assert not is_ours(other)


def test_final_states_are_final_and_nothing_goes_back_to_submitting() -> None:
    assert set(FINAL_STATES) | set(LIVE_STATES) == set(OrderState)
    assert all(TRANSITIONS[s] == frozenset() and s.final for s in FINAL_STATES)
    assert all(S.SUBMITTING not in targets for targets in TRANSITIONS.values())
    assert not may_become(S.FILLED, S.OPEN) and not may_become(S.PARTIALLY_FILLED, S.OPEN)
    assert not may_become(S.OPEN, S.NOT_PLACED) and not may_become(S.OPEN, S.UNKNOWN)
    assert may_become(S.UNKNOWN, S.NOT_PLACED) and may_become(S.SUBMITTING, S.FILLED)
    assert sources_of(S.NOT_PLACED) == {S.SUBMITTING, S.UNKNOWN, S.NOT_PLACED}


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="grace_s"):
        OrderSettings(grace_s=-1)
    with pytest.raises(ValueError, match="limit_timeout_s"):
        OrderSettings(limit_timeout_s=0)
