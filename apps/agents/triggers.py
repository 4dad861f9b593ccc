"""Place agents start when a token enters their place: an after-commit listener of the workflow outbox.

It must be cheap, since it runs in the committing thread of every workflow change: it looks only at
`token_created` and `transition_fired` events, asks the per-process binding cache (one cache GET per batch),
and touches the database only for a place that has a binding (a condition that needs the token's metadata
reads the token; then one INSERT per started execution, enqueued at once since the change has committed)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from apps.rules.engine import passes
from apps.workflows.models import Token

from .dispatch import execution_from_binding
from .selectors import bindings_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    tenant_id: int
    workflow: str
    instance_id: object
    token_id: str | None  # None: a created child whose place must be read
    place: str | None
    data: dict
    key: str


def arrivals(events: Sequence) -> list[Arrival]:
    found: list[Arrival] = []
    for event in events:
        if event.type == "token_created":
            data = event.data or {}
            found.append(Arrival(event.tenant_id, event.workflow, event.instance_id, str(event.token_id),
                                 data.get("place"), data.get("data") or {}, _key(event.token_id, event)))
        elif event.type == "transition_fired":
            data = event.data or {}
            places = data.get("to_places") or []
            created = data.get("created") or []
            if data.get("token_id") and places:
                found.append(Arrival(event.tenant_id, event.workflow, event.instance_id, str(data["token_id"]),
                                     places[0], data.get("data") or {}, _key(data["token_id"], event)))
            exact = len(created) == len(places) - 1  # weight-1 arcs: children in output order
            for i, child in enumerate(created):
                found.append(Arrival(event.tenant_id, event.workflow, event.instance_id, str(child),
                                     places[i + 1] if exact else None, data.get("data") or {},
                                     _key(child, event)))
    return found


def _key(token_id, event) -> str:
    return f"{token_id}@{event.created_at.timestamp():.6f}"


def on_events(events: Sequence) -> None:
    relevant = [e for e in events if e.type in ("token_created", "transition_fired")]
    if not relevant:
        return
    cached: dict[tuple[int, str], dict] = {}
    for arrival in arrivals(relevant):
        scope = (arrival.tenant_id, arrival.workflow)
        if scope not in cached:
            cached[scope] = bindings_for(*scope)
        by_place = cached[scope]
        if not by_place:
            continue
        place, token = arrival.place, None
        if place is None:
            token = Token.objects.filter(pk=arrival.token_id).only("id", "place", "instance_id", "data",
                                                                   "metadata").first()
            place = token.place if token else None
        for binding in by_place.get(place, ()):
            try:
                _start(binding, arrival, token)
            except Exception:
                log.exception("place agent %s could not start for token %s", binding.id, arrival.token_id)


def token_start(token, *, tenant_id: int, workflow: str) -> list[str]:
    """Start the enabled bindings of the token's current place whose conditions hold on it now (the original's
    triggerPlaceAgents). Not keyed to an arrival: each call starts them again. The started executions' ids."""
    arrival = Arrival(tenant_id, workflow, token.instance_id, str(token.id), token.place, token.data or {}, "")
    started = (_start(binding, arrival, token) for binding in bindings_for(tenant_id, workflow).get(token.place, ()))
    return [execution_id for execution_id in started if execution_id]


def _start(binding, arrival: Arrival, token) -> str | None:
    if binding.condition is not None:
        if token is None:
            token = Token.objects.filter(pk=arrival.token_id).only("id", "place", "instance_id", "data",
                                                                   "metadata").first()
        if token is None or not passes(binding.condition, {
                "data": token.data or {}, "metadata": token.metadata or {},
                "token": {"id": str(token.id), "place": token.place}}):
            return None
    return execution_from_binding(binding, tenant_id=arrival.tenant_id, workflow=arrival.workflow,
                                  instance_id=arrival.instance_id, token_id=arrival.token_id, trigger_key=arrival.key)
