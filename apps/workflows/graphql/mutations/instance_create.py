"""`createWorkflowInstance`: a new case of a workflow, its initial marking filled with tokens carrying
`initialData`. Its events stream at `streamUrl` (SSE)."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, json_object, mutation

from ... import services
from ...access import instance_access_by_id
from ..types import WorkflowInstance, remember_instances


class WorkflowInstanceCreateInput(graphene.InputObjectType):
    workflow_id = graphene.String(required=True)
    initial_data = JSON(description="Data of the initial tokens.")
    metadata = JSON()
    triggered_by = graphene.String(description="Who or what started it (kept in its history); default: the "
                                               "caller.")
    version = graphene.Int(description="Default: the current version.")


class CreateWorkflowInstance(graphene.Mutation):
    class Arguments:
        input = WorkflowInstanceCreateInput(required=True)

    Output = WorkflowInstance

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        actor = (input.triggered_by or "").strip()[:200] or info.context.actor
        instance = services.instance_create(tenant, workflow_id=input.workflow_id,
                                            data=json_object(input.initial_data, "initialData"),
                                            metadata=json_object(input.metadata, "metadata"), actor=actor,
                                            version=input.version)
        return remember_instances(info, [instance_access_by_id(tenant, instance.pk)])[0]
