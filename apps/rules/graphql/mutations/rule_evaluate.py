"""`evaluateRule`: a dry run of a condition (or a named rule) against data, metadata and facts."""

from __future__ import annotations

import graphene
from django.core.exceptions import ValidationError

from apps.core.graphql_fields import JSON, json_object, mutation

from ...selectors import rule_evaluate
from ..types import RuleEvaluation


class RuleEvaluateInput(graphene.InputObjectType):
    condition = JSON(description="A condition to try (null: always true).")
    rule = graphene.String(description="Or: the name of a named rule (built-in or the tenant's).")
    data = JSON(description="The token's data.")
    metadata = JSON()
    facts = JSON(description="Other top-level facts, visible to field paths and CEL under their names.")


class EvaluateRule(graphene.Mutation):
    """Nothing is stored; a mutation because the documents call it one and it may be costly (CEL)."""

    class Arguments:
        input = RuleEvaluateInput(required=True)

    Output = RuleEvaluation

    @staticmethod
    @mutation("read", atomic=False)
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        if (input.rule is None) == ("condition" not in input):
            raise ValidationError({"condition": ["Give exactly one of `condition` and `rule`."]})
        facts = json_object(input.facts, "facts")
        reserved = sorted({"data", "metadata"} & set(facts))
        if reserved:
            raise ValidationError({"facts": [f"Pass {', '.join(reserved)} at the top level."]})
        result = rule_evaluate(tenant=info.context.tenant, condition=input.get("condition"), rule=input.rule,
                               data=json_object(input.data, "data"), metadata=json_object(input.metadata, "metadata"),
                               facts=facts)
        return RuleEvaluation(**result)
