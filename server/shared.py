"""The Redis client that several processes share state through (``TANDEM_REDIS_URL``).

One client (a connection pool) per process; redis-py's asyncio client. Timeouts are short: a
Redis that does not answer is treated as down (``/readyz`` says so, rate limits fall back to
this process's own), never waited on by a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

TIMEOUT = 1.0


def redis_client(url: str) -> Redis | None:
    """A client for ``url``, or None when it is empty (one process, no Redis)."""
    if not url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        health_check_interval=30,
    )
