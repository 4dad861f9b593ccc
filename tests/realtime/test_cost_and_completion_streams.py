"""`costUpdates` from the real Celery worker's ledger ingestion and budget alerts; `completionStream` (and
`llmStream` under the same id) fed by `start_background_completion`."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import openai
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from .conftest import committed, run, take, ws_url

pytestmark = pytest.mark.django_db

COSTS = """subscription($u: String) { costUpdates(userId: $u) {
  eventType userId requestId model cost budgetId threshold spent limit timestamp } }"""


def client_for(world, secret=None):
    return Client(transport=WebsocketsTransport(
        url=ws_url(world["server"]), subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"apiKey": secret or world["secret"]}))


def test_cost_updates_from_ingestion_and_budget_alerts(world, worker):
    from apps.billing.models import Budget

    user = f"alice-{uuid.uuid4().hex[:6]}"
    budget = committed(lambda: Budget.objects.create(
        tenant=world["tenant"], user_label=user, limit=Decimal("0.000001"), period="monthly", action="notify",
        alert_thresholds=[50, 100]))
    budget_id = budget.id
    worker()
    api = openai.AsyncOpenAI(base_url=f"{world['server'].url}/v1", api_key=world["secret"])

    async def scenario():
        async with client_for(world) as mine, client_for(world, world["other_secret"]) as theirs:
            events = mine.subscribe(GraphQLRequest(COSTS, variable_values={"u": user}))
            foreign = theirs.subscribe(GraphQLRequest(COSTS, variable_values={"u": None}))
            got = asyncio.ensure_future(take(events, 3, timeout=40))
            leaked = asyncio.ensure_future(take(foreign, 1, timeout=40))
            await asyncio.sleep(0.5)
            reply = await api.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "what does this cost"}],
                extra_body={"circuit_breaker": {"budget_tracking": {"user_id": user}}})
            result = await got
            await asyncio.sleep(1)
            assert not leaked.done()
            leaked.cancel()
            await asyncio.gather(leaked, return_exceptions=True)
            await events.aclose()
            await foreign.aclose()
            await api.close()
            return reply.headers["x-cb-request-id"], [e["costUpdates"] for e in result]

    try:
        request_id, events = run(scenario(), timeout=60)
    finally:
        committed(budget.delete)
    by_type = {e["eventType"]: e for e in events}
    assert set(by_type) == {"cost_incurred", "budget_warning", "budget_exhausted"}
    incurred = by_type["cost_incurred"]
    assert (incurred["requestId"], incurred["userId"], incurred["model"]) == (request_id, user, "gpt-4o")
    assert Decimal(incurred["cost"]) > 0
    assert by_type["budget_warning"]["threshold"] == 50 and by_type["budget_exhausted"]["threshold"] == 100
    assert int(by_type["budget_exhausted"]["budgetId"]) == budget_id
    assert Decimal(by_type["budget_exhausted"]["spent"]) >= Decimal(by_type["budget_exhausted"]["limit"])


def test_background_completion_feeds_completion_stream_and_llm_stream(world):
    from apps.realtime.completions import start_background_completion

    completion_id = f"cmpl-{uuid.uuid4().hex[:10]}"
    stream = """subscription($c: ID!) { completionStream(completionId: $c) {
      eventType content metadata usage agentStatus { agentId status progress } } }"""
    llm = "subscription($r: String!) { llmStream(requestId: $r) { id content tokens cost done } }"

    async def collect(session, query, variables, done):
        got = []
        async for event in session.subscribe(GraphQLRequest(query, variable_values=variables)):
            got.append(event)
            if done(event):
                return got
        return got

    async def scenario():
        async with client_for(world) as a, client_for(world) as b:
            events = asyncio.ensure_future(collect(a, stream, {"c": completion_id},
                                                   lambda e: e["completionStream"]["eventType"] == "completed"))
            chunks = asyncio.ensure_future(collect(b, llm, {"r": completion_id}, lambda e: e["llmStream"]["done"]))
            await asyncio.sleep(0.5)
            # From a plain thread, as a worker or a synchronous resolver calls it: it runs on a thread of its own.
            thread = await asyncio.to_thread(start_background_completion, world["tenant"], {
                "model": "gpt-4o", "messages": [{"role": "user", "content": "stream me in the background"}]},
                completion_id=completion_id)
            result = await asyncio.wait_for(asyncio.gather(events, chunks), 30)
            await asyncio.to_thread(thread.join, 10)
            return result

    events, chunks = run(scenario(), timeout=40)
    kinds = [e["completionStream"]["eventType"] for e in events]
    assert kinds[0] == "thinking_status" and kinds[-1] == "completed" and "content_chunk" in kinds
    text = "".join(e["completionStream"]["content"] or "" for e in events
                   if e["completionStream"]["eventType"] == "content_chunk")
    assert "stream me in the background" in text
    assert events[-1]["completionStream"]["usage"]["completion_tokens"] > 0
    assert "".join(c["llmStream"]["content"] for c in chunks) == text
    assert chunks[-1]["llmStream"]["done"] and Decimal(chunks[-1]["llmStream"]["cost"]) > 0


def test_create_completion_stream_true_then_a_late_subscriber_gets_everything(world):
    """GraphQL's createCompletion(stream: true) answers with the id once the completion has started; the
    subscription that follows replays what was published before it joined, then the rest, once each."""
    import httpx

    mutation = """mutation($input: CompletionInput!) { createCompletion(input: $input) { id streaming } }"""
    answer = httpx.post(f"{world['server'].graphql_url}/graphql", timeout=30,
                        headers={"Authorization": f"Bearer {world['secret']}"},
                        json={"query": mutation, "variables": {"input": {
                            "model": "gpt-4o", "stream": True,
                            "messages": [{"role": "USER", "content": "late but complete !slow 0.05"}]}}}).json()
    completion_id = answer["data"]["createCompletion"]["id"]
    stream = """subscription($c: ID!) { completionStream(completionId: $c) { eventType content usage } }"""

    async def scenario():
        await asyncio.sleep(1.0)  # well after the first chunks went out
        got = []
        async with client_for(world) as session:
            async for event in session.subscribe(GraphQLRequest(stream, variable_values={"c": completion_id})):
                got.append(event["completionStream"])
        return got

    events = run(scenario(), timeout=30)
    kinds = [e["eventType"] for e in events]
    assert kinds[0] == "thinking_status" and kinds[-1] == "completed" and kinds.count("completed") == 1
    text = "".join(e["content"] or "" for e in events if e["eventType"] == "content_chunk")
    assert text == "[openai] You said: late but complete !slow 0.05"
    assert events[-1]["usage"]["completion_tokens"] > 0
