"""Failed authentications per client address: past ``max_failures`` within ``window_s``, the address is refused
(429 with Retry-After) until the oldest of them leaves the window. In memory, bounded: a restart forgets it,
which costs a guesser nothing against 256-bit tokens but keeps a loop of bad requests from busying the worker."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000  # addresses remembered at most (the oldest forgotten first)


class FailureLimiter:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, max_addresses: int = MAX_ADDRESSES) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        seen = self._failures.get(address)
        if seen is None:
            return None
        now = self._clock()
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if not seen:
            del self._failures[address]
            return None
        if len(seen) < self.max_failures:
            return None
        return max(0.0, seen[0] + self.window_s - now)

    def failed(self, address: str) -> None:
        seen = self._failures.setdefault(address, deque())
        self._failures.move_to_end(address)
        seen.append(self._clock())
        while len(seen) > self.max_failures:
            seen.popleft()
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
