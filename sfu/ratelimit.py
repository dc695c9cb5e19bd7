"""Token buckets for per-socket and per-address rate limits.

Hand-written (a dozen lines) because the libraries on offer either sleep until capacity
returns (aiolimiter) or count fixed windows; signaling needs an instant yes/no with bursts.
"""

from __future__ import annotations

import time


class TokenBucket:
    """Allows ``burst`` events at once and ``rate`` events per second on average."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def allow(self, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are enough; never blocks."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class KeyedBuckets:
    """One token bucket per key (a client address), forgotten when idle and full again."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_idle()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        else:  # the rate can change at run time
            bucket.rate = self.rate
        return bucket.allow()

    def blocked(self, key: str) -> bool:
        """True when ``key`` has no token left now; takes none (failures are what count)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return False
        bucket.rate = self.rate
        return not bucket.allow(0.0) or bucket.tokens < 1

    def _forget_idle(self) -> None:
        now = time.monotonic()
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.stamp > full_after]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:  # all busy: the oldest goes (bounded memory)
            del self._buckets[next(iter(self._buckets))]
