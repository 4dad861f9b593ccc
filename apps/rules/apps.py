from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "apps.rules"
    label = "rules"
    verbose_name = "Rules"

    def ready(self):
        # Inside ready() because models cannot be imported while the app registry is being populated.
        from apps.core.config_version import track

        from .models import Rule

        # Named rules may appear in conditions other processes hold compiled (cost rules in the gateway's
        # snapshot, later): a change must reach them like any other configuration change.
        track(Rule)
