"""`completionStream(completionId: <agent execution id>)` and `agentExecutionUpdates(executionId)`: an agent run
by a real Celery worker against the fake upstream, streamed live, to a subscriber that joins mid-run (replay
then live) and to one that joins after the end (replay only), all the same ordered sequence."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from .conftest import RUN, committed, run
from .test_cost_and_completion_streams import client_for

pytestmark = pytest.mark.django_db

FIELDS = "eventType content metadata usage agentStatus { agentId status progress }"
BY_COMPLETION = f"subscription($id: ID!) {{ completionStream(completionId: $id) {{ {FIELDS} }} }}"
BY_EXECUTION = f"subscription($id: ID!) {{ agentExecutionUpdates(executionId: $id) {{ {FIELDS} }} }}"
WORDS = " ".join(f"w{i}" for i in range(24))


async def collect(session, query, execution_id, *, first_content: asyncio.Event | None = None):
    """Every message until the stream ends, each with its arrival time."""
    got = []
    async for event in session.subscribe(GraphQLRequest(query, variable_values={"id": execution_id})):
        message = next(iter(event.values()))
        got.append((time.monotonic(), message))
        if first_content is not None and message["eventType"] == "content_chunk":
            first_content.set()
    return got


def test_agent_execution_streams_live_replays_to_late_subscribers_and_hides_other_tenants(world, worker):
    from apps.agents import services
    from apps.agents.models import AgentExecution
    from tests import factories

    tenant = world["tenant"]
    agent = committed(services.agent_create, tenant, name=f"streamer-{RUN}", model="gpt-4o",
                      system_prompt="You echo.", user_template="{text}")
    _, inference_only = committed(factories.api_key, tenant, scopes=["inference"])
    worker()
    execution = committed(services.agent_execute, tenant, agent=agent, input={"text": f"{WORDS} !slow 0.05"})
    execution_id = str(execution.id)

    async def scenario():
        async with client_for(world) as live, client_for(world) as mid, client_for(world) as late, \
                client_for(world, world["other_secret"]) as foreign, client_for(world, inference_only) as unread:
            first_content = asyncio.Event()
            live_task = asyncio.ensure_future(collect(live, BY_COMPLETION, execution_id, first_content=first_content))
            await asyncio.wait_for(first_content.wait(), 60)
            mid_events = await collect(mid, BY_EXECUTION, execution_id)  # joins mid-run: replay, then live
            live_events = await asyncio.wait_for(live_task, 30)
            late_events = await collect(late, BY_COMPLETION, execution_id)  # after the end: replay only
            with pytest.raises(TransportQueryError) as refused:
                await collect(foreign, BY_COMPLETION, execution_id)
            with pytest.raises(TransportQueryError) as lacks_read:  # an inference-only key: no outbox reads
                await collect(unread, BY_COMPLETION, execution_id)
            return live_events, mid_events, late_events, refused.value.errors + lacks_read.value.errors

    live_timed, mid_timed, late_timed, errors = run(scenario(), timeout=90)
    live_events = [m for _, m in live_timed]
    done = AgentExecution.objects.get(pk=execution_id)
    assert done.status == "completed"

    kinds = [m["eventType"] for m in live_events]
    assert kinds[0] == "thinking_status" and live_events[0]["metadata"]["status"] == "started"
    assert kinds[1] == "thinking_status" and live_events[1]["metadata"]["status"] == "thinking"
    assert kinds[-1] == "completed" and kinds.count("completed") == 1
    assert set(kinds[2:-1]) == {"content_chunk"} and kinds.count("content_chunk") >= 3  # coalesced per 100 ms
    assert "".join(m["content"] for m in live_events if m["eventType"] == "content_chunk") == done.output_text
    assert done.output_text == f"[openai] You said: {WORDS} !slow 0.05"
    # chunks arrived over time (the fake waits 50 ms between pieces), not all at the end
    chunk_times = [t for t, m in live_timed if m["eventType"] == "content_chunk"]
    assert chunk_times[-1] - chunk_times[0] > 0.5
    seqs = [m["metadata"]["seq"] for m in live_events]
    assert seqs == sorted(set(seqs))
    assert [m["agentStatus"]["status"] for m in live_events] == ["running"] * (len(live_events) - 1) + ["completed"]
    assert {m["agentStatus"]["agentId"] for m in live_events} == {str(agent.id)}
    assert live_events[-1]["agentStatus"]["progress"] == 1.0
    usage = live_events[-1]["usage"]
    assert usage["completion_tokens"] == done.completion_tokens > 0
    assert Decimal(usage["cost"]) == done.cost > 0 and Decimal(live_events[-1]["metadata"]["cost"]) == done.cost

    # the subscriber that joined mid-run and the one that joined after the end: the same sequence, once each
    mid_events = [m for _, m in mid_timed]
    assert mid_events == live_events
    assert [m for _, m in late_timed] == live_events
    assert mid_timed[-1][0] - mid_timed[0][0] > 0.2  # part of it arrived live, not all from the replay

    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert errors[1]["extensions"]["code"] == "INSUFFICIENT_SCOPE" and "'read'" in errors[1]["message"]


def test_a_pending_execution_cancelled_ends_its_stream(world):
    """No worker runs it: cancelling a pending execution records its final event, which ends the stream."""
    from apps.agents import services
    from apps.agents.models import AgentExecution

    tenant = world["tenant"]
    agent = committed(services.agent_create, tenant, name=f"idle-{RUN}", model="gpt-4o", user_template="{text}")
    execution = committed(services.agent_execute, tenant, agent=agent, input={"text": "never run"})
    pending = AgentExecution.objects.select_related("agent").get(pk=execution.pk)

    async def scenario():
        async with client_for(world) as session:
            task = asyncio.ensure_future(collect(session, BY_EXECUTION, str(execution.id)))
            await asyncio.sleep(0.5)
            assert not task.done()
            await asyncio.to_thread(committed, services.execution_cancel, tenant, execution=pending)
            return [m for _, m in await asyncio.wait_for(task, 15)]

    events = run(scenario(), timeout=30)
    assert [(m["eventType"], m["agentStatus"]["status"]) for m in events] == [("error", "cancelled")]
    assert events[0]["metadata"]["code"] == "cancelled"
