"""`updateRule`: change a rule's name, condition, description or enabled flag (only the fields given)."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ...access import rule_access_by_id
from ..types import Rule


class RuleUpdateInput(graphene.InputObjectType):
    id = graphene.ID(required=True)
    name = graphene.String()
    condition = JSON()
    description = graphene.String()
    enabled = graphene.Boolean()


class UpdateRule(graphene.Mutation):
    class Arguments:
        input = RuleUpdateInput(required=True)

    Output = Rule

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        rule = rule_access_by_id(tenant, input.id, for_write=True)
        fields = {name: input[name] for name in ("name", "condition", "description", "enabled")
                  if name in input and input[name] is not None}
        return Rule.from_row(services.rule_update(tenant=tenant, rule=rule, **fields))
