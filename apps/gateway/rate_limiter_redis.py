"""Rate limits shared by every process through Redis: each admit is one Lua script (rate_limit_admit.lua) on
Redis' own clock (TIME), so every process on every host shares exact counts; settle/release are one more
(rate_limit_settle.lua). Keys per bucket (`<prefix><key>:r|t|c`) expire once the bucket is full again / the last
lease ends.

Redis trouble never reaches the request path: admit allows (fail open), settle/release are dropped. After a
connection error nobody tries for a second (apps/core/redis_backoff.py); a script or data error fails only its
own call and is logged as an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from apps.core.redis_backoff import REDIS_ERRORS, backoff_for

from .rate_limit_decisions import ALLOW, TOKENS, US, Decision, Limit, decide, too_large, unchecked
from .rate_limiter import RateLimiter, new_lease

# The module that owned this limiter before the split; operators' log filters name it.
logger = logging.getLogger("apps.gateway.limits")

_HERE = Path(__file__).resolve().parent
ADMIT_LUA = (_HERE / "rate_limit_admit.lua").read_text()
SETTLE_LUA = (_HERE / "rate_limit_settle.lua").read_text()

REDIS_BACKOFF_SECONDS = 1.0  # after a connection error, fail open without trying for this long


class RedisRateLimiter(RateLimiter):
    """Limits shared by every process through Redis. The caller owns `redis` (close() leaves it open)."""

    def __init__(self, redis, prefix: str = "cb:rl:", *, lease_seconds: float | None = None):
        super().__init__(lease_seconds)
        self.redis = redis
        self.prefix = prefix
        self._admit = redis.register_script(ADMIT_LUA)
        self._settle = redis.register_script(SETTLE_LUA)
        self.backoff = backoff_for(redis, "rate limiter", seconds=REDIS_BACKOFF_SECONDS, logger=logger)
        self._lease_us = str(int(self.lease_seconds * US))

    async def admit(self, limits: list[Limit], *, tokens: int) -> Decision:
        plan = self._plans.get(limits)
        checks = plan.checks
        if not checks:
            return ALLOW
        tokens = max(0, int(tokens))
        refused = too_large(checks, tokens)
        if refused is not None:
            return refused
        if self.backoff.down:
            return unchecked(checks)
        if plan.keys is None:
            plan.wire(self.prefix)
        lease = new_lease()
        args = [lease, self._lease_us, *plan.admit_args]
        for position in plan.token_args:
            args[position] = tokens
        try:
            reply = await self._admit(keys=plan.keys, args=args)
        except REDIS_ERRORS as exc:
            self.backoff.failed("admit", exc)
            return unchecked(checks)
        return decide(checks, tokens, ok=reply[0] == 1, now=float(reply[1]), flags=reply[2::2],
                      values=reply[3::2], lease=lease)

    async def settle(self, limits: list[Limit], *, estimated_tokens: int, actual_tokens: int, lease) -> None:
        if lease is None or self.backoff.down:
            return  # nothing was taken (unlimited, refused, or admitted while Redis was down)
        plan = self._plans.get(limits)
        if plan.keys is None:
            plan.wire(self.prefix)
        keys, args = plan.settle_keys, [lease, *plan.settle_args]
        delta = max(0, int(actual_tokens)) - max(0, int(estimated_tokens))
        if delta:
            keys = list(keys)
            for check, key in zip(plan.checks, plan.keys, strict=True):
                if check.kind == TOKENS:
                    keys.append(key)
                    args += (b"g", repr(check.interval).encode(), delta)
        if not keys:
            return
        try:
            await self._settle(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            self.backoff.failed("settle", exc)
