from django.apps import AppConfig

from apps.core.health import register_health_section
from apps.providers import health_source


class GatewayConfig(AppConfig):
    name = "apps.gateway"
    label = "gateway"

    def ready(self):
        register_health_section("providers", _provider_health)
        health_source.register(_provider_health_reader)


async def _provider_health() -> dict:
    """/health's `providers`: circuit states of global providers, from this process's gateway."""
    # Imported on the first probe rather than at start-up, so management commands and workers never load the
    # hot path (same app, not an upward import).
    from .app import gateway_app

    return await gateway_app.runtime.provider_health()


def _provider_health_reader(provider_ids: list[int], *, tenant_id: int) -> dict:
    """GraphQL's providers' health, from the live circuit state (see health_report)."""
    # why: imported on the first read, so workers and management commands never load the hot path
    from .health_report import provider_health

    return provider_health(provider_ids, tenant_id=tenant_id)
