"""Deployment health and circuit breaking, shared by every worker process.

A *deployment* is provider × credential × model; its id is f"{provider_id}:{credential_id or 0}:{model_id}".
For each one the store keeps a rolling window of outcomes (time buckets), consecutive failures, moving
averages (EWMA) of latency and time to first token, the upstream's rate-limit state (429 + Retry-After),
the number of requests in flight and the circuit breaker:

    closed ──(failure_threshold consecutive failures, or error rate ≥ threshold over ≥ min_requests)──▶ open
    open ──(cooldown_seconds elapsed)──▶ half_open: up to half_open_probes concurrent trial requests
    half_open ──success──▶ closed          half_open ──failure──▶ open (cooldown starts again)

A 429 is the provider saying "later", not "broken": it sets `rate_limited_until` (acquire refuses until then)
and counts as a request in the window, but neither as an error nor as a consecutive failure, so it never opens
the circuit.

Where it lives: health_breaker.py (configuration, HealthStats, the per-deployment record), health_store.py (the
store contract), health_store_redis.py (`RedisHealthStore`, every process shares it; Lua in health_*.lua) and
health_store_memory.py (`LocalHealthStore`, the embedded default). This module picks one for the settings and
is where the rest of the gateway imports them from.
"""

from __future__ import annotations

from .health_breaker import (
    CIRCUIT_NAMES,
    KEY_TTL_SECONDS,
    UNKNOWN,
    WINDOW_BUCKETS,
    BreakerConfig,
    HealthStats,
)
from .health_store import HealthStore
from .health_store_memory import LocalHealthStore
from .health_store_redis import RedisHealthStore

__all__ = [
    "CIRCUIT_NAMES", "KEY_TTL_SECONDS", "UNKNOWN", "WINDOW_BUCKETS", "BreakerConfig", "HealthStats", "HealthStore",
    "LocalHealthStore", "RedisHealthStore", "health_store_for_settings",
]


def health_store_for_settings(redis_client, wire=None) -> HealthStore:
    """The shared Redis store when the process has a Redis client (its per-tick calls on `wire`, the process's
    pipelined connection, when given), else the in-process one."""
    config = BreakerConfig.from_settings()
    if redis_client is not None:
        return RedisHealthStore(redis_client, config, wire=wire)
    return LocalHealthStore(config)
