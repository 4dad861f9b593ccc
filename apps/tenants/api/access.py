"""Detail routes of the management API reach their row through the app's `<thing>_access_by_id`."""

from __future__ import annotations

from django.http import Http404
from rest_framework.permissions import SAFE_METHODS

from apps.core.errors import NotFound

from .tenancy import request_tenant


class AccessByIdMixin:
    """For a DRF viewset: `get_object` = `access_by_id(tenant, pk, for_write=<unsafe method>)`; lists keep using
    the viewset's selector-based `get_queryset`. Set `access_by_id` to a staticmethod."""

    access_by_id = None

    def get_object(self):
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        try:
            row = type(self).access_by_id(request_tenant(self.request), lookup,
                                          for_write=self.request.method not in SAFE_METHODS)
        except NotFound:
            # DRF's own 404 body, which names no id: a missing row and another tenant's answer byte for byte alike.
            raise Http404(f"No {self.get_queryset().model._meta.object_name} matches the given query.") from None
        self.check_object_permissions(self.request, row)
        return row
