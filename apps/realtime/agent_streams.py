"""An agent execution as a completion stream: `completionStream(completionId: <execution id>)` and
`agentExecutionUpdates(executionId)`.

The execution's events are outbox rows (`agent_started` … `agent_completed` / `agent_failed`, each with
`data.execution_id`), relayed to the group `cb-ex-<tenant>-<execution>`. A subscriber reads them through the
workflow event feed from the beginning (`after` = 0): it joins the group, replays the published rows of this
execution by `seq`, then goes live, dropping what it has by `seq` — a late subscriber gets everything once, in
commit order. Each event becomes a completion-stream message with the execution's status at that point; the
stream ends after the final event (the final status and the final event commit together)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from asgiref.sync import sync_to_async

from apps.agents.access import execution_access_by_id
from apps.agents.models import FINISHED, AgentExecution
from apps.workflows.models import WorkflowEvent

from . import groups
from .event_feed import REPLAY_PAGE, published_after, workflow_event_feed
from .relay_loop import drain

# outbox event type → completion protocol message type
KINDS = {"agent_started": "thinking_status", "agent_thinking": "thinking_status", "agent_retrying": "thinking_status",
         "agent_content": "content_chunk", "agent_tool_call": "tool_call", "agent_tool_result": "tool_result",
         "agent_completed": "completed", "agent_failed": "error"}
FINAL = ("agent_completed", "agent_failed")
_CLOCK_SLACK = timedelta(minutes=5)  # events are stamped by the writing process's clock


def execution_for(tenant, stream_id) -> AgentExecution | None:
    """The tenant's agent execution with this id; None when no execution has it (a completion id). Another
    tenant's execution is NotFound, as a missing one would be on any other surface."""
    try:
        uuid.UUID(str(stream_id))
    except ValueError:
        return None
    if not AgentExecution.objects.filter(pk=stream_id).exists():
        return None
    return execution_access_by_id(tenant, stream_id)


def _filters(execution: AgentExecution) -> dict:
    # The instance (indexed) or the creation time narrows the replay's scan of the tenant's events.
    filters = {"data__execution_id": str(execution.id), "type__in": list(KINDS),
               "created_at__gte": execution.created_at - _CLOCK_SLACK}
    if execution.instance_id:
        filters["instance_id"] = execution.instance_id
    return filters


def _status_after(event_type: str, data: dict) -> str:
    if event_type == "agent_completed":
        return "completed"
    if event_type == "agent_failed":
        return data.get("status") or "failed"
    return "pending" if event_type == "agent_retrying" else "running"


def payload(event: dict, agent_id: str) -> dict:
    """A relayed agent event (`event_messages.event_message`) as a `CompletionStreamEvent`."""
    type_ = event["eventType"]
    data = dict(event.get("data") or {})
    status = _status_after(type_, data)
    content = data.pop("content", None) if type_ in ("agent_content", "agent_thinking") else None
    usage = data.pop("usage", None)
    metadata = {**data, "source_event": type_, "event_id": event["id"], "seq": event["seq"],
                "timestamp": event["timestamp"]}
    if type_ == "agent_started":
        metadata["status"] = "started"
    elif type_ == "agent_retrying":
        metadata["status"] = "retrying"
    elif type_ == "agent_failed":
        metadata["message"] = data.get("error")
    if usage is not None and "cost" in usage:
        metadata["cost"] = usage["cost"]
    return {"event_type": KINDS[type_], "content": content, "metadata": metadata, "usage": usage,
            "agent_status": {"agent_id": agent_id, "status": status,
                             "progress": 1.0 if status in FINISHED else None}}


def _final_from_row(execution: AgentExecution) -> dict:
    """An execution that finished without a final event (cancelled while pending before such cancels recorded
    one): its row says how it ended."""
    row = AgentExecution.objects.get(pk=execution.pk)
    usage = {"prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens,
             "total_tokens": row.total_tokens, "cost": str(row.cost)}
    metadata = {"execution_id": str(row.id), "agent_id": str(row.agent_id), "status": row.status,
                "code": row.error_code or None, "message": row.error or None}
    return {"event_type": "completed" if row.status == "completed" else "error", "content": None,
            "metadata": metadata, "usage": usage,
            "agent_status": {"agent_id": str(row.agent_id), "status": row.status, "progress": 1.0}}


def _final_recorded(tenant_id: int, filters: dict) -> bool:
    return WorkflowEvent.objects.filter(tenant_id=tenant_id, **{**filters, "type__in": FINAL}).exists()


async def _recorded(tenant_id: int, filters: dict) -> AsyncIterator[dict]:
    """Every event of a finished execution from the table (published first), without going live."""
    await sync_to_async(drain, thread_sensitive=False)()
    last = 0
    while True:
        page = await sync_to_async(published_after, thread_sensitive=False)(last, tenant_id=tenant_id,
                                                                           filters=filters)
        for message in page:
            last = message["seq"]
            yield message
        if len(page) < REPLAY_PAGE:
            return


async def execution_stream(tenant_id: int, execution: AgentExecution) -> AsyncIterator[dict]:
    """The execution's events so far, then live, as completion-stream messages, until its final event."""
    filters = _filters(execution)
    agent_id = str(execution.agent_id)
    unended = execution.status in FINISHED and not await sync_to_async(
        _final_recorded, thread_sensitive=False)(tenant_id, filters)
    events = (_recorded(tenant_id, filters) if unended else
              workflow_event_feed(groups.execution(tenant_id, execution.id), tenant_id=tenant_id, filters=filters,
                                  after=0))
    try:
        async for event in events:
            if event["eventType"] not in KINDS:
                continue
            yield payload(event, agent_id)
            if event["eventType"] in FINAL:
                return
        if unended:
            yield await sync_to_async(_final_from_row, thread_sensitive=False)(execution)
    finally:
        await events.aclose()
