from django.apps import AppConfig

from apps.core.health import register_health_section
from apps.providers import health_source


class GatewayConfig(AppConfig):
    name = "apps.gateway"
    label = "gateway"

    def ready(self):
        register_health_section("providers", _provider_health)
        from .health_report import provider_health  # why: it reads models, which load after the app configs

        health_source.register(provider_health)


async def _provider_health() -> dict:
    """/health's `providers`: circuit states of global providers, from this process's gateway."""
    # Imported on the first probe rather than at start-up, so management commands and workers never load the
    # hot path (same app, not an upward import).
    from .app import gateway_app

    return await gateway_app.runtime.provider_health()
