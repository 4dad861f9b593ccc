"""A subscriber's view of the workflow event stream: optional replay from the table, then live, by `seq`.

The feed joins its group first, then reads the published rows after the cursor, then reads the group. A row
published after the join arrives through the group; one published before the read is in the table; both can
happen for the same row, so anything at or below the last `seq` delivered is dropped. Since `seq` is commit
order (see `models.py`), nothing between the cursor and the live stream is skipped. A re-sent event (a batch
retried after a failed send gets new `seq`s) is dropped by its event id."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.db.models import Max

from apps.workflows.models import WorkflowEvent

from .event_messages import LAYER_TYPE, event_message
from .layer_feed import group_messages
from .models import PublishedEvent
from .relay_loop import drain

REPLAY_PAGE = 500


def resume_seq(after_id: int) -> int:
    """The `seq` to replay after, for a client that has seen event `after_id` (an event id, as in SSE
    `id:` lines and the REST API). An event committed but not yet published is published first."""
    seq = PublishedEvent.objects.filter(event_id=after_id).values_list("seq", flat=True).first()
    if seq is None and WorkflowEvent.objects.filter(id=after_id, published_at__isnull=True).exists():
        drain()
        seq = PublishedEvent.objects.filter(event_id=after_id).values_list("seq", flat=True).first()
    if seq is None:  # an id never written (0, or rolled back): the position of the ids below it
        seq = PublishedEvent.objects.filter(event_id__lte=after_id).aggregate(m=Max("seq"))["m"]
    return seq or 0


def published_after(seq: int, *, tenant_id: int, filters: dict, limit: int = REPLAY_PAGE) -> list[dict]:
    rows = (PublishedEvent.objects.filter(seq__gt=seq, event__tenant_id=tenant_id,
                                          **{f"event__{k}": v for k, v in filters.items()})
            .select_related("event").order_by("seq")[:limit])
    return [event_message(row.event, row.seq) for row in rows]


async def workflow_event_feed(group: str, *, tenant_id: int, filters: dict,
                              after: int | None = None) -> AsyncIterator[dict]:
    """Events of `group` (whose rows match `filters` on `WorkflowEvent`), replayed after event id `after`
    when given, then live."""
    state = {"last": 0 if after is None else None}
    seen: deque = deque(maxlen=2048)

    async def replay():
        last = await sync_to_async(resume_seq, thread_sensitive=False)(int(after))
        while True:
            page = await sync_to_async(published_after, thread_sensitive=False)(
                last, tenant_id=tenant_id, filters=filters)
            for message in page:
                last = message["seq"]
                yield {"type": LAYER_TYPE, "event": message}
            if len(page) < REPLAY_PAGE:
                break
        state["last"] = last

    messages = group_messages([group], joined=replay if after is not None else None)
    try:
        async for message in messages:
            if message.get("type") != LAYER_TYPE:
                continue
            event = message["event"]
            last = state["last"]
            if last is not None and event["seq"] <= last:
                continue
            if event["id"] in seen:
                continue
            seen.append(event["id"])
            state["last"] = max(last or 0, event["seq"])
            yield event
    finally:
        await messages.aclose()
