"""`executeFunction`: start a run of a function on `input` (checked against its input schema). Answers the
pending execution at once, or with `wait: true` the finished one (waiting at most
FUNCTIONS_EXECUTE_WAIT_SECONDS; then as it is)."""

from __future__ import annotations

import graphene
from django.conf import settings

from apps.core.graphql_fields import JSON, json_object, mutation

from ... import services
from ...api.serializers import ExecuteSerializer
from ..types import FunctionExecution


class FunctionExecutionInput(graphene.InputObjectType):
    function_id = graphene.ID(required=True)
    input = JSON(description="The function's input: an object (or a string holding one).")
    wait = graphene.Boolean(description="Answer once it finished.")


class ExecuteFunction(graphene.Mutation):
    class Arguments:
        input = FunctionExecutionInput(required=True)

    Output = FunctionExecution

    @staticmethod
    @mutation("write", atomic=False)  # the service commits the execution (so it can run) before the wait
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        serializer = ExecuteSerializer(data={"input": json_object(input.get("input"), "input"),
                                             "wait": bool(input.wait)})
        serializer.is_valid(raise_exception=True)
        execution = services.function_execute(info.context.tenant, function_id=input.function_id,
                                              input=serializer.validated_data["input"], trigger="api", strict=True)
        if serializer.validated_data["wait"]:
            execution = services.execution_wait(execution, settings.FUNCTIONS_EXECUTE_WAIT_SECONDS)
        return execution
