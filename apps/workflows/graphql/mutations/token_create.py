"""`createToken` (and `createResource`, the original's later name): a token in a place — in a new instance of
`workflowId` that starts with only this token, or added to `instanceId`'s marking. The documents' snake_case
input (`workflow_id`, `place`, `data` as a JSON string) is accepted as written."""

from __future__ import annotations

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import JSON, json_object, mutation

from ... import services
from ...access import token_access_by_id
from ..types import Token, remember_tokens


class TokenCreateInput(graphene.InputObjectType):
    workflow_id = graphene.String(description="A new instance of this workflow.")
    instance_id = graphene.ID(description="Or an existing instance.")
    initial_place = graphene.String(description="The place the token starts in.")
    place = graphene.String(description="Same as initialPlace.")
    data = JSON(description="An object (or a string holding a JSON object).")
    metadata = JSON()
    workflow_id_snake = graphene.String(name="workflow_id", description="Same as workflowId.")


class CreateToken(graphene.Mutation):
    class Arguments:
        input = TokenCreateInput(required=True)

    Output = Token

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        place = _one(input, "initial_place", "place", required=True)
        workflow_id = _one(input, "workflow_id", "workflow_id_snake")
        token = services.token_create(tenant, place=place, workflow_id=workflow_id, instance_id=input.instance_id,
                                      data=json_object(input.data, "data"),
                                      metadata=json_object(input.metadata, "metadata"), actor=info.context.actor)
        return remember_tokens(info, [token_access_by_id(tenant, token.pk)])[0]


class CreateResource(CreateToken):
    """Same as createToken."""

    class Arguments:
        input = TokenCreateInput(required=True)

    Output = Token


def _one(input, name: str, alias: str, *, required: bool = False):
    values = [input.get(key) for key in (name, alias) if input.get(key) is not None]
    if len(values) > 1 and values[0] != values[1]:
        raise ValidationError({name: [f"Given twice (also as {alias})."]})
    if required and not values:
        raise ValidationError({name: ["Name the place the token starts in."]})
    return values[0] if values else None
