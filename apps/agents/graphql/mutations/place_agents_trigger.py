"""`triggerPlaceAgents(tokenId)`: start now the agents bound to the token's current place (their trigger
conditions holding on it), as when it arrived there. Answers the pending executions started."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import mutation
from apps.workflows.access import token_access_by_id

from ... import services
from ..types import AgentExecution


class TriggerPlaceAgents(graphene.Mutation):
    class Arguments:
        token_id = graphene.ID(required=True)

    Output = graphene.NonNull(graphene.List(graphene.NonNull(AgentExecution)))

    @staticmethod
    @mutation("write")
    def mutate(root, info, token_id):
        tenant = info.context.tenant
        return services.place_agents_trigger(tenant, token=token_access_by_id(tenant, token_id))
