"""The GraphQL types subscriptions deliver (names as in the product documents' schema)."""

import graphene
from graphene.types.generic import GenericScalar
from graphene.types.resolver import dict_resolver


def _by_field_name(attname, default_value, root, info, **args):
    """Relayed events are dicts keyed by the GraphQL field names (`eventType`, `tokenId`, …)."""
    return root.get(info.field_name, default_value)


class _EventFields:
    id = graphene.ID(required=True, description="The event id (what `after:` and SSE resume from).")
    event_type = graphene.String(required=True)
    workflow_id = graphene.String(required=True)
    instance_id = graphene.ID()
    token_id = graphene.ID()
    data = GenericScalar()
    timestamp = graphene.String(required=True)


class WorkflowEvent(_EventFields, graphene.ObjectType):
    """One event of a workflow's outbox, as relayed."""

    class Meta:
        default_resolver = _by_field_name


class TokenEvent(_EventFields, graphene.ObjectType):
    """One event about a token (moved, updated, consumed, created)."""

    class Meta:
        default_resolver = _by_field_name


class CostUpdate(graphene.ObjectType):
    """`cost_incurred` (a request was recorded in the ledger), `budget_warning` (a threshold under 100 %
    crossed) or `budget_exhausted` (100 % or more)."""

    class Meta:
        default_resolver = dict_resolver

    event_type = graphene.String(required=True)
    user_id = graphene.String()
    project_id = graphene.String()
    request_id = graphene.String()
    model = graphene.String()
    cost = graphene.String(description="USD, as a decimal string.")
    budget_id = graphene.ID()
    threshold = graphene.Float()
    spent = graphene.String()
    limit = graphene.String()
    timestamp = graphene.String(required=True)


class LLMStreamEvent(graphene.ObjectType):
    class Meta:
        default_resolver = dict_resolver

    id = graphene.ID(required=True, description="The request id.")
    content = graphene.String()
    tokens = graphene.Int(description="Completion tokens so far (exact once usage arrives).")
    cost = graphene.String(description="USD so far (set on the last event).")
    done = graphene.Boolean(required=True)
    error = GenericScalar(description="{code, message} when the request failed.")
    timestamp = graphene.String(required=True)


class AgentStatus(graphene.ObjectType):
    class Meta:
        default_resolver = dict_resolver

    agent_id = graphene.String()
    status = graphene.String()
    progress = graphene.Float()


class CompletionStreamEvent(graphene.ObjectType):
    class Meta:
        default_resolver = dict_resolver

    event_type = graphene.String(required=True)
    content = graphene.String()
    metadata = GenericScalar()
    usage = GenericScalar()
    agent_status = graphene.Field(AgentStatus)
