"""Live health of providers, as the gateway measures it, for readers below the gateway (the GraphQL types).

The gateway owns the circuit state (apps/gateway/health*.py) and registers `provider_health` here when it
loads; this app cannot import it (the gateway is a layer above). Without a registered source every provider
reads as unmeasured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One provider's deployments taken together: healthy unless a circuit is open; rates over the window."""

    is_healthy: bool
    circuit: str  # "closed" | "half_open" | "open" (the worst of its deployments)
    requests: int
    error_rate: float
    average_latency_ms: float | None
    consecutive_failures: int
    deployments_measured: int
    read_at: datetime
    last_error: str | None = None  # the tenant's last failed request through it (ledger), e.g. "upstream_error 502"
    last_error_at: datetime | None = None


def unmeasured(*, last_error: str | None = None, last_error_at: datetime | None = None) -> ProviderHealth:
    return ProviderHealth(is_healthy=True, circuit="closed", requests=0, error_rate=0.0, average_latency_ms=None,
                          consecutive_failures=0, deployments_measured=0, read_at=datetime.now(UTC),
                          last_error=last_error, last_error_at=last_error_at)


# reader(provider_ids, tenant_id=…) -> {provider_id: ProviderHealth} for every id asked
HealthReader = Callable[..., dict[int, ProviderHealth]]
_reader: HealthReader | None = None


def register(reader: HealthReader | None) -> None:
    global _reader
    _reader = reader


def provider_health(provider_ids: Iterable[int], *, tenant_id: int) -> dict[int, ProviderHealth]:
    """Health per provider id, as the tenant sees it (its own last error)."""
    ids = sorted(set(provider_ids))
    if _reader is None or not ids:
        return {pid: unmeasured() for pid in ids}
    return _reader(ids, tenant_id=tenant_id)
