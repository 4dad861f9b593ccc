"""The contract of a rate limiter (see limits.py for the semantics), and the per-list-of-limits plans both
limiters build once and reuse: RedisRateLimiter (rate_limiter_redis.py) is shared by every process,
LocalRateLimiter (rate_limiter_memory.py) keeps the same state in one process's memory."""

from __future__ import annotations

import itertools
import os

from django.conf import settings

from .rate_limit_decisions import CONCURRENCY, TOKENS, Decision, Limit, checks_for

DEFAULT_LEASE_SECONDS = 600.0  # a concurrency slot whose holder never settles comes back after this


class LimitPlan:
    """The checks of one list of limits, and (RedisRateLimiter) their keys and script arguments, built once."""

    __slots__ = ("admit_args", "checks", "keys", "settle_args", "settle_keys", "token_args")

    def __init__(self, limits: list[Limit]):
        self.checks = tuple(c for limit in limits for c in checks_for(limit))
        self.keys: list[bytes] | None = None

    def wire(self, prefix: str) -> None:
        # Static arguments pre-encoded: redis-py's packing of ~20 arguments is a visible share of an admit.
        self.keys, self.admit_args, self.token_args = [], [], []
        self.settle_keys, self.settle_args = [], []
        for check in self.checks:
            key = (prefix + check.key_suffix).encode()
            self.keys.append(key)
            if check.kind == CONCURRENCY:
                self.admit_args += (b"c", str(check.limit).encode(), b"", b"")
                self.settle_keys.append(key)
                self.settle_args += (b"c", b"", b"")
            else:
                self.admit_args += (b"g", repr(check.interval).encode(), repr(check.window).encode(), b"1")
                if check.kind == TOKENS:
                    self.token_args.append(2 + len(self.admit_args) - 1)  # after lease and lease_us


class LimitPlans:
    """Plans per list of limits, cached: the same few lists come back on every request."""

    MAX = 4096

    def __init__(self):
        self._cache: dict[tuple[Limit, ...], LimitPlan] = {}

    def get(self, limits: list[Limit]) -> LimitPlan:
        key = tuple(limits)
        plan = self._cache.get(key)
        if plan is None:
            if len(self._cache) >= self.MAX:
                self._cache.clear()
            plan = self._cache[key] = LimitPlan(limits)
        return plan


_lease_prefix = os.urandom(6).hex() + ":"
_lease_counter = itertools.count(1)


def new_lease() -> str:
    return _lease_prefix + str(next(_lease_counter))


class RateLimiter:
    """Shared rate limits. See limits.py for the semantics."""

    lease_seconds: float

    def __init__(self, lease_seconds: float | None = None):
        if lease_seconds is None:
            lease_seconds = float(getattr(settings, "RATE_LIMIT_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be above 0")
        self.lease_seconds = lease_seconds
        self._plans = LimitPlans()

    async def admit(self, limits: list[Limit], *, tokens: int) -> Decision:
        """Take 1 request, `tokens` and a concurrency slot from every bucket, or nothing if any bucket refuses."""
        raise NotImplementedError

    async def settle(self, limits: list[Limit], *, estimated_tokens: int, actual_tokens: int, lease) -> None:
        """Correct the token charge from the estimate to the real count and free the concurrency slot."""
        raise NotImplementedError

    async def release(self, limits: list[Limit], lease) -> None:
        """Free the concurrency slot, keeping the estimated token charge."""
        await self.settle(limits, estimated_tokens=0, actual_tokens=0, lease=lease)

    async def close(self) -> None:
        return None
