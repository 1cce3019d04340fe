"""Rate limits: token buckets for sign-ins, one-time codes and websocket connects, keyed by
address; and the cap on websockets still authenticating.

One process keeps them in memory. With ``TANDEM_REDIS_URL`` they are kept in Redis, shared by
every process, so adding processes does not multiply them: each bucket is a Redis hash updated
by one Lua script (atomic, on Redis' own clock, expiring once full again), and each socket still
authenticating is a member of a sorted set scored by when it stops counting, so the sockets of a
process that died stop counting within ``AUTHENTICATING_SECONDS`` rather than leaking. When
Redis does not answer, the limits fall back to this process's own, with a warning in the log
(and a line when Redis answers again); they never fail open silently, and never fail the
request.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

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


PREFIX = "tandem:limits:"
# A socket counts as authenticating for at most this long in Redis (its process may die).
AUTHENTICATING_SECONDS = 30
RETRY_REDIS_AFTER = 5.0  # after a failure, this process's own limits for this long

# KEYS[1]: the bucket; ARGV: capacity, tokens per second. Returns {allowed, retry after (s)}.
BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = cap
  at = now
end
tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.floor((1 - tokens) / rate) + 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((cap - tokens) / rate) + 1)
return {allowed, retry}
"""

# KEYS[1]: the sorted set of sockets authenticating; ARGV: cap, member, seconds it counts.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) + 1)
return 1
"""


class Shared:
    """The limits' state in Redis, and the fallback to this process's own when it fails."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._bucket = redis.register_script(BUCKET)
        self._admit = redis.register_script(ADMIT)
        self._down_until = 0.0
        self._down = False

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + RETRY_REDIS_AFTER
        if not self._down:
            self._down = True
            log.warning(
                "Redis unreachable (%s: %s): rate limits and the cap on sockets authenticating "
                "are this process's own until it answers",
                type(exc).__name__,
                exc,
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.warning("Redis answers again: rate limits are shared by every process again")

    async def take(
        self, name: str, key: str, capacity: float, rate: float
    ) -> tuple[bool, int] | None:
        """(allowed, retry after) from the shared bucket; None when Redis did not answer."""
        if not self._usable():
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no addresses in Redis
        try:
            allowed, retry = await self._bucket(
                keys=[f"{PREFIX}{name}:{digest}"], args=[capacity, rate]
            )
        except Exception as exc:  # noqa: BLE001 - any failure of Redis: fall back, logged
            self._failed(exc)
            return None
        self._answered()
        return bool(allowed), int(retry)

    async def admit(self, cap: int, member: str) -> bool | None:
        if not self._usable():
            return None
        try:
            got = await self._admit(
                keys=[f"{PREFIX}authenticating"], args=[cap, member, AUTHENTICATING_SECONDS]
            )
        except Exception as exc:  # noqa: BLE001 - any failure of Redis: fall back, logged
            self._failed(exc)
            return None
        self._answered()
        return bool(got)

    async def release(self, member: str) -> None:
        try:
            await self.redis.zrem(f"{PREFIX}authenticating", member)
        except Exception as exc:  # noqa: BLE001 - it stops counting by itself
            self._failed(exc)


class Limiter:
    """A rate limiter shared through Redis when there is one, else (or when Redis fails) this
    process's own ``RateLimiter``."""

    def __init__(self, name: str, per_minute: int, shared: Shared | None) -> None:
        self.name = name
        self.local = RateLimiter(per_minute)
        self.shared = shared
        self._retry: OrderedDict[str, int] = OrderedDict()

    async def allow(self, key: str) -> bool:
        """Spend one token for ``key``; False when the bucket is empty."""
        if self.shared is not None:
            got = await self.shared.take(self.name, key, self.local.capacity, self.local.rate)
            if got is not None:
                allowed, retry = got
                if not allowed:
                    self._retry[key] = retry
                    while len(self._retry) > 1000:
                        self._retry.popitem(last=False)
                return allowed
        return self.local.allow(key)

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again (after ``allow`` said no)."""
        if key in self._retry:
            return max(1, self._retry.pop(key))
        return self.local.retry_after(key)


@dataclass(frozen=True)
class Ticket:
    """A socket counted as authenticating (in Redis too when ``shared``)."""

    member: str
    shared: bool


class Limits:
    """The server's rate limits and its count of sockets still authenticating."""

    def __init__(
        self, *, signin: int, codes: int, ws_connects: int, redis: Redis | None = None
    ) -> None:
        self.shared = Shared(redis) if redis is not None else None
        self.signin = Limiter("signin", signin, self.shared)  # per address and email
        self.signin_ip = Limiter("signin-ip", signin * 4, self.shared)  # per address
        self.codes = Limiter("codes", codes, self.shared)
        self.ws_connects = Limiter("ws", ws_connects, self.shared)
        self.unauthenticated = 0  # this process's
        self._me = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:"
        self._ids = itertools.count()

    async def admit_unauthenticated(self, cap: int) -> Ticket | None:
        """Count one more socket as authenticating, or None when ``cap`` are already (in every
        process, with Redis)."""
        member = f"{self._me}{next(self._ids)}"
        got = await self.shared.admit(cap, member) if self.shared is not None else None
        if got is False:
            return None
        if got is None and self.unauthenticated >= cap:
            return None
        self.unauthenticated += 1
        return Ticket(member, shared=bool(got))

    async def release_unauthenticated(self, ticket: Ticket) -> None:
        self.unauthenticated -= 1
        if ticket.shared and self.shared is not None:
            await self.shared.release(ticket.member)
