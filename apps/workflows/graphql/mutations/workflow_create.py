"""`createWorkflow`: save a workflow (a new version when its net changed), in the original's input shape —
name, places, transitions {id, name, fromPlaces, toPlace, conditions, description}, initialPlace — or as the
full Petri-net `definition` (our shape or the original's, as the REST API takes it)."""

from __future__ import annotations

import graphene
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from apps.core.graphql_fields import JSON, mutation

from ... import services
from ..types import Workflow


class TransitionInput(graphene.InputObjectType):
    id = graphene.ID(required=True)
    name = graphene.String()
    description = graphene.String()
    from_places = graphene.List(graphene.NonNull(graphene.String), description="Input places (an AND-join).")
    to_place = graphene.String()
    to_places = graphene.List(graphene.NonNull(graphene.String), description="Output places (an AND-split).")
    join = graphene.String(description="any: fire from any one of fromPlaces (the original's meaning).")
    conditions = JSON(description="The original's conditions (rules-engine conditions).")
    guard = JSON(description="A rules-engine condition or CEL text.")
    rules = JSON()
    automatic = graphene.Boolean()
    delay = JSON(description="Seconds, or a duration such as \"5m\".")


class WorkflowDefinitionInput(graphene.InputObjectType):
    id = graphene.ID(description="The workflow's id (a slug); default: made from the name.")
    name = graphene.String()
    description = graphene.String()
    places = graphene.List(graphene.NonNull(graphene.String))
    transitions = graphene.List(graphene.NonNull(TransitionInput))
    initial_place = graphene.String()
    final_places = graphene.List(graphene.NonNull(graphene.String))
    definition = JSON(description="The whole definition instead of the fields above (places with kinds and "
                                  "capacities, weighted arcs, initial marking …).")
    strict = graphene.Boolean(description="Refuse a net that is not sound.")


_TRANSITION_KEYS = {"name": "name", "description": "description", "from_places": "from_places",
                    "to_place": "to_place", "to_places": "to_places", "join": "join", "conditions": "conditions",
                    "guard": "guard", "rules": "rules", "automatic": "automatic", "delay": "delay"}


class CreateWorkflow(graphene.Mutation):
    class Arguments:
        input = WorkflowDefinitionInput(required=True)

    Output = Workflow

    @staticmethod
    @mutation("write")
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        workflow, _, _ = services.workflow_save(info.context.tenant, definition=definition_of(input),
                                                strict=bool(input.strict), actor=info.context.actor)
        return workflow


def definition_of(input) -> dict:
    """The raw definition the input describes (validated by the workflow engine, which lists every problem)."""
    given = {name: input[name] for name in ("places", "transitions", "initial_place", "final_places")
             if input.get(name) is not None}
    if input.get("definition") is not None:
        if given:
            raise ValidationError({"definition": [f"Give the definition or {', '.join(sorted(given))}, not both."]})
        if not isinstance(input.definition, dict):
            raise ValidationError({"definition": ["Must be an object."]})
        raw = dict(input.definition)
    else:
        raw = {key: value for key, value in given.items() if key != "transitions"}
        raw["transitions"] = [
            {"id": t.id, **{key: t[name] for name, key in _TRANSITION_KEYS.items() if t.get(name) is not None}}
            for t in given.get("transitions", [])]
    for name in ("name", "description"):
        if input.get(name) is not None:
            raw.setdefault(name, input[name])
    if not any(key in raw for key in ("id", "workflow_id", "workflowId")):
        raw["id"] = input.id or slugify(raw.get("name") or "").replace("-", "_")[:64]
    elif input.id is not None:
        raise ValidationError({"id": ["The definition names its own id."]})
    return raw
