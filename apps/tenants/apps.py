from django.apps import AppConfig

from apps.core.config_version import track


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"

    def ready(self):
        # Models load only once the app registry is ready, i.e. here, not at apps.py import time.
        from .models import ApiKey, Tenant

        track(Tenant, ApiKey)
