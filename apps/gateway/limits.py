"""Rate limits per API key, per tenant and global: requests per minute, tokens per minute, concurrent requests.

Every request passes `RateLimiter.admit(limits, tokens=estimate)` once: ONE atomic check-and-take over all its
buckets — either every bucket admits (1 request, the estimated tokens, one concurrency slot) or nothing is
taken — then `settle()` (real token count, slot freed) or `release()` (slot freed, estimate kept) when it ends.

Requests and tokens per minute use GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp, the "theoretical arrival time" TAT). A bucket holds one minute's worth, refills continuously at the
per-minute rate and, for requests, holds `burst` extra:

    requests: emission interval 60 s / rpm, capacity rpm + burst   (a fresh key may send rpm + burst at once,
              then rpm per minute, evenly refilled: 600/min gives one more every 100 ms)
    tokens:   emission interval 60 s / tpm, capacity tpm           (a request estimated above tpm never fits:
              refused as "too large", no Retry-After)

So the sustained rate is exact, and any 60 s window sees at most capacity + one minute's refill (a client
that waited long enough can spend a full bucket at once). x-ratelimit-limit-requests/-tokens state the
configured per-minute limit (RATE_LIMIT_PER_MINUTE, or the key's / tenant's rpm; never rpm + burst: the burst
only lets a short spike through); -remaining-* what is left of that limit right now (0 while a spike is using
the burst); -reset-* the time until the bucket is full again.

Concurrency is a sorted set per bucket: one member per admitted request (its lease id) scored by the lease's
expiry, so the slots of a process that died come back after `lease_seconds`.

Where it lives: rate_limit_decisions.py (buckets, checks, decisions and headers), rate_limiter.py (the limiter
contract and its cached plans), rate_limiter_redis.py (`RedisRateLimiter`, shared by every process; Lua in
rate_limit_*.lua) and rate_limiter_memory.py (`LocalRateLimiter`, the embedded default). This module says which
limits apply to a request and picks the limiter for the settings.
"""

from __future__ import annotations

from django.conf import settings

from .rate_limit_decisions import ALLOW, Decision, Limit, format_duration
from .rate_limiter import RateLimiter
from .rate_limiter_memory import LocalRateLimiter
from .rate_limiter_redis import RedisRateLimiter

__all__ = [
    "ALLOW", "Decision", "Limit", "LocalRateLimiter", "RateLimiter", "RedisRateLimiter", "format_duration",
    "limits_for", "rate_limiter_for_settings",
]


# ---- Which limits apply ----------------------------------------------------------------------------------------

def _pick(value: int | None, setting: str) -> int:
    if value is None:
        value = getattr(settings, setting, 0)
    return max(0, int(value or 0))


_memo: dict[tuple, list[Limit]] = {}


def limits_for(key_id, tenant_id, *, key_rpm: int | None = None, key_tpm: int | None = None,
               key_concurrent: int | None = None, tenant_rpm: int | None = None, tenant_tpm: int | None = None,
               tenant_concurrent: int | None = None, global_rpm: int | None = None,
               burst: int | None = None) -> list[Limit]:
    """The buckets a request passes: per API key, per tenant, global (only those with a limit). Do not change
    the list: it is shared by every request with the same inputs.

    None means "the default": per key RATE_LIMIT_PER_MINUTE, RATE_LIMIT_TOKENS_PER_MINUTE and
    RATE_LIMIT_CONCURRENT_REQUESTS; global RATE_LIMIT_GLOBAL_PER_MINUTE; burst BURST_ALLOWANCE; the tenant has
    no default. 0 means unlimited (also as an explicit override). Anonymous requests (no key) share one bucket.
    """
    # Remembered per settings object (override_settings installs a new one) and inputs: the same key asks again
    # and again, and building three frozen Limits to find none applies was most of a request's admission cost.
    memo_key = (settings._wrapped, key_id, tenant_id, key_rpm, key_tpm, key_concurrent, tenant_rpm, tenant_tpm,
                tenant_concurrent, global_rpm, burst)
    found = _memo.get(memo_key)
    if found is None:
        if len(_memo) >= 10_000:
            _memo.clear()
        found = _memo[memo_key] = _limits_for(memo_key[1:])
    return found


def _limits_for(inputs: tuple) -> list[Limit]:
    key_id, tenant_id, key_rpm, key_tpm, key_concurrent, tenant_rpm, tenant_tpm, tenant_concurrent, global_rpm, \
        burst = inputs
    burst = _pick(burst, "BURST_ALLOWANCE")
    key = Limit(f"key:{key_id}" if key_id is not None else "key:anonymous",
                requests_per_minute=_pick(key_rpm, "RATE_LIMIT_PER_MINUTE") or None,
                tokens_per_minute=_pick(key_tpm, "RATE_LIMIT_TOKENS_PER_MINUTE") or None,
                concurrent=_pick(key_concurrent, "RATE_LIMIT_CONCURRENT_REQUESTS") or None, burst=burst)
    tenant = None
    if tenant_id is not None:
        tenant = Limit(f"tenant:{tenant_id}", requests_per_minute=tenant_rpm or None,
                       tokens_per_minute=tenant_tpm or None, concurrent=tenant_concurrent or None, burst=burst)
    glob = Limit("global", requests_per_minute=_pick(global_rpm, "RATE_LIMIT_GLOBAL_PER_MINUTE") or None,
                 burst=burst)
    return [limit for limit in (key, tenant, glob)
            if limit is not None and (limit.requests_per_minute or limit.tokens_per_minute or limit.concurrent)]


def rate_limiter_for_settings(redis_client) -> RateLimiter:
    """The shared Redis limiter when the process has a Redis client, else the in-process one."""
    if redis_client is not None:
        return RedisRateLimiter(redis_client)
    return LocalRateLimiter()
