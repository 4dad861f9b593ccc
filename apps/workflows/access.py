"""Reaching a tenant's workflow, instance or token by id: another tenant's and a missing one look the same."""

from __future__ import annotations

from apps.core.access import tenant_row_access
from apps.core.errors import NotFound

from .models import Token, WorkflowDefinition, WorkflowInstance


def workflow_access_by_id(tenant, workflow_id: str, *, for_write: bool = False) -> WorkflowDefinition:
    """`workflow_id` is the slug (`document_review`): the id users know a workflow by."""
    rows = WorkflowDefinition.objects.filter(tenant=tenant, slug=str(workflow_id)[:64])
    if for_write:
        rows = rows.select_for_update(of=("self",))
    row = rows.select_related("current_version").first()
    if row is None:
        raise NotFound(f"No workflow with id {workflow_id!r}.")
    return row


def instance_access_by_id(tenant, instance_id, *, for_write: bool = False) -> WorkflowInstance:
    return tenant_row_access(WorkflowInstance.objects.select_related("definition", "version"), instance_id,
                             tenant=tenant, for_write=for_write, shared_globals=False, label="workflow instance")


def token_access_by_id(tenant, token_id, *, for_write: bool = False) -> Token:
    return tenant_row_access(Token.objects.select_related("instance", "instance__definition"), token_id,
                             tenant=tenant, for_write=for_write, shared_globals=False, label="token")
