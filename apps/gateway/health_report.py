"""Per-provider health from the live circuit state, for the platform's readers (GraphQL `llmProviders`).

Registered with `apps.providers.health_source` by the gateway's AppConfig (imported when the first reader asks,
so workers and management commands never load the hot path). It reads the same store the hot path
writes (Redis when configured, shared by every process; else this process's memory), on the loop that owns the
gateway runtime, so the embedded default's in-memory circuits are the ones /v1 requests moved.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from apps.billing.selectors import last_failures
from apps.providers.health_source import ProviderHealth, unmeasured

from . import completion_api

READ_TIMEOUT_SECONDS = 2.0
_WORST = {"closed": 0, "half_open": 1, "open": 2}


async def _read(provider_ids: list[int]) -> dict[int, ProviderHealth]:
    rt = completion_api._runtime()
    await rt.ready()
    wanted = {str(pid) for pid in provider_ids}
    deployments = [d for d in await rt.health_store.known() if d.partition(":")[0] in wanted]
    stats = await rt.health_store.stats(deployments) if deployments else {}
    now = datetime.now(UTC)
    grouped: dict[int, list] = {}
    for deployment, item in stats.items():
        grouped.setdefault(int(deployment.partition(":")[0]), []).append(item)
    out = {}
    for provider_id, items in grouped.items():
        requests = sum(s.requests for s in items)
        errors = sum(s.errors for s in items)
        latencies = [(s.latency_ms, max(s.requests, 1)) for s in items if s.latency_ms is not None]
        weight = sum(w for _, w in latencies)
        circuit = max((s.circuit for s in items), key=lambda c: _WORST.get(c, 0))
        out[provider_id] = ProviderHealth(
            is_healthy=circuit != "open" and any(s.available for s in items), circuit=circuit, requests=requests,
            error_rate=round(errors / requests, 6) if requests else 0.0,
            average_latency_ms=round(sum(v * w for v, w in latencies) / weight, 3) if weight else None,
            consecutive_failures=max(s.consecutive_failures for s in items), deployments_measured=len(items),
            read_at=now)
    return out


def provider_health(provider_ids: list[int], *, tenant_id: int) -> dict[int, ProviderHealth]:
    """Every asked provider's health for the tenant (sync: GraphQL resolvers run in sync views). The ledger
    query runs here, in the caller's thread; the circuit state on the runtime's loop."""
    failures = last_failures(tenant_id=tenant_id, provider_ids=provider_ids)
    live = completion_api.run_sync(lambda: _read(provider_ids), timeout=READ_TIMEOUT_SECONDS)
    out = {}
    for provider_id in provider_ids:
        error, at = failures.get(provider_id, (None, None))
        state = live.get(provider_id)
        out[provider_id] = replace(state, last_error=error, last_error_at=at) if state else unmeasured(
            last_error=error, last_error_at=at)
    return out


def global_provider_status() -> dict[str, dict]:
    """/health's providers section (global providers: healthy, degraded, down or unknown), read now."""
    async def read():
        rt = completion_api._runtime()
        await rt.ready()
        return await rt.provider_health()

    return completion_api.run_sync(read, timeout=READ_TIMEOUT_SECONDS)
