"""After a Redis connection error, stop trying for a while instead of hammering a Redis that is down.

Only connection-level failures back off: Redis refused, timed out, went away or is still loading its data. A
script or data error (`ResponseError`: a Lua error, WRONGTYPE, an integer out of range) belongs to the one call
that caused it and says nothing about Redis' health; it is logged as an error and never makes a whole process
give up on Redis (one tenant's odd request must not take budgets away from every other tenant). An exhausted
connection pool (`MaxConnectionsError`) fails only the call that hit it: Redis itself is fine.

Pure asyncio and redis-py exceptions; no Django.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_BACKOFF_SECONDS = 1.0

# What a failure of Redis itself looks like from a client (BusyLoadingError is a ConnectionError).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
# Everything a Redis call may raise that a caller should survive.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

CONNECTION = "connection"
POOL = "pool"
COMMAND = "command"


def failure_kind(exc: BaseException) -> str:
    """`connection` (Redis unreachable: back off), `pool` (this process ran out of connections: fail the call
    only) or `command` (a script or data error: fail the call only, and it is a bug worth an error log)."""
    if isinstance(exc, MaxConnectionsError):
        return POOL
    if isinstance(exc, CONNECTION_ERRORS):
        return CONNECTION
    return COMMAND


class RedisBackoff:
    """One client's "Redis is down, do not try before …" state. Cheap to check on every call."""

    def __init__(self, name: str, *, seconds: float = DEFAULT_BACKOFF_SECONDS, logger: logging.Logger | None = None):
        self.name = name
        self.seconds = seconds
        self.logger = logger or logging.getLogger("apps.core.redis_backoff")
        self.down_until = 0.0

    @property
    def down(self) -> bool:
        """True while backing off after a connection error (skip the call, answer as if Redis failed)."""
        return self.down_until > 0 and time.monotonic() < self.down_until

    def failed(self, operation: str, exc: BaseException) -> str:
        """Log a failed call and back off when (and only when) Redis itself failed. Returns the failure kind."""
        kind = failure_kind(exc)
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        if kind == CONNECTION:
            self.down_until = time.monotonic() + self.seconds
            self.logger.warning("%s: Redis %s failed (%s); not trying for %.0fs", self.name, operation, detail,
                                self.seconds)
        elif kind == POOL:
            self.logger.warning("%s: Redis %s failed: connection pool exhausted", self.name, operation)
        else:
            self.logger.error("%s: Redis %s was refused (%s); this call failed, Redis is still used", self.name,
                              operation, detail)
        return kind

    def reset(self) -> None:
        self.down_until = 0.0


def backoff_for(client, name: str, *, seconds: float = DEFAULT_BACKOFF_SECONDS,
                logger: logging.Logger | None = None) -> RedisBackoff:
    """The back-off state kept on a client object, shared by every caller of that client under `name`."""
    states = client.__dict__.setdefault("_cb_backoff", {})
    state = states.get(name)
    if state is None:
        state = states[name] = RedisBackoff(name, seconds=seconds, logger=logger)
    return state
