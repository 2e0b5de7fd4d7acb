"""Wrong tokens are rate-limited per client: a leaky bucket of failures per address.

Each wrong token fills the client's bucket by one; it drains at ``rate`` per second. A full
bucket answers every token check from that client with 429 and ``Retry-After`` (the right
token too: otherwise the 200-or-429 answer would still tell a guesser when it hit). Missing
tokens do not count (a browser that lost its token is not guessing). Memory is bounded: at most
``max_clients`` addresses are tracked, the oldest dropped first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class FailureLimiter:
    def __init__(
        self,
        burst: int = 20,
        rate: float = 1 / 3,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.rate, self.max_clients, self._clock = burst, rate, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        level, at = self._buckets.get(key, (0.0, now))
        return max(0.0, level - (now - at) * self.rate)

    def retry_after(self, key: str) -> int | None:
        """Seconds until this client may try again, or None when it may try now."""
        with self._lock:
            now = self._clock()
            level = self._level(key, now)
            if level + 1 <= self.burst:
                return None
            return max(1, math.ceil((level + 1 - self.burst) / self.rate))

    def failed(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._buckets[key] = (self._level(key, now) + 1, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
