"""Reaching a tenant's function, trigger, chain or execution by id: another tenant's and a missing one look the
same (NotFound), and so does a malformed id."""

from __future__ import annotations

from apps.core.access import tenant_row_access

from .models import Function, FunctionChain, FunctionExecution, FunctionTrigger


def function_access_by_id(tenant, function_id, *, for_write: bool = False) -> Function:
    return tenant_row_access(Function.objects.all(), function_id, tenant=tenant, for_write=for_write,
                             shared_globals=False, label="function")


def trigger_access_by_id(tenant, trigger_id, *, for_write: bool = False) -> FunctionTrigger:
    return tenant_row_access(FunctionTrigger.objects.select_related("function"), trigger_id, tenant=tenant,
                             for_write=for_write, shared_globals=False, label="function trigger")


def chain_access_by_id(tenant, chain_id, *, for_write: bool = False) -> FunctionChain:
    return tenant_row_access(FunctionChain.objects.select_related("function", "next_function"), chain_id,
                             tenant=tenant, for_write=for_write, shared_globals=False, label="function chain")


def execution_access_by_id(tenant, execution_id, *, for_write: bool = False) -> FunctionExecution:
    return tenant_row_access(FunctionExecution.objects.select_related("function"), execution_id, tenant=tenant,
                             for_write=for_write, shared_globals=False, label="function execution")
