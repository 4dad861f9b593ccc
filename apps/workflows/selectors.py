"""Tenant-scoped reads of workflows, instances, tokens and events."""

from __future__ import annotations

from django.db.models import QuerySet

from .engine import TokenView, enabled, plan, select_tokens
from .engine.firing import missing_tokens
from .guards import guard_check
from .models import Token, TokenHistory, TokenStatus, WorkflowDefinition, WorkflowEvent, WorkflowInstance
from .netcache import net_for_version


def workflow_list(*, tenant) -> QuerySet[WorkflowDefinition]:
    return WorkflowDefinition.objects.filter(tenant=tenant).select_related("current_version")


def instance_list(*, tenant, workflow: str | None = None, status: str | None = None) -> QuerySet[WorkflowInstance]:
    rows = WorkflowInstance.objects.filter(tenant=tenant).select_related("definition", "version")
    if workflow:
        rows = rows.filter(definition__slug=workflow)
    if status:
        rows = rows.filter(status=status)
    return rows


def token_list(*, tenant, instance=None, workflow: str | None = None, place: str | None = None,
               include_consumed: bool = False) -> QuerySet[Token]:
    """Tokens (the seeds' "find tokens in a place"): active ones unless asked otherwise."""
    rows = Token.objects.filter(tenant=tenant).select_related("instance", "instance__definition")
    if instance is not None:
        rows = rows.filter(instance=instance)
    if workflow:
        rows = rows.filter(instance__definition__slug=workflow)
    if place:
        rows = rows.filter(place=place)
    if not include_consumed:
        rows = rows.filter(status=TokenStatus.ACTIVE)
    return rows


def token_history(*, token) -> QuerySet[TokenHistory]:
    return TokenHistory.objects.filter(token=token).order_by("id")


def event_list(*, tenant, after_id: int = 0, instance_id=None, workflow: str | None = None) -> QuerySet[WorkflowEvent]:
    rows = WorkflowEvent.objects.filter(tenant=tenant, id__gt=after_id)
    if instance_id is not None:
        rows = rows.filter(instance_id=instance_id)
    if workflow:
        rows = rows.filter(workflow=workflow)
    return rows.order_by("id")


def token_views(instance) -> list[TokenView]:
    rows = Token.objects.filter(instance=instance, status=TokenStatus.ACTIVE).values_list(
        "id", "place", "data", "metadata", "arrived_at")
    return [TokenView(str(i), place, data, metadata, (arrived, str(i))) for i, place, data, metadata, arrived in rows]


def instance_transitions(*, instance, token_id: str | None = None) -> list[dict]:
    """Every transition of the instance's net with whether it can fire now: tokens present, and the guard's
    result and explanation over the tokens it would take (the named token's, when given)."""
    net, named = net_for_version(instance.version_id)
    tokens = token_views(instance)
    by_place: dict[str, list[TokenView]] = {}
    for tok in tokens:
        by_place.setdefault(tok.place, []).append(tok)
    marking = {p: len(v) for p, v in by_place.items()}
    out = []
    for t in net.transitions:
        entry = {"id": t.id, "name": t.label, "description": t.description, "origin": t.origin,
                 "from_places": [{"place": a.place, "weight": a.weight} for a in t.inputs],
                 "to_places": [{"place": a.place, "weight": a.weight} for a in t.outputs],
                 "automatic": t.automatic, "delay_seconds": t.delay_seconds,
                 "enabled_since": instance.enabled_since.get(t.id)}
        ready = instance.status == "running" and enabled(net, marking, t)
        if token_id is not None and not any(tok.id == token_id for a in t.inputs for tok in by_place.get(a.place, [])):
            ready = False
        entry["tokens_ready"] = ready
        entry["missing"] = missing_tokens(marking, t)
        guard = {"passed": None, "explanation": None}
        if ready:
            taken = select_tokens(t, by_place, lead=token_id)
            firing = plan(t, taken, lead=token_id)
            passed, explanation = guard_check(version_id=instance.version_id, transition=t, named=named,
                                              facts=guard_facts(instance, firing))
            guard = {"passed": passed, "explanation": explanation}
        entry["guard"] = guard
        entry["enabled"] = bool(ready and guard["passed"])
        out.append(entry)
    return out


def guard_facts(instance, firing, *, actor: str = "") -> dict:
    """What a guard sees: the merged data and metadata of the tokens it would take (with the fire's patch),
    those tokens, and the case."""
    return {"data": firing.data, "metadata": firing.metadata,
            "tokens": [{"id": t.id, "place": t.place, "data": t.data, "metadata": t.metadata} for t in firing.taken],
            "transition": firing.transition.origin or firing.transition.id, "actor": actor,
            "instance": {"id": str(instance.id), "workflow": instance.definition.slug,
                         "fire_count": instance.fire_count}}
