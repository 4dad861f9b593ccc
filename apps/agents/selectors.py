"""Tenant-scoped reads, and the cache of place-agent bindings the token listener consults."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import QuerySet

from apps.rules.engine import Compiled, RuleError, compile_condition
from apps.rules.selectors import named_rules_for

from .models import Agent, AgentExecution, PlaceAgent

BINDINGS_VERSION_KEY = "agents:bindings:version"


def agent_list(*, tenant) -> QuerySet[Agent]:
    return Agent.objects.filter(tenant=tenant)


def place_agent_list(*, tenant, workflow: str | None = None, agent_id=None,
                     place: str | None = None) -> QuerySet[PlaceAgent]:
    rows = PlaceAgent.objects.filter(tenant=tenant).select_related("agent")
    if workflow:
        rows = rows.filter(workflow=workflow)
    if place:
        rows = rows.filter(place=place)
    if agent_id is not None:
        rows = rows.filter(agent_id=agent_id)
    return rows


def execution_list(*, tenant, agent_id=None, status: str | None = None, instance_id=None,
                   token_id=None) -> QuerySet[AgentExecution]:
    rows = AgentExecution.objects.filter(tenant=tenant).select_related("agent")
    if agent_id is not None:
        rows = rows.filter(agent_id=agent_id)
    if status:
        rows = rows.filter(status=status)
    if instance_id is not None:
        rows = rows.filter(instance_id=instance_id)
    if token_id is not None:
        rows = rows.filter(token_id=token_id)
    return rows


def instance_agents(instances) -> dict:
    """{instance pk: [{id, role, status, place, place_agent_id, execution_id}]}: the place agents bound to each
    instance's workflow, with the status of their latest execution for that instance ("idle" before any).
    Two queries for any number of instances."""
    out = {instance.pk: [] for instance in instances}
    if not out:
        return out
    scopes = {(instance.tenant_id, instance.definition.slug) for instance in instances}
    bindings = list(PlaceAgent.objects.filter(tenant_id__in={t for t, _ in scopes},
                                              workflow__in={w for _, w in scopes})
                    .select_related("agent").order_by("id"))
    latest: dict[tuple, tuple] = {}
    for row in (AgentExecution.objects.filter(instance_id__in=list(out), place_agent_id__in=[b.id for b in bindings])
                .order_by("created_at").values_list("instance_id", "place_agent_id", "status", "id")):
        latest[row[:2]] = row[2:]
    for instance in instances:
        for binding in bindings:
            if (binding.tenant_id, binding.workflow) != (instance.tenant_id, instance.definition.slug):
                continue
            status, execution_id = latest.get((instance.pk, binding.id), ("idle", None))
            out[instance.pk].append({"id": binding.agent_id, "role": binding.agent.name, "status": status,
                                     "place": binding.place, "place_agent_id": binding.id,
                                     "execution_id": execution_id})
    return out


@dataclass(frozen=True)
class Binding:
    """What the listener needs of an enabled place agent: no query per token unless a condition asks for one."""

    id: int
    agent_id: int
    place: str
    condition: Compiled | None
    initial_delay: float
    model: str
    max_attempts: int
    timeout_seconds: float


_cache: dict[tuple[int, str], dict[str, list[Binding]]] = {}
_cache_version: list = [None]
_lock = threading.Lock()


def bindings_for(tenant_id: int, workflow: str) -> dict[str, list[Binding]]:
    """{place: enabled bindings} of a tenant's workflow, cached per process until a binding or agent changes
    (a version key every process reads: one cache GET per batch of token events)."""
    version = cache.get(BINDINGS_VERSION_KEY)
    with _lock:
        if version != _cache_version[0]:
            _cache.clear()
            _cache_version[0] = version
        found = _cache.get((tenant_id, workflow))
    if found is not None:
        return found
    by_place: dict[str, list[Binding]] = {}
    rows = PlaceAgent.objects.filter(tenant_id=tenant_id, workflow=workflow, enabled=True,
                                     agent__enabled=True).select_related("tenant", "agent").order_by("id")
    named = None
    for row in rows:
        condition = None
        if row.trigger_conditions not in (None, [], {}):
            if named is None:
                named = named_rules_for(tenant=row.tenant)
            try:
                condition = compile_condition(row.trigger_conditions, named=named)
            except RuleError:
                continue  # a named rule it used was removed: the binding stays idle until fixed
        retry = {**row.agent.retry_settings, **(row.retry or {})}
        by_place.setdefault(row.place, []).append(Binding(
            row.id, row.agent_id, row.place, condition,
            float((row.schedule or {}).get("initial_delay_seconds") or 0), row.agent.model,
            int(retry.get("max_attempts") or 1), row.agent.timeout_seconds))
    with _lock:
        if _cache_version[0] == version:
            _cache[(tenant_id, workflow)] = by_place
    return by_place
