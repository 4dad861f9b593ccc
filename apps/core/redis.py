"""Redis clients: one sync client for Django-side writes, async clients built per event loop."""

from __future__ import annotations

from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings


def configured() -> bool:
    return bool(getattr(settings, "REDIS_URL", None))


@lru_cache(maxsize=1)
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def async_client() -> aioredis.Redis:
    """A new asyncio client; callers keep it for the life of their event loop.

    A blocking pool: under a burst of concurrent requests callers wait briefly for a connection instead of
    getting MaxConnectionsError, which the health store and rate limiter would treat as "Redis down".
    """
    pool = aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=512, timeout=2,
                                                    socket_timeout=2, socket_connect_timeout=2)
    return aioredis.Redis(connection_pool=pool)
