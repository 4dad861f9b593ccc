"""Deployment health shared by every process through Redis: one hash per deployment (`<prefix><deployment_id>`,
TTL one day, refreshed on every write), changed only by the Lua scripts beside this module (health_acquire.lua,
health_record.lua, health_release.lua), which read Redis' own clock so processes on hosts with skewed clocks
agree and two processes never race.

Redis trouble never reaches the request path: reads degrade to UNKNOWN, `acquire` to "yes", writes are
dropped. After a connection error the store does not even try for a second (apps/core/redis_backoff.py); a
script or data error fails only its own call and is logged as an error.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from apps.core.redis_backoff import REDIS_ERRORS, backoff_for

from .health_breaker import (
    KEY_TTL_SECONDS,
    UNKNOWN,
    WINDOW_BUCKETS,
    BreakerConfig,
    DeploymentRecord,
    HealthStats,
    retry_after_seconds,
)
from .health_store import HealthStore

# The module that owned this store before the split; operators' log filters name it.
logger = logging.getLogger("apps.gateway.health")

_HERE = Path(__file__).resolve().parent
ACQUIRE_LUA = (_HERE / "health_acquire.lua").read_text()
RECORD_LUA = (_HERE / "health_record.lua").read_text()
RELEASE_LUA = (_HERE / "health_release.lua").read_text()

REDIS_BACKOFF_SECONDS = 1.0  # after a connection error, answer degraded without trying for this long


class RedisHealthStore(HealthStore):
    """Health shared by every process through Redis. The caller owns `redis` (close() leaves it open)."""

    def __init__(self, redis, config: BreakerConfig, prefix: str = "cb:health:"):
        self.redis = redis
        self.config = config
        self.prefix = prefix
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._record = redis.register_script(RECORD_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self.backoff = backoff_for(redis, "health store", seconds=REDIS_BACKOFF_SECONDS, logger=logger)
        c = config
        self._acquire_args = (c.cooldown_seconds, c.half_open_probes, c.probe_timeout_seconds, KEY_TTL_SECONDS)
        self._record_args = (c.ewma_alpha, c.cooldown_seconds, c.failure_threshold, c.error_rate_threshold,
                             c.min_requests, c.bucket_seconds, WINDOW_BUCKETS, KEY_TTL_SECONDS)

    def key(self, deployment_id: str) -> str:
        return self.prefix + deployment_id

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        if not deployment_ids:
            return {}
        if self.backoff.down:
            return dict.fromkeys(deployment_ids, UNKNOWN)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.time()
            for deployment_id in deployment_ids:
                pipe.hgetall(self.key(deployment_id))
            results = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.backoff.failed("stats", exc)
            return dict.fromkeys(deployment_ids, UNKNOWN)
        seconds, micros = results[0]
        now = seconds + micros / 1e6
        offset = time.time() - now  # rate_limited_until is reported on this host's clock
        out = {}
        for deployment_id, raw in zip(deployment_ids, results[1:], strict=True):
            out[deployment_id] = DeploymentRecord.from_redis(raw).stats(now, self.config, offset) if raw else UNKNOWN
        return out

    async def acquire(self, deployment_id: str) -> bool:
        if self.backoff.down:
            return True
        try:
            return bool(await self._acquire(keys=[self.key(deployment_id)], args=self._acquire_args))
        except REDIS_ERRORS as exc:
            self.backoff.failed("acquire", exc)
            return True

    async def _record_outcome(self, deployment_id: str, kind: str, latency_ms, ttft_ms, retry_after) -> None:
        if self.backoff.down:
            return
        args = (kind, "" if latency_ms is None else float(latency_ms), "" if ttft_ms is None else float(ttft_ms),
                retry_after, *self._record_args)
        try:
            await self._record(keys=[self.key(deployment_id)], args=args)
        except REDIS_ERRORS as exc:
            self.backoff.failed("record", exc)

    async def record_success(self, deployment_id: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        await self._record_outcome(deployment_id, "s", latency_ms, ttft_ms, 0)

    async def known(self) -> list[str]:
        if self.backoff.down:
            return []
        try:
            return [key.decode()[len(self.prefix):] if isinstance(key, bytes) else key[len(self.prefix):]
                    async for key in self.redis.scan_iter(match=self.prefix + "*", count=1000)]
        except REDIS_ERRORS as exc:
            self.backoff.failed("scan", exc)
            return []

    async def record_successes(self, samples: list[tuple[str, float, float | None]]) -> None:
        """One pipeline for many successes: the gateway flushes them in the background, off the request path."""
        if not samples or self.backoff.down:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for deployment_id, latency_ms, ttft_ms in samples:
                args = ("s", float(latency_ms), "" if ttft_ms is None else float(ttft_ms), 0, *self._record_args)
                await self._record(keys=[self.key(deployment_id)], args=args, client=pipe)
            await pipe.execute()
        except REDIS_ERRORS as exc:
            self.backoff.failed("record", exc)

    async def record_failure(self, deployment_id: str, *, retry_after: float | None = None,
                             rate_limited: bool = False, latency_ms: float | None = None) -> None:
        if rate_limited:
            await self._record_outcome(deployment_id, "r", latency_ms, None, retry_after_seconds(retry_after))
        else:
            await self._record_outcome(deployment_id, "f", latency_ms, None, 0)

    async def release(self, deployment_id: str) -> None:
        if self.backoff.down:
            return
        try:
            await self._release(keys=[self.key(deployment_id)], args=[])
        except REDIS_ERRORS as exc:
            self.backoff.failed("release", exc)

    async def reset(self, deployment_id: str) -> None:
        # An admin action: errors propagate so the admin learns the reset did not happen.
        await self.redis.delete(self.key(deployment_id))

    async def close(self) -> None:
        return None
