from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"
    verbose_name = "Real-time"

    def ready(self):
        # Registered here (not at import) so importing the relay never has side effects.
        from apps.workflows import outbox

        from . import tasks  # noqa: F401  (registers the Celery task)
        from .relay_loop import on_events_committed

        outbox.register_listener(on_events_committed)
