from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self):
        # Registers the tasks, which firing.py enqueues by name (it cannot import tasks.py, which imports it).
        from . import tasks  # noqa: F401
