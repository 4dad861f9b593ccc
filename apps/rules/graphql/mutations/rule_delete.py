"""`deleteRule`: refused (CONFLICT) while another rule references it."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import mutation

from ... import services
from ...access import rule_access_by_id
from ..types import RuleDeleted


class DeleteRule(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)

    Output = RuleDeleted

    @staticmethod
    @mutation("write")
    def mutate(root, info, id):  # noqa: A002 - GraphQL's argument name
        tenant = info.context.tenant
        rule = rule_access_by_id(tenant, id, for_write=True)
        pk = rule.pk
        services.rule_delete(tenant=tenant, rule=rule)
        return RuleDeleted(id=pk, deleted=True)
