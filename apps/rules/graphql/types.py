"""GraphQL types of named rules."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON


class Rule(graphene.ObjectType):
    """A named condition other conditions (workflow guards, cost rules) reference by name. Built-ins are listed
    too (`builtin: true`, no id); a tenant rule of the same name shadows one."""

    id = graphene.ID(description="Null for built-ins: they are not rows.")
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    condition = JSON(required=True)
    enabled = graphene.Boolean(required=True)
    builtin = graphene.Boolean(required=True)
    shadowed = graphene.Boolean(required=True)
    created_at = graphene.DateTime()
    updated_at = graphene.DateTime()

    @staticmethod
    def from_row(rule) -> Rule:
        return Rule(id=rule.pk, name=rule.name, description=rule.description, condition=rule.condition,
                    enabled=rule.enabled, builtin=False, shadowed=False, created_at=rule.created_at,
                    updated_at=rule.updated_at)


class RuleEvaluation(graphene.ObjectType):
    passed = graphene.Boolean(required=True)
    condition = JSON(required=True, description="The condition in canonical form.")
    explanation = JSON(required=True, description="How each part evaluated.")


class RuleDeleted(graphene.ObjectType):
    id = graphene.ID(required=True)
    deleted = graphene.Boolean(required=True)
