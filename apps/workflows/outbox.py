"""After-commit listeners of the workflow event outbox, and recording events from other apps.

Every state change writes `WorkflowEvent` rows in its own transaction; once it commits, the listeners other
apps registered (place agents, function triggers, the real-time relay) are called with those rows, in the
committing thread. A row written by the one-statement firing path has no `id` on the object: a listener that
needs ids (the relay) reads the committed rows back. A listener's failure is logged and never undoes or
blocks the change; whatever must not be lost is found again from the table (`published_at IS NULL`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.db import transaction
from django.utils import timezone

from .models import WorkflowEvent

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[WorkflowEvent]], None]
_listeners: list[Listener] = []


def register_listener(listener: Listener) -> None:
    """Call `listener(events)` after every commit that wrote outbox rows (registered from `AppConfig.ready`)."""
    if listener not in _listeners:
        _listeners.append(listener)


def unregister_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def committed(events: Sequence[WorkflowEvent]) -> None:
    for listener in list(_listeners):
        try:
            listener(events)
        except Exception:
            log.exception("workflow event listener %r failed", listener)


def notify_on_commit(events: Sequence[WorkflowEvent], on_commit: Callable = transaction.on_commit) -> None:
    if events and _listeners:
        batch = list(events)
        on_commit(lambda: committed(batch))


def event_record(tenant_id, *, workflow: str, type: str, data: dict | None = None, instance_id=None,
                 token_id=None) -> WorkflowEvent:
    """Write one event (agents' and functions' too) and notify the listeners once the caller's transaction
    commits (at once outside a transaction)."""
    event = WorkflowEvent.objects.create(tenant_id=tenant_id, workflow=workflow, instance_id=instance_id,
                                         token_id=token_id, type=type, data=data or {}, created_at=timezone.now())
    notify_on_commit([event])
    return event
