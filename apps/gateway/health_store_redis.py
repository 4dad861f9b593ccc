"""Deployment health shared by every process through Redis: one hash per deployment (`<prefix><deployment_id>`,
TTL one day, refreshed on every write), changed only by the Lua scripts beside this module (health_acquire.lua,
health_record.lua, health_record_many.lua, health_release.lua), which read Redis' own clock so processes on hosts
with skewed clocks agree and two processes never race.

Redis trouble never reaches the request path: reads degrade to UNKNOWN, `acquire` to "yes", writes are
dropped. After a connection error the store does not even try for a second (apps/core/redis_backoff.py); a
script or data error fails only its own call and is logged as an error.

The per-tick calls (`stats`, `record_successes`) go through the process's pipelined connection
(apps/core/redis_pipelined.py) in one write each: a tick's buffered successes are one script call per
deployment carrying all its samples, not one per success.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from redis.exceptions import ResponseError

from apps.core.redis_backoff import REDIS_ERRORS, backoff_for
from apps.core.redis_pipelined import PipelinedRedis, raise_errors

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
RECORD_MANY_LUA = (_HERE / "health_record_many.lua").read_text()
RECORD_MANY_SHA = hashlib.sha1(RECORD_MANY_LUA.encode(), usedforsecurity=False).hexdigest()
RELEASE_LUA = (_HERE / "health_release.lua").read_text()

REDIS_BACKOFF_SECONDS = 1.0  # after a connection error, answer degraded without trying for this long


class RedisHealthStore(HealthStore):
    """Health shared by every process through Redis. The caller owns `redis` and a `wire` it passes (close()
    leaves them open); without one the store opens its own pipelined connection to the same server."""

    def __init__(self, redis, config: BreakerConfig, prefix: str = "cb:health:", *,
                 wire: PipelinedRedis | None = None):
        self.redis = redis
        self._own_wire = wire is None
        self.wire = PipelinedRedis.from_client(redis) if wire is None else wire
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
            replies = await self.wire.send(("TIME",), *[("HGETALL", self.key(d)) for d in deployment_ids])
            seconds, micros = raise_errors(replies[:1])[0]
        except REDIS_ERRORS as exc:
            self.backoff.failed("stats", exc)
            return dict.fromkeys(deployment_ids, UNKNOWN)
        now = int(seconds) + int(micros) / 1e6
        offset = time.time() - now  # rate_limited_until is reported on this host's clock
        out, error = {}, None
        for deployment_id, raw in zip(deployment_ids, replies[1:], strict=True):
            if isinstance(raw, Exception):  # e.g. WRONGTYPE: that deployment alone is unknown
                error = raw
                out[deployment_id] = UNKNOWN
            elif raw:  # hiredis answers HGETALL with a flat [field, value, ...] list
                record = DeploymentRecord.from_redis(dict(zip(raw[::2], raw[1::2], strict=True)))
                out[deployment_id] = record.stats(now, self.config, offset)
            else:
                out[deployment_id] = UNKNOWN
        if error is not None:
            self.backoff.failed("stats", ResponseError(str(error)))
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
        # One script for successes, one or many (health_record_many.lua): a half-open trial's success is a batch of 1.
        await self.record_successes([(deployment_id, latency_ms, ttft_ms)])

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
        """The gateway's buffered successes (flushed off the request path): one health_record_many.lua call per
        deployment with its samples in order, every deployment in one write."""
        if not samples or self.backoff.down:
            return
        grouped: dict[str, list] = {}
        for deployment_id, latency_ms, ttft_ms in samples:
            grouped.setdefault(deployment_id, []).extend((float(latency_ms), "" if ttft_ms is None else float(ttft_ms)))
        commands = [("EVALSHA", RECORD_MANY_SHA, 1, self.key(deployment_id), *values, *self._record_args)
                    for deployment_id, values in grouped.items()]
        try:
            replies = await self.wire.send(*commands)
            missing = [command for command, reply in zip(commands, replies, strict=True) if _noscript(reply)]
            if missing:
                # Redis lost its script cache (a restart, SCRIPT FLUSH): load the script and run those calls again.
                retried = await self.wire.send(("SCRIPT", "LOAD", RECORD_MANY_LUA), *missing)
                replies = [*(reply for reply in replies if not _noscript(reply)), *retried]
            raise_errors(replies)  # any other error reply failed its own deployment only (the rest were applied)
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
        if self._own_wire:
            await self.wire.close()


def _noscript(reply) -> bool:
    return isinstance(reply, Exception) and str(reply).startswith("NOSCRIPT")
