from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "apps.providers"
    label = "providers"

    def ready(self):
        from apps.core.config_version import track

        from .models import ModelEntry, Provider, ProviderCredential

        track(Provider, ProviderCredential, ModelEntry)
