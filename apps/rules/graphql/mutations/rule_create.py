"""`createRule`: a named rule, compiled against the tenant's others before it is saved."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ..types import Rule


class RuleCreateInput(graphene.InputObjectType):
    name = graphene.String(required=True, description="Letters, digits, _ and -.")
    condition = JSON(description="A rules-engine condition, either tagged shape (a string: a rule); null: true.")
    description = graphene.String()
    enabled = graphene.Boolean()


class CreateRule(graphene.Mutation):
    class Arguments:
        input = RuleCreateInput(required=True)

    Output = Rule

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        rule = services.rule_create(tenant=info.context.tenant, name=input.name, condition=input.get("condition"),
                                    description=input.description or "",
                                    enabled=True if input.enabled is None else input.enabled)
        return Rule.from_row(rule)
