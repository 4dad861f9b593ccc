"""Deployment health in this process's memory: the embedded default (one process, no Redis). The same
semantics as RedisHealthStore, step for step (see health.py)."""

from __future__ import annotations

import math
import time

from .health_breaker import (
    CLOSED,
    HALF_OPEN,
    KEY_TTL_SECONDS,
    OPEN,
    UNKNOWN,
    WINDOW_BUCKETS,
    BreakerConfig,
    DeploymentRecord,
    HealthStats,
    retry_after_seconds,
)
from .health_store import HealthStore


class LocalHealthStore(HealthStore):
    """The same semantics in this process's memory (embedded default: one process, no Redis)."""

    SWEEP_EVERY = 1024  # writes between sweeps of deployments idle for KEY_TTL_SECONDS

    def __init__(self, config: BreakerConfig | None = None):
        self.config = config or BreakerConfig()
        self._entries: dict[str, DeploymentRecord] = {}
        self._writes = 0

    async def known(self) -> list[str]:
        return list(self._entries)

    def _entry(self, deployment_id: str, now: float) -> DeploymentRecord:
        entry = self._entries.get(deployment_id)
        if entry is None:
            entry = self._entries[deployment_id] = DeploymentRecord()
        entry.touched = now
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            self._sweep(now)
        return entry

    def _sweep(self, now: float) -> None:
        dead = [key for key, entry in self._entries.items() if entry.touched < now - KEY_TTL_SECONDS]
        for key in dead:
            del self._entries[key]

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        now = time.time()
        out = {}
        for deployment_id in deployment_ids:
            entry = self._entries.get(deployment_id)
            out[deployment_id] = entry.stats(now, self.config) if entry is not None else UNKNOWN
        return out

    async def acquire(self, deployment_id: str) -> bool:
        now = time.time()
        entry = self._entries.get(deployment_id)
        if entry is None or (entry.st == CLOSED and (entry.rl is None or now >= entry.rl)):
            self._entry(deployment_id, now).inf += 1
            return True
        if entry.rl is not None and now < entry.rl:
            return False
        config = self.config
        if entry.st == OPEN:
            if now < entry.oa + config.cooldown_seconds:
                return False
            entry.st, entry.pi = HALF_OPEN, 0
        elif entry.pi >= config.half_open_probes and now - entry.pa >= config.probe_timeout_seconds:
            entry.pi = 0  # the probes never reported back
        if entry.pi >= config.half_open_probes:
            return False
        entry.pi += 1
        entry.pa = now
        self._entry(deployment_id, now).inf += 1
        return True

    def _outcome(self, deployment_id: str, now: float, latency_ms: float | None) -> tuple[DeploymentRecord, int, int]:
        """Common bookkeeping of every outcome: returns (entry, effective state, window requests, bucket)."""
        entry = self._entry(deployment_id, now)
        config = self.config
        bucket = math.floor(now / config.bucket_seconds)
        low = bucket - WINDOW_BUCKETS + 1
        for index in [index for index in entry.buckets if index < low]:
            del entry.buckets[index]
        state = entry.circuit(now, config)
        if entry.inf > 0:
            entry.inf -= 1
        entry.buckets.setdefault(bucket, [0, 0])[0] += 1
        if latency_ms is not None:
            entry.lat = self._ewma(entry.lat, latency_ms)
        return entry, state, bucket

    def _ewma(self, old: float | None, sample: float) -> float:
        sample = float(sample)
        if old is None:
            return sample
        alpha = self.config.ewma_alpha
        return alpha * sample + (1 - alpha) * old

    async def record_success(self, deployment_id: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        entry, state, _ = self._outcome(deployment_id, time.time(), latency_ms)
        if ttft_ms is not None:
            entry.ttft = self._ewma(entry.ttft, ttft_ms)
        entry.cf = 0
        entry.rl = None
        if state == HALF_OPEN:
            entry.st, entry.pi, entry.oa, entry.pa = CLOSED, 0, 0.0, 0.0

    async def record_failure(self, deployment_id: str, *, retry_after: float | None = None,
                             rate_limited: bool = False, latency_ms: float | None = None) -> None:
        now = time.time()
        entry, state, bucket = self._outcome(deployment_id, now, latency_ms)
        if rate_limited:
            entry.rl = now + retry_after_seconds(retry_after)
            if entry.st == HALF_OPEN and entry.pi > 0:
                entry.pi -= 1
            return
        entry.buckets[bucket][1] += 1
        entry.cf += 1
        config = self.config
        if state == HALF_OPEN:
            opens = True
        elif state == CLOSED:
            requests, errors = entry.window(now, config)
            opens = entry.cf >= config.failure_threshold or (
                requests >= config.min_requests and errors / requests >= config.error_rate_threshold)
        else:
            opens = False
        if opens:
            entry.st, entry.oa, entry.pi = OPEN, now, 0

    async def release(self, deployment_id: str) -> None:
        entry = self._entries.get(deployment_id)
        if entry is None:
            return
        if entry.inf > 0:
            entry.inf -= 1
        if entry.st == HALF_OPEN and entry.pi > 0:
            entry.pi -= 1

    async def reset(self, deployment_id: str) -> None:
        self._entries.pop(deployment_id, None)

    async def close(self) -> None:
        self._entries.clear()
