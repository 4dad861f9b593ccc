"""`createPlaceAgentConfig`: bind an agent to a workflow place — it then runs on every token entering the place
whose trigger conditions hold, maps its output into the token and may fire a transition. Validated as the REST
API validates a place agent."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ...access import agent_access_by_id
from ...api.serializers import PlaceAgentSerializer
from ..inputs import AgentRetryInput, present, retry_of
from ..types import PlaceAgentConfig


class PlaceAgentScheduleInput(graphene.InputObjectType):
    initial_delay_seconds = graphene.Float()
    interval_seconds = graphene.Float()
    max_executions = graphene.Int()


class PlaceAgentConfigInput(graphene.InputObjectType):
    agent_id = graphene.ID(required=True)
    workflow_id = graphene.String(required=True)
    place_id = graphene.String(required=True)
    trigger_conditions = JSON(description="A rules-engine condition over the token (data, metadata, token).")
    input_mapping = JSON(description='{template variable: "data.x" | "metadata.y" | "id" | "place"}')
    output_mapping = JSON(description='{"data.x" | "metadata.y": "output" | "output.field" | "text"}')
    functions = JSON(description='Function steps after the output is written: [{"function", "input", '
                                 '"output"}].')
    auto_transition = graphene.String(description="The transition to fire after a successful run.")
    schedule = graphene.Field(PlaceAgentScheduleInput)
    retry_config = graphene.Field(AgentRetryInput, description="Overrides the agent's.")
    enabled = graphene.Boolean()


class CreatePlaceAgentConfig(graphene.Mutation):
    class Arguments:
        input = PlaceAgentConfigInput(required=True)

    Output = PlaceAgentConfig

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        agent = agent_access_by_id(tenant, input.agent_id)
        schedule = input.schedule
        body = present(agent=agent.pk, workflow=input.workflow_id, place=input.place_id,
                       trigger_conditions=input.get("trigger_conditions"), input_mapping=input.input_mapping,
                       output_mapping=input.output_mapping, functions=input.functions,
                       auto_transition=input.auto_transition,
                       schedule=present(initial_delay_seconds=schedule.initial_delay_seconds,
                                        interval_seconds=schedule.interval_seconds,
                                        max_executions=schedule.max_executions) if schedule is not None else None,
                       retry=retry_of(input.retry_config), enabled=input.enabled)
        serializer = PlaceAgentSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        fields = {**serializer.validated_data, "agent": agent}
        fields.pop("agent_id", None)
        return services.place_agent_create(tenant, **fields)
