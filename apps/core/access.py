"""The one rule for reaching a tenant-owned row by id, which every app's `<thing>_access_by_id` applies.

- Another tenant's row and a missing row get the same `NotFound` (no probing for ids).
- Rows with no tenant are global: readable by every tenant where the app shares them, changeable only by staff.
- A malformed id is a missing row, never a 500.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import Model, Q, QuerySet

from .errors import NotFound, PermissionDenied


def tenant_row_access(queryset: QuerySet, pk, *, tenant, for_write: bool = False, staff: bool = False,
                      shared_globals: bool = True, label: str = "object", tenant_field: str = "tenant") -> Model:
    """The row `pk` of `queryset` as `tenant` may see it; `for_write` applies the staff rule (and locks the
    row when the caller is inside a transaction)."""
    if not _valid_pk(queryset.model, pk):
        raise NotFound(f"No {label} with id {pk!r}.")
    owned = Q(**{tenant_field: tenant})
    if shared_globals:
        owned |= Q(**{f"{tenant_field}__isnull": True})
    rows = queryset.filter(owned, pk=pk)
    if for_write and transaction.get_connection(queryset.db).in_atomic_block:
        rows = rows.select_for_update(of=("self",))  # callers that write in a transaction hold the row
    row = rows.first()
    if row is None:
        raise NotFound(f"No {label} with id {pk!r}.")
    # Only where globals are shared can a global row come back (and `tenant_field` may then be a path).
    if for_write and shared_globals and getattr(row, f"{tenant_field}_id") is None and not staff:
        raise PermissionDenied(f"This {label} is global; only staff can change it.", code="global_object")
    return row


def _valid_pk(model: type[Model], pk) -> bool:
    field = model._meta.pk
    try:
        if field.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField", "IntegerField"):
            return 0 < int(pk) < 2**63
        if field.get_internal_type() == "UUIDField":
            uuid.UUID(str(pk))
    except (TypeError, ValueError):
        return False
    return True
