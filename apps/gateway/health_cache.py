"""Deployment health as this process sees it: the shared store, read through a per-process cache.

Per request, the store would cost three Redis round trips (read stats, acquire, record) — measured at
about 40 % of a request's CPU. Most requests go to deployments whose circuit is closed, where nothing needs
to be atomic, so:
- routing reads stats from a cache that a background tick refreshes every REFRESH_SECONDS (a deployment seen
  for the first time is fetched at once);
- acquiring a deployment whose cached circuit is closed is local; only open / half-open deployments go to
  the store, whose Lua script hands out the half-open trial slots atomically across processes;
- successes are buffered and flushed once per tick, all in one write (the Redis store makes one script call
  per deployment carrying all its samples); failures go to the store at once (they decide circuits) and
  refresh that deployment's cached state right away.
Staleness is bounded by one tick: another process's freshly opened circuit may still get a request here,
which fails over like any failure and updates this cache.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass

from .health import HealthStats, HealthStore

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 0.25
FORGET_AFTER_SECONDS = 120  # deployments not used for this long are no longer refreshed


@dataclass(slots=True)
class Ticket:
    deployment: str
    shared: bool  # acquired through the store (a half-open trial): its outcome must reach the store now


class HealthCache:
    def __init__(self, store: HealthStore):
        self.store = store
        self.cache: dict[str, HealthStats] = {}
        self.used: dict[str, float] = {}
        self.inflight: Counter = Counter()
        self.pending: list[tuple[str, float, float | None]] = []

    async def stats(self, deployment_ids: list[str]) -> dict[str, HealthStats]:
        """Cached stats. A deployment this process has not seen yet is fetched once (one round trip for all
        of them), so its first request is not routed blind; after that the tick keeps it fresh."""
        missing = [d for d in deployment_ids if d not in self.cache]
        if missing:
            await self._refresh(missing)
        now = time.monotonic()
        out = {}
        for deployment in deployment_ids:
            self.used[deployment] = now
            cached = self.cache.get(deployment)
            local = self.inflight.get(deployment, 0)
            if cached is not None:
                out[deployment] = dataclasses.replace(cached, inflight=cached.inflight + local) if local else cached
        return out

    async def acquire(self, deployment: str) -> Ticket | None:
        cached = self.cache.get(deployment)
        limited = (cached is not None and cached.rate_limited_until is not None
                   and cached.rate_limited_until > time.time())
        if cached is None or (cached.circuit == "closed" and not limited):
            self.inflight[deployment] += 1
            return Ticket(deployment, shared=False)
        if await self.store.acquire(deployment):
            self.inflight[deployment] += 1
            return Ticket(deployment, shared=True)
        return None

    def _done(self, ticket: Ticket) -> None:
        if self.inflight[ticket.deployment] > 1:
            self.inflight[ticket.deployment] -= 1
        else:
            self.inflight.pop(ticket.deployment, None)

    async def success(self, ticket: Ticket, *, latency_ms: float, ttft_ms: float | None = None) -> None:
        self._done(ticket)
        if ticket.shared:
            await self.store.record_success(ticket.deployment, latency_ms=latency_ms, ttft_ms=ttft_ms)
            await self._refresh([ticket.deployment])
        else:
            self.pending.append((ticket.deployment, latency_ms, ttft_ms))

    async def failure(self, ticket: Ticket, *, retry_after: float | None = None, rate_limited: bool = False,
                      latency_ms: float | None = None) -> None:
        self._done(ticket)
        await self.store.record_failure(ticket.deployment, retry_after=retry_after, rate_limited=rate_limited,
                                        latency_ms=latency_ms)
        await self._refresh([ticket.deployment])

    async def release(self, ticket: Ticket) -> None:
        self._done(ticket)
        if ticket.shared:
            await self.store.release(ticket.deployment)

    async def _refresh(self, deployment_ids: list[str]) -> None:
        if deployment_ids:
            self.cache.update(await self.store.stats(deployment_ids))

    async def tick(self) -> None:
        """Flush buffered successes, then refresh every deployment used recently."""
        pending, self.pending = self.pending, []
        if pending:
            await self.store.record_successes(pending)
        horizon = time.monotonic() - FORGET_AFTER_SECONDS
        for deployment, last in list(self.used.items()):
            if last < horizon:
                del self.used[deployment]
                self.cache.pop(deployment, None)
        await self._refresh(list(self.used))
