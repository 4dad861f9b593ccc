"""`rules`, `rule(id)`."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import page_arguments, paged, reader

from ..access import rule_access_by_id
from ..engine import BUILTIN_DESCRIPTIONS, BUILTIN_RULES
from ..selectors import rule_list
from .types import Rule


class RulesQueries(graphene.ObjectType):
    rules = graphene.List(graphene.NonNull(Rule), required=True, include_builtin=graphene.Boolean(default_value=True),
                          description="The tenant's rules, then the built-ins.", **page_arguments())
    rule = graphene.Field(Rule, id=graphene.ID(required=True))

    @staticmethod
    @reader
    def resolve_rules(root, info, *, include_builtin=True, first=None, offset=None):
        own = [Rule.from_row(rule) for rule in rule_list(tenant=info.context.tenant).order_by("name")]
        if include_builtin:
            shadowing = {rule.name for rule in own if rule.enabled}
            own += [Rule(id=None, name=name, description=BUILTIN_DESCRIPTIONS.get(name, ""), condition=condition,
                         enabled=True, builtin=True, shadowed=name in shadowing)
                    for name, condition in sorted(BUILTIN_RULES.items())]
        return paged(own, first, offset)

    @staticmethod
    @reader
    def resolve_rule(root, info, id):  # noqa: A002 - GraphQL's argument name
        return Rule.from_row(rule_access_by_id(info.context.tenant, id))
