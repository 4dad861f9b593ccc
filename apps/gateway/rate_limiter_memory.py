"""Rate limits in this process's memory: the embedded default (one process, no Redis), with the same
semantics as RedisRateLimiter (see limits.py)."""

from __future__ import annotations

import time

from .rate_limit_decisions import (
    ALLOW,
    CONCURRENCY,
    REQUESTS,
    SLACK_US,
    TOKENS,
    US,
    Decision,
    Limit,
    decide,
    too_large,
)
from .rate_limiter import RateLimiter, new_lease


def _expire(slots: dict[str, float], now: float) -> None:
    """Drop expired leases. Every lease lasts lease_seconds, so insertion order is expiry order: stop at the
    first live one (O(expired), not O(held))."""
    dead = []
    for lease, expiry in slots.items():
        if expiry > now:
            break
        dead.append(lease)
    for lease in dead:
        del slots[lease]


class LocalRateLimiter(RateLimiter):
    """The same semantics in this process's memory (embedded default: one process, no Redis)."""

    SWEEP_EVERY = 4096  # admits between sweeps of full buckets and empty slot sets

    def __init__(self, *, lease_seconds: float | None = None):
        super().__init__(lease_seconds)
        self._tats: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}  # bucket → lease → expiry
        self._admits = 0

    @staticmethod
    def _now() -> float:
        return time.monotonic_ns() / 1000

    def _sweep(self, now: float) -> None:
        for key in [key for key, tat in self._tats.items() if tat <= now]:
            del self._tats[key]
        for key, slots in list(self._slots.items()):
            _expire(slots, now)
            if not slots:
                del self._slots[key]

    async def admit(self, limits: list[Limit], *, tokens: int) -> Decision:
        plan = self._plans.get(limits).checks
        if not plan:
            return ALLOW
        tokens = max(0, int(tokens))
        refused = too_large(plan, tokens)
        if refused is not None:
            return refused
        now = self._now()
        self._admits += 1
        if self._admits % self.SWEEP_EVERY == 0:
            self._sweep(now)
        flags, values = [], []
        for check in plan:
            if check.kind == CONCURRENCY:
                slots = self._slots.get(check.key_suffix)
                if slots:
                    _expire(slots, now)
                count = len(slots) if slots else 0
                flags.append(count < check.limit)
                values.append(count)
            else:
                tat = max(self._tats.get(check.key_suffix, now), now)
                cost = 1 if check.kind == REQUESTS else tokens
                flags.append(tat + cost * check.interval - now <= check.window + SLACK_US)
                values.append(tat)
        ok = all(flags)
        lease = None
        if ok:
            lease = new_lease()
            for check, tat in zip(plan, values, strict=True):
                if check.kind == CONCURRENCY:
                    self._slots.setdefault(check.key_suffix, {})[lease] = now + self.lease_seconds * US
                else:
                    self._tats[check.key_suffix] = tat + (1 if check.kind == REQUESTS else tokens) * check.interval
        return decide(plan, tokens, ok=ok, now=now, flags=flags, values=values, lease=lease)

    async def settle(self, limits: list[Limit], *, estimated_tokens: int, actual_tokens: int, lease) -> None:
        if lease is None:
            return
        delta = max(0, int(actual_tokens)) - max(0, int(estimated_tokens))
        now = self._now()
        for check in self._plans.get(limits).checks:
            if check.kind == CONCURRENCY:
                slots = self._slots.get(check.key_suffix)
                if slots is not None:
                    slots.pop(lease, None)
            elif check.kind == TOKENS and delta:
                tat = self._tats.get(check.key_suffix, now)
                if delta > 0:
                    tat = max(tat, now)
                tat += delta * check.interval
                if tat > now:
                    self._tats[check.key_suffix] = tat
                else:
                    self._tats.pop(check.key_suffix, None)

    async def close(self) -> None:
        self._tats.clear()
        self._slots.clear()
