"""Client order ids: derived from the intent, so the same decision always names the same order.

``ta1-`` + 24 hex digits of a SHA-256 over the namespace, symbol, side, type, decision time, reason and sequence:
28 characters, inside Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$`` (and OKX's 32 alphanumerics once the dashes go,
which is a matter for its venue). The prefix tells the agent's orders apart from a person's own on the account;
the ``1`` is the scheme's version. 96 bits of hash make a collision between two intents practically impossible.
"""

from __future__ import annotations

import hashlib
import re

from engine.live.types import OrderIntent

PREFIX = "ta1-"
HASH_HEX = 24
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Binance's rule for newClientOrderId


def client_order_id(intent: OrderIntent, namespace: str = "") -> str:
    """The client order id of ``intent`` (the same for the same decision, whatever its amount or price)."""
    key = "|".join((namespace, intent.symbol.upper(), str(intent.side), str(intent.type), str(intent.decided_ts),
                    intent.reason, str(intent.seq)))
    return PREFIX + hashlib.sha256(key.encode()).hexdigest()[:HASH_HEX]


def is_ours(client_id: str | None) -> bool:
    """Whether an exchange order with ``client_id`` was placed by the agent."""
    return bool(client_id) and str(client_id).startswith(PREFIX) and len(str(client_id)) == len(PREFIX) + HASH_HEX
