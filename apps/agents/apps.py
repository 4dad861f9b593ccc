from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "apps.agents"
    label = "agents"
    verbose_name = "Agents"

    def ready(self):
        # why: the task module must be registered (dispatch enqueues it by name); the listener starts place
        # agents when tokens enter their places.
        from apps.workflows import outbox

        from . import tasks  # noqa: F401
        from .triggers import on_events

        outbox.register_listener(on_events)
