"""GraphQL types of workflows, instances and tokens (the documents' `Workflow`, `Token`, and the instance
`createWorkflowInstance` answers)."""

from __future__ import annotations

import graphene

from apps.core.graphql_fields import JSON, batched, remember

from ..models import Token as TokenRow
from ..models import TokenHistory, TokenStatus

_SNAKE = "The original server's snake_case name; use the camelCase field."


def stream_url(instance_id) -> str:
    """Where an instance's events stream as SSE (served by the realtime app)."""
    return f"/api/workflow-instances/{instance_id}/events/stream"


class Place(graphene.ObjectType):
    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    kind = graphene.String(required=True, description="normal, initial, terminal, …")
    capacity = graphene.Int()


class Transition(graphene.ObjectType):
    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    from_places = graphene.List(graphene.NonNull(graphene.String), required=True)
    to_place = graphene.String(description="The first output place (the original's single target).")
    to_places = graphene.List(graphene.NonNull(graphene.String), required=True)
    guard = JSON(description="The guard condition, if any.")
    automatic = graphene.Boolean(required=True)
    delay_seconds = graphene.Float()
    from_places_snake = graphene.List(graphene.NonNull(graphene.String), name="from_places",
                                      deprecation_reason=_SNAKE)
    to_place_snake = graphene.String(name="to_place", deprecation_reason=_SNAKE)

    @staticmethod
    def from_net(entry: dict) -> Transition:
        inputs = [a if isinstance(a, str) else a["place"] for a in entry.get("inputs", [])]
        outputs = [a if isinstance(a, str) else a["place"] for a in entry.get("outputs", [])]
        return Transition(id=entry["id"], name=entry.get("name") or entry["id"],
                          description=entry.get("description", ""), from_places=inputs,
                          to_place=outputs[0] if outputs else None, to_places=outputs, guard=entry.get("guard"),
                          automatic=bool(entry.get("automatic", False)), delay_seconds=entry.get("delay"),
                          from_places_snake=inputs, to_place_snake=outputs[0] if outputs else None)


class Workflow(graphene.ObjectType):
    """A workflow (Petri net) by its id (slug); places and transitions of its current version."""

    id = graphene.ID(required=True, source="slug")
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    version = graphene.Int()
    sound = graphene.Boolean(description="The analysis found no deadlock, dead transition or unbounded place.")
    places = graphene.List(graphene.NonNull(graphene.String), required=True, description="Place ids.")
    place_details = graphene.List(graphene.NonNull(Place), required=True)
    transitions = graphene.List(graphene.NonNull(Transition), required=True)
    initial_marking = JSON(required=True, description="{place: tokens} a new instance starts with.")
    final_places = graphene.List(graphene.NonNull(graphene.String), required=True)
    definition = JSON(description="The canonical definition (what loads back to the same net).")
    analysis = JSON(description="Soundness findings of the current version.")
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_version(workflow, info):
        return workflow.current_version.number if workflow.current_version else None

    @staticmethod
    def resolve_sound(workflow, info):
        return workflow.current_version.sound if workflow.current_version else None

    @staticmethod
    def resolve_places(workflow, info):
        return [p["id"] for p in _net(workflow).get("places", [])]

    @staticmethod
    def resolve_place_details(workflow, info):
        return [Place(id=p["id"], name=p.get("name") or p["id"], kind=p.get("kind", "normal"),
                      capacity=p.get("capacity")) for p in _net(workflow).get("places", [])]

    @staticmethod
    def resolve_transitions(workflow, info):
        return [Transition.from_net(t) for t in _net(workflow).get("transitions", [])]

    @staticmethod
    def resolve_initial_marking(workflow, info):
        return _net(workflow).get("initial_marking", {})

    @staticmethod
    def resolve_final_places(workflow, info):
        return _net(workflow).get("final_places", [])

    @staticmethod
    def resolve_definition(workflow, info):
        return workflow.current_version.net if workflow.current_version else None

    @staticmethod
    def resolve_analysis(workflow, info):
        return workflow.current_version.analysis if workflow.current_version else None


def _net(workflow) -> dict:
    return workflow.current_version.net if workflow.current_version else {}


class TokenHistoryEntry(graphene.ObjectType):
    at = graphene.DateTime(required=True)
    kind = graphene.String(required=True)
    transition = graphene.String()
    from_place = graphene.String()
    to_place = graphene.String()
    actor = graphene.String()
    data_change = JSON()


class Token(graphene.ObjectType):
    """A document or job in a place of a workflow instance, carrying JSON data."""

    id = graphene.ID(required=True)
    workflow_id = graphene.ID(required=True)
    instance_id = graphene.ID(required=True)
    place = graphene.String(required=True)
    current_place = graphene.String(required=True, source="place", description="Same as place (the original's).")
    status = graphene.String(required=True, description="active or consumed.")
    data = JSON(required=True)
    metadata = JSON(required=True)
    parents = graphene.List(graphene.NonNull(graphene.ID), required=True)
    merged_into = graphene.ID()
    arrived_at = graphene.DateTime(required=True)
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)
    history = graphene.List(graphene.NonNull(TokenHistoryEntry), required=True)

    @staticmethod
    def resolve_workflow_id(token, info):
        return token.instance.definition.slug

    @staticmethod
    def resolve_history(token, info):
        return batched(info, "token", "history", token, _histories)


