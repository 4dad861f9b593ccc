"""`fireTransition` (and `executeActivity`, the original's later name): fire a transition with a token; the
answer is the token that continues (or the one named, consumed, when the transition produced no single
successor). Concurrent fires of the same tokens: one wins, the other gets CONFLICT."""

from __future__ import annotations

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import JSON, json_object, mutation

from ... import services
from ...access import token_access_by_id
from ..types import Token, remember_tokens


class TransitionFireInput(graphene.InputObjectType):
    token_id = graphene.ID(description="The token that fires it.")
    transition_id = graphene.String(description="The transition to fire.")
    data = JSON(description="Deep-merged into the produced tokens' data.")
    resource_id = graphene.ID(description="Same as tokenId.")
    activity_id = graphene.String(description="Same as transitionId.")


class FireTransition(graphene.Mutation):
    class Arguments:
        input = TransitionFireInput(required=True)

    Output = Token

    @staticmethod
    @mutation("write", atomic=False)  # the firing is one transaction of its own (and takes the fast path)
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        token_id = input.token_id or input.resource_id
        transition_id = input.transition_id or input.activity_id
        if not token_id or not transition_id:
            raise ValidationError({"tokenId" if not token_id else "transitionId": ["Required."]})
        token = token_access_by_id(tenant, token_id)
        result = services.transition_fire(tenant, token_id=token.pk, transition_id=transition_id,
                                          data=json_object(input.data, "data"), actor=info.context.actor)
        return remember_tokens(info, [token_access_by_id(tenant, result.token_id or token.pk)])[0]


class ExecuteActivity(FireTransition):
    """Same as fireTransition."""

    class Arguments:
        input = TransitionFireInput(required=True)

    Output = Token
