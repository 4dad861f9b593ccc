"""`Subscription`: workflow and token events, cost updates, LLM request streams, completion streams and agent
executions.

Each subscribe function checks access first (a coroutine that raises an ApiError before any event, so the
client gets one error with `extensions.code`, e.g. NOT_FOUND for another tenant's token) and then returns an
async iterator over the channel-layer group the relay or the publishers send to."""

from __future__ import annotations

import graphene
from channels.db import database_sync_to_async

from apps.agents.access import execution_access_by_id
from apps.core.errors import InvalidRequest
from apps.workflows.access import instance_access_by_id, token_access_by_id, workflow_access_by_id

from .. import agent_streams, groups, stream_backlog, stream_owners
from ..event_feed import workflow_event_feed
from ..event_messages import STREAM_MESSAGE
from ..layer_feed import group_messages
from .types import CompletionStreamEvent, CostUpdate, LLMStreamEvent, TokenEvent, WorkflowEvent


def _principal(info, *actions):
    context = info.context
    if not any(context.allows(action) for action in actions):
        context.require(actions[0])  # raises the scope/role error
    return context


def _after(after):
    if after is None:
        return None
    try:
        value = int(after)
    except (TypeError, ValueError):
        raise InvalidRequest("'after' must be an event id (an integer).", param="after") from None
    if value < 0:
        raise InvalidRequest("'after' must be an event id (an integer).", param="after")
    return value


async def _payloads(names, *, keep=lambda payload: True):
    async for message in group_messages(names):
        if message.get("type") == STREAM_MESSAGE and keep(message["payload"]):
            yield message["payload"]


async def _stream(kind: str, tenant_id: int, stream_id: str, group: str):
    """A completion or request stream: what it published before the subscription (its backlog), then live,
    by `seq`, until its `done` message."""

    async def backlog():
        for payload in await stream_backlog.read(kind, tenant_id, stream_id):
            yield {"type": STREAM_MESSAGE, "payload": payload}

    last = 0
    async for message in group_messages([group], joined=backlog):
        if message.get("type") != STREAM_MESSAGE or message["payload"].get("seq", 0) <= last:
            continue
        payload = message["payload"]
        last = payload["seq"]
        yield payload
        if payload.get("done"):
            return


async def _token_events(root, info, token_id, after=None):
    context = _principal(info, "read")
    after = _after(after)
    token = await database_sync_to_async(token_access_by_id)(context.tenant, token_id)
    return workflow_event_feed(groups.token(context.tenant.id, token.id), tenant_id=context.tenant.id,
                               filters={"token_id": token.id}, after=after)


class Subscription(graphene.ObjectType):
    workflow_events = graphene.Field(
        graphene.NonNull(WorkflowEvent), workflow_id=graphene.String(required=True),
        instance_id=graphene.ID(description="Only this instance's events."),
        after=graphene.ID(description="Replay the events published after this event id first."),
        description="Events of one workflow (its slug), live; with `after`, replayed from the table first.")
    token_updates = graphene.Field(graphene.NonNull(TokenEvent), token_id=graphene.String(required=True),
                                   after=graphene.ID(), description="Events of one token.")
    resource_updates = graphene.Field(graphene.NonNull(TokenEvent), token_id=graphene.String(required=True),
                                      after=graphene.ID(), description="The same as tokenUpdates.")
    cost_updates = graphene.Field(graphene.NonNull(CostUpdate), user_id=graphene.String(
        description="Only requests and budgets of this user label."), description="Spend and budget alerts.")
    llm_stream = graphene.Field(graphene.NonNull(LLMStreamEvent), request_id=graphene.String(required=True),
                                description="The chunks of a /v1 request that asked to publish its stream.")
    completion_stream = graphene.Field(graphene.NonNull(CompletionStreamEvent),
                                       completion_id=graphene.ID(required=True),
                                       description="A background completion (createCompletion(stream: true)), "
                                                   "or an agent execution (its id): what happened so far, then live.")
    agent_execution_updates = graphene.Field(
        graphene.NonNull(CompletionStreamEvent), execution_id=graphene.ID(required=True),
        description="An agent execution's events from its start, then live (completionStream with its id).")

    @staticmethod
    async def subscribe_workflow_events(root, info, workflow_id, instance_id=None, after=None):
        context = _principal(info, "read")
        after = _after(after)
        workflow = await database_sync_to_async(workflow_access_by_id)(context.tenant, workflow_id)
        filters = {"workflow": workflow.slug}
        group = groups.workflow(context.tenant.id, workflow.slug)
        if instance_id is not None:
            instance = await database_sync_to_async(instance_access_by_id)(context.tenant, instance_id)
            if instance.definition.slug != workflow.slug:
                raise InvalidRequest("That instance belongs to another workflow.", param="instanceId")
            filters["instance_id"] = instance.id
            group = groups.instance(context.tenant.id, instance.id)
        return workflow_event_feed(group, tenant_id=context.tenant.id, filters=filters, after=after)

    subscribe_token_updates = staticmethod(_token_events)
    subscribe_resource_updates = staticmethod(_token_events)

    @staticmethod
    async def subscribe_cost_updates(root, info, user_id=None):
        context = _principal(info, "read")
        return _payloads([groups.cost(context.tenant.id)],
                         keep=lambda p: user_id is None or p.get("user_id") == user_id)

    @staticmethod
    async def subscribe_llm_stream(root, info, request_id):
        context = _principal(info, "read", "inference")
        await stream_owners.check("llm", request_id, context.tenant.id, "request")
        return _stream("llm", context.tenant.id, request_id, groups.llm(context.tenant.id, request_id))

    @staticmethod
    async def subscribe_completion_stream(root, info, completion_id):
        context = _principal(info, "read", "inference")
        execution = await database_sync_to_async(agent_streams.execution_for)(context.tenant, completion_id)
        if execution is not None:
            context.require("read")  # an execution's events are the tenant's data, as workflow events are
            return agent_streams.execution_stream(context.tenant.id, execution)
        await stream_owners.check("completion", completion_id, context.tenant.id, "completion")
        return _stream("completion", context.tenant.id, completion_id,
                       groups.completion(context.tenant.id, completion_id))

    @staticmethod
    async def subscribe_agent_execution_updates(root, info, execution_id):
        context = _principal(info, "read")
        execution = await database_sync_to_async(execution_access_by_id)(context.tenant, execution_id)
        return agent_streams.execution_stream(context.tenant.id, execution)
