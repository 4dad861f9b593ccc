"""Function queries: `functions`, `function(id)`, `functionExecutions` (paginated) and `functionExecution(id)`."""

from __future__ import annotations

import uuid

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import page_arguments, paged, reader

from .. import selectors
from ..access import execution_access_by_id, function_access_by_id
from ..models import ExecutionStatus
from .types import Function, FunctionExecution


class FunctionsQueries(graphene.ObjectType):
    functions = graphene.List(graphene.NonNull(Function), required=True, runtime=graphene.String(),
                              tag=graphene.String(), enabled=graphene.Boolean(), **page_arguments())
    function = graphene.Field(Function, id=graphene.ID(required=True))
    function_executions = graphene.List(graphene.NonNull(FunctionExecution), required=True,
                                        function_id=graphene.ID(), status=graphene.String(),
                                        instance_id=graphene.ID(), token_id=graphene.ID(),
                                        agent_execution_id=graphene.ID(), **page_arguments(),
                                        description="Newest first.")
    function_execution = graphene.Field(FunctionExecution, id=graphene.ID(required=True))

    @staticmethod
    @reader
    def resolve_functions(root, info, *, runtime=None, tag=None, enabled=None, first=None, offset=None):
        rows = selectors.function_list(tenant=info.context.tenant, runtime=runtime, tag=tag, enabled=enabled)
        return paged(rows, first, offset)

    @staticmethod
    @reader
    def resolve_function(root, info, id):  # noqa: A002 - GraphQL's argument name
        return function_access_by_id(info.context.tenant, id)

    @staticmethod
    @reader
    def resolve_function_executions(root, info, *, function_id=None, status=None, instance_id=None, token_id=None,
                                    agent_execution_id=None, first=None, offset=None):
        tenant = info.context.tenant
        if status is not None and status not in ExecutionStatus.values:
            raise ValidationError({"status": [f"One of {', '.join(ExecutionStatus.values)}."]})
        function = function_access_by_id(tenant, function_id) if function_id is not None else None
        rows = selectors.execution_list(tenant=tenant, function=function, status=status,
                                        instance_id=_uuid(instance_id, "instanceId"),
                                        token_id=_uuid(token_id, "tokenId"), agent_execution_id=agent_execution_id)
        return paged(rows, first, offset)

    @staticmethod
    @reader
    def resolve_function_execution(root, info, id):  # noqa: A002 - GraphQL's argument name
        return execution_access_by_id(info.context.tenant, id)


def _uuid(value, name: str):
    """A UUID filter (the executions keep plain ids: a malformed one is a 400, a foreign one matches nothing)."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError({name: ["Must be a UUID."]}) from None
