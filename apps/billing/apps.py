from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "apps.billing"
    label = "billing"

    def ready(self):
        # Inside ready() because models cannot be imported while the app registry is being populated.
        from apps.core.config_version import track

        from .models import Budget, CostRule

        track(Budget, CostRule)
