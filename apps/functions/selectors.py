"""Tenant-scoped reads of functions, triggers, chains and executions, and functions as LLM tools."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q, QuerySet

from .models import Function, FunctionChain, FunctionExecution, FunctionTrigger

_TOOL_NAME_BAD = re.compile(r"[^a-zA-Z0-9_-]+")


def function_list(*, tenant, runtime: str | None = None, tag: str | None = None,
                  enabled: bool | None = None) -> QuerySet[Function]:
    rows = Function.objects.filter(tenant=tenant)
    if runtime:
        rows = rows.filter(runtime=runtime)
    if tag:
        if connection.vendor == "postgresql":
            rows = rows.filter(tags__contains=[tag])
        else:  # SQLite (the embedded default) has no JSON containment: a tenant's functions are few
            rows = rows.filter(pk__in=[f.pk for f in rows.only("pk", "tags") if tag in (f.tags or [])])
    if enabled is not None:
        rows = rows.filter(enabled=enabled)
    return rows


def trigger_list(*, tenant, function=None, kind: str | None = None) -> QuerySet[FunctionTrigger]:
    rows = FunctionTrigger.objects.filter(tenant=tenant).select_related("function")
    if function is not None:
        rows = rows.filter(function=function)
    if kind:
        rows = rows.filter(kind=kind)
    return rows


def chain_list(*, tenant, function=None) -> QuerySet[FunctionChain]:
    rows = FunctionChain.objects.filter(tenant=tenant).select_related("function", "next_function")
    return rows.filter(function=function) if function is not None else rows


def execution_list(*, tenant, function=None, status: str | None = None, instance_id=None, token_id=None,
                   agent_execution_id: str | None = None) -> QuerySet[FunctionExecution]:
    rows = FunctionExecution.objects.filter(tenant=tenant).select_related("function")
    if function is not None:
        rows = rows.filter(function=function)
    if status:
        rows = rows.filter(status=status)
    if instance_id:
        rows = rows.filter(instance_id=instance_id)
    if token_id:
        rows = rows.filter(token_id=token_id)
    if agent_execution_id:
        rows = rows.filter(agent_execution_id=agent_execution_id)
    return rows


def _functions_named(tenant, function_ids: Iterable) -> list[Function]:
    """The tenant's enabled functions among `function_ids` (ids or names), in a stable order."""
    ids, names = [], []
    for ref in function_ids or []:
        try:
            ids.append(uuid.UUID(str(ref)))
        except ValueError:
            names.append(str(ref))
    if not ids and not names:
        return []
    return list(Function.objects.filter(Q(pk__in=ids) | Q(name__in=names), tenant=tenant, enabled=True)
                .order_by("name", "id"))


def tool_names(tenant, function_ids: Iterable) -> dict[str, Function]:
    """Tool name → function, for the functions `tool_specs` describes: names made to fit OpenAI's
    `^[a-zA-Z0-9_-]{1,64}$` (other characters become `_`; a clash gets a numeric suffix)."""
    named: dict[str, Function] = {}
    for function in _functions_named(tenant, function_ids):
        base = _TOOL_NAME_BAD.sub("_", function.name).strip("_")[:64] or "function"
        name, n = base, 2
        while name in named:
            suffix = f"_{n}"
            name, n = base[: 64 - len(suffix)] + suffix, n + 1
        named[name] = function
    return named


def tool_spec(name: str, function: Function) -> dict:
    # OpenAI wants the parameters' schema itself: no `$schema`/`$id` header, and an object.
    parameters = {k: v for k, v in (function.input_schema or {}).items() if k not in ("$schema", "$id")}
    parameters = parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": {"name": name, "description": function.description or function.name,
                                             "parameters": parameters}}


def tool_specs(tenant, function_ids: Iterable) -> list[dict]:
    """OpenAI tool definitions of the tenant's enabled functions among `function_ids`; `tool_names` maps the
    names back to the functions."""
    return [tool_spec(name, function) for name, function in tool_names(tenant, function_ids).items()]
