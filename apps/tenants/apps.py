from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"

    def ready(self):
        from apps.core.config_version import track

        from .models import ApiKey, Tenant

        track(Tenant, ApiKey)
