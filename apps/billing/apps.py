from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "apps.billing"
    label = "billing"

    def ready(self):
        from apps.core.config_version import track

        from .models import Budget, CostRule

        track(Budget, CostRule)
