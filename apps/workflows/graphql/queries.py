"""Workflow queries: `workflows`, `workflow(id)`, `workflowInstance(id)`, `workflowInstances`, `tokens`,
`token(id)`, `tokensInPlace`, `availableTransitions(tokenId)`, and `resources` (the original's later name of
tokens)."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import page_arguments, paged, reader

from .. import selectors
from ..access import instance_access_by_id, token_access_by_id, workflow_access_by_id
from .types import AvailableTransition, Token, Workflow, WorkflowInstance, remember_instances, remember_tokens


def _token_arguments(**extra) -> dict:
    return page_arguments(workflow_id=graphene.String(), instance_id=graphene.ID(), place=graphene.String(),
                          include_consumed=graphene.Boolean(default_value=False), **extra)


class WorkflowsQueries(graphene.ObjectType):
    workflows = graphene.List(graphene.NonNull(Workflow), required=True, **page_arguments())
    workflow = graphene.Field(Workflow, id=graphene.ID(required=True))
    workflow_instances = graphene.List(graphene.NonNull(WorkflowInstance), required=True,
                                       workflow_id=graphene.String(), status=graphene.String(), **page_arguments())
    workflow_instance = graphene.Field(WorkflowInstance, id=graphene.ID(required=True))
    tokens = graphene.List(graphene.NonNull(Token), required=True, **_token_arguments())
    resources = graphene.List(graphene.NonNull(Token), required=True, description="Same as tokens.",
                              **_token_arguments())
    token = graphene.Field(Token, id=graphene.ID(required=True))
    tokens_in_place = graphene.List(graphene.NonNull(Token), required=True, place=graphene.String(required=True),
                                    workflow_id=graphene.String(), instance_id=graphene.ID(), **page_arguments())
    available_transitions = graphene.List(graphene.NonNull(AvailableTransition), required=True,
                                          token_id=graphene.ID(required=True))

    @staticmethod
    @reader
    def resolve_workflows(root, info, *, first=None, offset=None):
        return paged(selectors.workflow_list(tenant=info.context.tenant), first, offset)

    @staticmethod
    @reader
    def resolve_workflow(root, info, id):  # noqa: A002 - GraphQL's argument name
        return workflow_access_by_id(info.context.tenant, id)

    @staticmethod
    @reader
    def resolve_workflow_instances(root, info, *, workflow_id=None, status=None, first=None, offset=None):
        rows = selectors.instance_list(tenant=info.context.tenant, workflow=workflow_id, status=status)
        return remember_instances(info, paged(rows, first, offset))

    @staticmethod
    @reader
    def resolve_workflow_instance(root, info, id):  # noqa: A002 - GraphQL's argument name
        return remember_instances(info, [instance_access_by_id(info.context.tenant, id)])[0]

    @staticmethod
    @reader
    def resolve_tokens(root, info, *, workflow_id=None, instance_id=None, place=None, include_consumed=False,
                       first=None, offset=None):
        tenant = info.context.tenant
        instance = instance_access_by_id(tenant, instance_id) if instance_id is not None else None
        rows = selectors.token_list(tenant=tenant, instance=instance, workflow=workflow_id, place=place,
                                    include_consumed=include_consumed)
        return remember_tokens(info, paged(rows, first, offset))

    resolve_resources = resolve_tokens

    @staticmethod
    @reader
    def resolve_token(root, info, id):  # noqa: A002 - GraphQL's argument name
        return remember_tokens(info, [token_access_by_id(info.context.tenant, id)])[0]

    @staticmethod
    @reader
    def resolve_tokens_in_place(root, info, *, place, workflow_id=None, instance_id=None, first=None, offset=None):
        tenant = info.context.tenant
        instance = instance_access_by_id(tenant, instance_id) if instance_id is not None else None
        rows = selectors.token_list(tenant=tenant, instance=instance, workflow=workflow_id, place=place)
        return remember_tokens(info, paged(rows, first, offset))

    @staticmethod
    @reader
    def resolve_available_transitions(root, info, *, token_id):
        token = token_access_by_id(info.context.tenant, token_id)
        entries = selectors.instance_transitions(instance=token.instance, token_id=str(token.pk))
        return [AvailableTransition.from_selector(entry) for entry in entries]
