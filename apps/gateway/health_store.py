"""The contract of a deployment health store (see health.py for the semantics). RedisHealthStore
(health_store_redis.py) is shared by every process; LocalHealthStore (health_store_memory.py) keeps the same
state in one process's memory."""

from __future__ import annotations

from .health_breaker import BreakerConfig, HealthStats


class HealthStore:
    """Per-deployment health and circuit breaker. See health.py for the semantics."""

    config: BreakerConfig

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        """Health of many deployments at once (one round trip); unknown ids are UNKNOWN."""
        raise NotImplementedError

    async def acquire(self, deployment_id: str) -> bool:
        """May this deployment take a request now? If so, it is counted in flight (and may hold a probe slot)."""
        raise NotImplementedError

    async def record_success(self, deployment_id: str, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        raise NotImplementedError

    async def record_failure(self, deployment_id: str, *, retry_after: float | None = None,
                             rate_limited: bool = False, latency_ms: float | None = None) -> None:
        raise NotImplementedError

    async def known(self) -> list[str]:
        """Deployments that have health data (for /metrics and /health, not the request path)."""
        return []

    async def record_successes(self, samples: list[tuple[str, float, float | None]]) -> None:
        """Several successes (deployment, latency_ms, ttft_ms) at once; stores may batch them, leaving the state
        recording them one by one, in order, would."""
        for deployment_id, latency_ms, ttft_ms in samples:
            await self.record_success(deployment_id, latency_ms=latency_ms, ttft_ms=ttft_ms)

    async def release(self, deployment_id: str) -> None:
        """The request ended with no outcome (the client went away)."""
        raise NotImplementedError

    async def reset(self, deployment_id: str) -> None:
        """Forget everything about the deployment."""
        raise NotImplementedError

    async def close(self) -> None:
        return None
