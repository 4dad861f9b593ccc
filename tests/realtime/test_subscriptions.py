"""GraphQL subscriptions over both WebSocket protocols, with the gql client against the real server: live
workflow and token events, replay with `after:`, cross-tenant refusals, refused credentials."""

from __future__ import annotations

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport

from .conftest import fire, new_instance, record, run, take, ws_url

pytestmark = pytest.mark.django_db

WORKFLOW_EVENTS = """subscription($wf: String!, $after: ID) {
  workflowEvents(workflowId: $wf, after: $after) { id eventType workflowId instanceId tokenId data timestamp } }"""
TOKEN_UPDATES = """subscription($t: String!, $after: ID) {
  tokenUpdates(tokenId: $t, after: $after) { id eventType tokenId data } }"""


def transport(world, *, legacy=False, secret=None, path="/graphql"):
    protocol = WebsocketsTransport.APOLLO_SUBPROTOCOL if legacy else WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
    return WebsocketsTransport(url=ws_url(world["server"], path), subprotocols=[protocol],
                               init_payload={"Authorization": f"Bearer {secret or world['secret']}"})


async def subscription(session, query, **variables):
    return session.subscribe(GraphQLRequest(query, variable_values=variables))


@pytest.mark.parametrize("legacy", [False, True], ids=["graphql-transport-ws", "graphql-ws"])
def test_workflow_events_arrive_live_in_order(world, legacy):
    async def scenario():
        async with Client(transport=transport(world, legacy=legacy)) as session:
            events = await subscription(session, WORKFLOW_EVENTS, wf="document_review")
            first = anext(events)  # subscribes; the first event is awaited below
            import asyncio

            task = asyncio.ensure_future(first)
            await asyncio.sleep(0.5)  # the subscription is registered before the change
            instance, token = await asyncio.to_thread(new_instance, world["tenant"])
            await asyncio.to_thread(fire, world["tenant"], token, "submit")
            got = [await asyncio.wait_for(task, 15)] + await take(events, 2)
            await events.aclose()  # else the client waits for the listener at close
            return instance, token, got

    instance, token, got = run(scenario())
    assert [e["workflowEvents"]["eventType"] for e in got] == ["instance_created", "token_created",
                                                                  "transition_fired"]
    ids = [int(e["workflowEvents"]["id"]) for e in got]
    assert ids == sorted(ids)
    last = got[-1]["workflowEvents"]
    assert (last["instanceId"], last["tokenId"], last["workflowId"]) == (str(instance.id), str(token.id),
                                                                         "document_review")
    assert last["data"]["to_places"] == ["pending_review"] and last["timestamp"]


def test_late_subscriber_replays_after_an_id_then_goes_live_without_gaps_or_duplicates(world):
    instance, token = new_instance(world["tenant"])
    written = [record(world["tenant"], instance, token, "agent_content", n=n) for n in range(4)]

    async def scenario():
        import asyncio

        async with Client(transport=transport(world, legacy=True)) as session:
            events = await subscription(session, TOKEN_UPDATES, t=str(token.id), after=str(written[0].id))
            replayed = await take(events, 3)
            live = asyncio.ensure_future(take(events, 1))
            await asyncio.sleep(0.3)
            late = await asyncio.to_thread(record, world["tenant"], instance, token, "agent_completed")
            live = await live
            await events.aclose()
            return replayed, live, late

    replayed, live, late = run(scenario())
    assert [int(e["tokenUpdates"]["id"]) for e in replayed] == [w.id for w in written[1:]]
    assert [e["tokenUpdates"]["data"]["n"] for e in replayed] == [1, 2, 3]
    assert int(live[0]["tokenUpdates"]["id"]) == late.id and live[0]["tokenUpdates"]["eventType"] == "agent_completed"


@pytest.mark.parametrize(("path", "legacy"), [("/ws", False), ("/ws", True), ("/graphql", True)])
def test_resource_updates_is_token_updates_on_both_paths(world, path, legacy):
    instance, token = new_instance(world["tenant"])
    query = "subscription($t: String!) { resourceUpdates(tokenId: $t, after: \"0\") { id eventType } }"

    async def scenario():
        async with Client(transport=transport(world, legacy=legacy, path=path)) as session:
            events = await subscription(session, query, t=str(token.id))
            got = await take(events, 1)
            await events.aclose()
            return got

    (event,) = run(scenario())
    assert event["resourceUpdates"]["eventType"] == "token_created"


@pytest.mark.parametrize("legacy", [False, True], ids=["graphql-transport-ws", "graphql-ws"])
def test_other_tenants_objects_are_not_found_on_every_subscription(world, legacy):
    instance, token = new_instance(world["tenant"])
    other = world["other_secret"]
    cases = [
        (TOKEN_UPDATES, {"t": str(token.id)}),
        ("subscription($t: String!) { resourceUpdates(tokenId: $t) { id } }", {"t": str(token.id)}),
        ("subscription($t: String!) { tokenUpdates(tokenId: $t) { id } }", {"t": "not-a-uuid"}),
        (WORKFLOW_EVENTS, {"wf": "parallel_review"}),  # tenant A's workflow
        ("subscription($i: ID) { workflowEvents(workflowId: \"document_review\", instanceId: $i) { id } }",
         {"i": str(instance.id)}),
    ]

    async def scenario():
        codes = []
        async with Client(transport=transport(world, legacy=legacy, secret=other)) as session:
            for query, variables in cases:
                with pytest.raises(TransportQueryError) as refused:
                    await take(await subscription(session, query, **variables), 1)
                codes.append(refused.value.errors[0].get("extensions", {}).get("code"))
        return codes

    assert run(scenario()) == ["NOT_FOUND"] * len(cases)


def test_stream_subscriptions_of_another_tenant_are_not_found(world):
    from apps.realtime import stream_owners

    run(stream_owners.claim("llm", "req-owned-by-a", world["tenant"].id))
    run(stream_owners.claim("completion", "cmpl-owned-by-a", world["tenant"].id))
    cases = ['subscription { llmStream(requestId: "req-owned-by-a") { id } }',
             'subscription { completionStream(completionId: "cmpl-owned-by-a") { eventType } }']

    async def scenario():
        codes = []
        async with Client(transport=transport(world, secret=world["other_secret"])) as session:
            for query in cases:
                with pytest.raises(TransportQueryError) as refused:
                    await take(await subscription(session, query), 1)
                codes.append(refused.value.errors[0]["extensions"]["code"])
        return codes

    assert run(scenario()) == ["NOT_FOUND", "NOT_FOUND"]


@pytest.mark.parametrize("legacy", [False, True], ids=["graphql-transport-ws", "graphql-ws"])
def test_a_bad_key_is_refused_at_connection_init(world, legacy):
    async def scenario():
        async with Client(transport=transport(world, legacy=legacy, secret="cb-not-a-real-key")) as session:
            await take(await subscription(session, WORKFLOW_EVENTS, wf="document_review"), 1)

    with pytest.raises((TransportClosed, TransportConnectionFailed, TransportQueryError, TransportServerError)):
        run(scenario())


def test_queries_run_over_the_socket_too(world):
    async def scenario():
        async with Client(transport=transport(world)) as session:
            return await session.execute(GraphQLRequest("{ version }"))

    assert run(scenario())["version"]
