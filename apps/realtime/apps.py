from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"
    verbose_name = "Real-time"

    def ready(self):
        # Registered here (not at import) so importing the relay never has side effects.
        from apps.billing import cost_events
        from apps.gateway import stream_publish
        from apps.workflows import outbox

        from . import tasks  # noqa: F401  (registers the Celery task)
        from .relay_loop import on_events_committed

        outbox.register_listener(on_events_committed)
        stream_publish.set_publisher(_llm_stream_sink)
        cost_events.register_cost_publisher(_cost_events)


def _llm_stream_sink(tenant_id, request_id):
    # why: imported on the first request that asks, so commands and workers never load the completion path
    from .stream_publishing import LlmStreamSink

    return LlmStreamSink(tenant_id, request_id)


def _cost_events(events):
    # why: imported on the first cost event, like the sink above
    from .layer_send import publish_cost_events

    publish_cost_events(events)