def _histories(tokens) -> dict:
    out = {token.pk: [] for token in tokens}
    for entry in TokenHistory.objects.filter(token_id__in=list(out)).order_by("id"):
        out[entry.token_id].append(entry)
    return out


def remember_tokens(info, tokens) -> list:
    return remember(info, "token", tokens)


class AgentRef(graphene.ObjectType):
    """An agent bound to a place of the instance's workflow, and how its latest run on the instance went."""

    id = graphene.ID(required=True, description="The agent's id.")
    role = graphene.String(required=True, description="The agent's name.")
    status = graphene.String(required=True, description="Its latest execution's status on this instance (pending, "
                                                        "running, completed, …); idle before any.")
    place = graphene.String(description="The place it works on.")
    place_agent_id = graphene.ID(description="The binding (placeAgentConfigs).")
    execution_id = graphene.ID(description="Its latest execution on this instance (agentExecution).")


# A higher layer (the agents app) says which agents work on instances: `load(instances) -> {pk: [{id, role,
# status, place, place_agent_id, execution_id}]}`, registered by the schema's composition root.
_agent_loaders: list = []


def register_instance_agents(load) -> None:
    if load not in _agent_loaders:
        _agent_loaders.append(load)


def _instance_agents(instances) -> dict:
    out = {instance.pk: [] for instance in instances}
    for load in _agent_loaders:
        for pk, refs in load(instances).items():
            out[pk].extend(AgentRef(**ref) for ref in refs)
    return out


class WorkflowInstance(graphene.ObjectType):
    id = graphene.ID(required=True)
    workflow_id = graphene.ID(required=True)
    version = graphene.Int(required=True)
    status = graphene.String(required=True)
    marking = JSON(required=True, description="{place: tokens}.")
    current_place = graphene.String(description="The place of the only token, when there is exactly one.")
    tokens = graphene.List(graphene.NonNull(Token), required=True, description="Its active tokens.")
    stream_url = graphene.String(required=True, description="Its events as Server-Sent Events.")
    agents = graphene.List(graphene.NonNull(AgentRef), required=True)
    fire_count = graphene.Int(required=True)
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)
    finished_at = graphene.DateTime()

    @staticmethod
    def resolve_workflow_id(instance, info):
        return instance.definition.slug

    @staticmethod
    def resolve_version(instance, info):
        return instance.version.number

    @staticmethod
    def resolve_current_place(instance, info):
        marked = [p for p, n in (instance.marking or {}).items() if n]
        return marked[0] if len(marked) == 1 and instance.marking[marked[0]] == 1 else None

    @staticmethod
    def resolve_tokens(instance, info):
        return batched(info, "instance", "tokens", instance, lambda rows: _active_tokens(info, rows))

    @staticmethod
    def resolve_stream_url(instance, info):
        return stream_url(instance.pk)

    @staticmethod
    def resolve_agents(instance, info):
        return batched(info, "instance", "agents", instance, _instance_agents)


def _active_tokens(info, instances) -> dict:
    out = {instance.pk: [] for instance in instances}
    rows = remember_tokens(info, TokenRow.objects.filter(instance_id__in=list(out), status=TokenStatus.ACTIVE)
                           .select_related("instance__definition"))
    for token in rows:
        out[token.instance_id].append(token)
    return out


def remember_instances(info, instances) -> list:
    return remember(info, "instance", instances)


class AvailableTransition(graphene.ObjectType):
    """A transition of the token's instance and whether it can fire now (tokens present, guard holding)."""

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    from_places = graphene.List(graphene.NonNull(graphene.String), required=True)
    to_places = graphene.List(graphene.NonNull(graphene.String), required=True)
    enabled = graphene.Boolean(required=True)
    tokens_ready = graphene.Boolean(required=True)
    missing = JSON(required=True, description="{place: tokens still needed}.")
    guard_passed = graphene.Boolean(description="Null when the tokens are not there to evaluate it.")
    explanation = JSON(description="How the guard evaluated.")
    automatic = graphene.Boolean(required=True)

    @staticmethod
    def from_selector(entry: dict) -> AvailableTransition:
        return AvailableTransition(
            id=entry["id"], name=entry["name"] or entry["id"], description=entry["description"] or "",
            from_places=[a["place"] for a in entry["from_places"]], to_places=[a["place"] for a in entry["to_places"]],
            enabled=entry["enabled"], tokens_ready=entry["tokens_ready"], missing=entry["missing"],
            guard_passed=entry["guard"]["passed"], explanation=entry["guard"]["explanation"],
            automatic=entry["automatic"])
