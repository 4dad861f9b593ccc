from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "apps.functions"
    label = "functions"
    verbose_name = "Functions"

    def ready(self):
        # why: the tasks register with Celery, and the listener starts triggers from committed workflow events.
        from apps.workflows import outbox

        from . import tasks  # noqa: F401
        from .triggers import workflow_events_committed

        outbox.register_listener(workflow_events_committed)
