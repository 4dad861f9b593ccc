"""`executeAgent`: run an agent outside workflows on `input` (its template variables). Answers the pending
execution at once, or with `wait` (true: up to 30 s, or seconds ≤ 60) the finished one when it ends in time."""

from __future__ import annotations

import graphene
from django.db import transaction

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ...access import agent_access_by_id
from ...api.serializers import AgentExecuteSerializer
from ...models import AgentExecution as ExecutionRow
from ..inputs import present
from ..types import EXECUTION_JOINS, AgentExecution


class AgentExecutionInput(graphene.InputObjectType):
    agent_id = graphene.ID(required=True)
    input = JSON(description="Template variables (an object).")
    input_data = JSON(description="Same as input (the original's name).")
    wait = JSON(description="true (up to 30 s) or seconds to wait (≤ 60) for the result; default false.")


class ExecuteAgent(graphene.Mutation):
    class Arguments:
        input = AgentExecutionInput(required=True)

    Output = AgentExecution

    @staticmethod
    @mutation("write", atomic=False)  # the run starts once the execution is committed; the wait comes after
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        agent = agent_access_by_id(tenant, input.agent_id)
        given = input.get("input") if input.get("input") is not None else input.get("input_data")
        serializer = AgentExecuteSerializer(data=present(input=given, wait=input.get("wait")))
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            execution = services.agent_execute(tenant, agent=agent, input=serializer.validated_data.get("input") or {})
        execution = services.execution_wait(execution, serializer.validated_data.get("wait", 0.0))
        return ExecutionRow.objects.select_related(*EXECUTION_JOINS).get(pk=execution.pk)
