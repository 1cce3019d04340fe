"""In-process token buckets: sign-ins, one-time codes and websocket connects, keyed by address."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

# Buckets are forgotten least-recently-used first past this many keys, so a flood of
# addresses cannot grow the server without bound.
MAX_KEYS = 50_000


class RateLimiter:
    """``per_minute`` events per key and minute, with bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(max(per_minute, 1))
        self.rate = self.capacity / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Spend one token for ``key``; False when the bucket is empty."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str) -> int:
        tokens, _ = self._buckets.get(key, (self.capacity, 0.0))
        return max(1, int((1.0 - tokens) / self.rate) + 1)


class Limits:
    """The server's rate limits and its count of sockets still authenticating."""

    def __init__(self, *, signin: int, codes: int, ws_connects: int) -> None:
        self.signin = RateLimiter(signin)  # per address and email
        self.signin_ip = RateLimiter(signin * 4)  # per address, across emails
        self.codes = RateLimiter(codes)
        self.ws_connects = RateLimiter(ws_connects)
        self.unauthenticated = 0
