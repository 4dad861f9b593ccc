from django.apps import AppConfig
from django.db.models.signals import post_migrate

from apps.core.config_version import track


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"

    def ready(self):
        # Models load only once the app registry is ready, i.e. here, not at apps.py import time.
        from .models import ModelEntry, ModelRoute, Provider, ProviderCredential, VirtualModel

        track(Provider, ProviderCredential, ModelEntry, VirtualModel, ModelRoute)
        post_migrate.connect(_mirror_environment, sender=self, dispatch_uid="providers-env-sync")


def _mirror_environment(using="default", **kwargs):
    """`migrate` also mirrors environment providers, so `migrate` + `runserver` works like `serve`."""
    from .env_sync import providers_sync_from_env  # imports models: only after the registry is ready

    if using == "default":
        providers_sync_from_env()
