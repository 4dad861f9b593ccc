"""Reaching a tenant's agent, place-agent binding or execution by id: another tenant's and a missing one (or a
malformed id) get the same NotFound."""

from __future__ import annotations

from apps.core.access import tenant_row_access

from .models import Agent, AgentExecution, PlaceAgent


def agent_access_by_id(tenant, agent_id, *, for_write: bool = False) -> Agent:
    return tenant_row_access(Agent.objects.all(), agent_id, tenant=tenant, for_write=for_write,
                             shared_globals=False, label="agent")


def place_agent_access_by_id(tenant, binding_id, *, for_write: bool = False) -> PlaceAgent:
    return tenant_row_access(PlaceAgent.objects.select_related("agent"), binding_id, tenant=tenant,
                             for_write=for_write, shared_globals=False, label="place agent")


def execution_access_by_id(tenant, execution_id, *, for_write: bool = False) -> AgentExecution:
    return tenant_row_access(AgentExecution.objects.select_related("agent"), execution_id, tenant=tenant,
                             for_write=for_write, shared_globals=False, label="agent execution")
