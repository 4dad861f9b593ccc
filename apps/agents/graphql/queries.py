"""Agent queries: `agents`, `agent(id)`, `placeAgentConfigs(placeId, workflowId)`, `agentExecutions`,
`agentExecution(id)` and `tokenExecutions(tokenId)` (alias `resourceExecutions`)."""

from __future__ import annotations

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import page_arguments, paged, reader
from apps.workflows.access import instance_access_by_id, token_access_by_id

from .. import selectors
from ..access import agent_access_by_id, execution_access_by_id
from ..models import AgentExecution as ExecutionRow
from ..models import ExecutionStatus
from .types import AGENT_JOINS, EXECUTION_JOINS, PLACE_AGENT_JOINS, Agent, AgentExecution, PlaceAgentConfig


def _status(status: str | None) -> str | None:
    if status is not None and status not in ExecutionStatus.values:
        raise ValidationError({"status": [f"One of {', '.join(ExecutionStatus.values)}."]})
    return status


class AgentsQueries(graphene.ObjectType):
    agents = graphene.List(graphene.NonNull(Agent), required=True, **page_arguments())
    agent = graphene.Field(Agent, id=graphene.ID(required=True))
    place_agent_configs = graphene.List(graphene.NonNull(PlaceAgentConfig), required=True,
                                        place_id=graphene.String(), workflow_id=graphene.String(),
                                        agent_id=graphene.ID(), **page_arguments())
    agent_executions = graphene.List(graphene.NonNull(AgentExecution), required=True, agent_id=graphene.ID(),
                                     status=graphene.String(description=", ".join(ExecutionStatus.values)),
                                     instance_id=graphene.ID(), token_id=graphene.ID(), **page_arguments())
    agent_execution = graphene.Field(AgentExecution, id=graphene.ID(required=True))
    token_executions = graphene.List(graphene.NonNull(AgentExecution), required=True,
                                     token_id=graphene.ID(required=True), **page_arguments(),
                                     description="The agent executions that ran on a token, newest first.")
    resource_executions = graphene.List(graphene.NonNull(AgentExecution), required=True,
                                        resource_id=graphene.ID(required=True), **page_arguments(),
                                        description="Same as tokenExecutions (the original's name).")

    @staticmethod
    @reader
    def resolve_agents(root, info, *, first=None, offset=None):
        return paged(selectors.agent_list(tenant=info.context.tenant).select_related(*AGENT_JOINS), first, offset)

    @staticmethod
    @reader
    def resolve_agent(root, info, id):  # noqa: A002 - GraphQL's argument name
        return agent_access_by_id(info.context.tenant, id)

    @staticmethod
    @reader
    def resolve_place_agent_configs(root, info, *, place_id=None, workflow_id=None, agent_id=None, first=None,
                                    offset=None):
        tenant = info.context.tenant
        agent = agent_access_by_id(tenant, agent_id) if agent_id is not None else None
        rows = selectors.place_agent_list(tenant=tenant, workflow=workflow_id, place=place_id,
                                          agent_id=agent.pk if agent else None)
        return paged(rows.select_related(*PLACE_AGENT_JOINS), first, offset)

    @staticmethod
    @reader
    def resolve_agent_executions(root, info, *, agent_id=None, status=None, instance_id=None, token_id=None,
                                 first=None, offset=None):
        tenant = info.context.tenant
        agent = agent_access_by_id(tenant, agent_id) if agent_id is not None else None
        token = token_access_by_id(tenant, token_id) if token_id is not None else None
        rows = selectors.execution_list(tenant=tenant, agent_id=agent.pk if agent else None, status=_status(status),
                                        token_id=token.pk if token else None,
                                        instance_id=_instance_pk(tenant, instance_id))
        return paged(rows.select_related(*EXECUTION_JOINS), first, offset)

    @staticmethod
    @reader
    def resolve_agent_execution(root, info, id):  # noqa: A002 - GraphQL's argument name
        return _execution(info.context.tenant, id)

    @staticmethod
    @reader
    def resolve_token_executions(root, info, *, token_id, first=None, offset=None):
        token = token_access_by_id(info.context.tenant, token_id)
        rows = selectors.execution_list(tenant=info.context.tenant, token_id=token.pk)
        return paged(rows.select_related(*EXECUTION_JOINS), first, offset)

    @staticmethod
    def resolve_resource_executions(root, info, *, resource_id, first=None, offset=None):
        return AgentsQueries.resolve_token_executions(root, info, token_id=resource_id, first=first, offset=offset)


def _instance_pk(tenant, instance_id):
    return instance_access_by_id(tenant, instance_id).pk if instance_id is not None else None


def _execution(tenant, execution_id) -> ExecutionRow:
    """The execution with what its fields read joined, or NotFound as the access helper answers."""
    execution = execution_access_by_id(tenant, execution_id)
    return ExecutionRow.objects.select_related(*EXECUTION_JOINS).get(pk=execution.pk)
