"""/api/request-logs/: the stored prompt and response bodies of the tenant's requests (read-only; only requests
whose tenant or key opted in have one). Looked up by request id (`x-cb-request-id`); filters `api_key_id`,
`model` (served or requested), `status`, `since` / `until` (ISO 8601)."""

from __future__ import annotations

import orjson
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, viewsets

from apps.billing import selectors
from apps.billing.access import request_log_access_by_id
from apps.billing.models import RequestLog
from apps.core.api import StrictModelSerializer
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant


def _body(text: str):
    """The stored JSON as JSON; a truncated body is text."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


class RequestLogSerializer(StrictModelSerializer):
    request_id = serializers.CharField(source="usage_id", read_only=True)
    request = serializers.SerializerMethodField()
    response = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()

    class Meta:
        model = RequestLog
        fields = ["request_id", "created_at", "expires_at", "truncated", "request", "response", "usage"]
        read_only_fields = fields

    def get_request(self, obj) -> dict | str | None:
        return _body(obj.request_body)

    def get_response(self, obj) -> dict | str | None:
        return _body(obj.response_body)

    def get_usage(self, obj) -> dict:
        record = obj.usage
        return {"api_key_id": record.api_key_id, "model_requested": record.model_requested,
                "model_served": record.model_served, "provider": record.provider, "status": record.status,
                "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
                "cost": float(record.cost), "streamed": record.streamed, "error_type": record.error_type}


FILTERS = [
    OpenApiParameter("api_key_id", OpenApiTypes.INT, description="Requests made with this key."),
    OpenApiParameter("model", OpenApiTypes.STR, description="Model served or requested."),
    OpenApiParameter("status", OpenApiTypes.INT, description="HTTP status answered."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Requests at or after this time."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Requests before this time."),
]


@extend_schema_view(list=extend_schema(parameters=FILTERS))
class RequestLogViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RequestLogSerializer
    permission_classes = [IsTenantAdmin]
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RequestLog.objects.none()
        params = self.request.query_params
        filters = {}
        for name in ("api_key_id", "status"):
            if params.get(name) is not None:
                try:
                    filters[name] = int(params[name])
                except ValueError:
                    raise exceptions.ValidationError({name: ["Expected an integer."]}) from None
                if not -(2**63) < filters[name] < 2**63:  # no such key or status; the database's integers end there
                    return RequestLog.objects.none()
        for name in ("since", "until"):
            if params.get(name) is not None:
                moment = parse_datetime(params[name])
                if moment is None:
                    raise exceptions.ValidationError({name: ["Expected an ISO 8601 date and time."]})
                filters[name] = moment
        return selectors.request_log_list(tenant=request_tenant(self.request), model=params.get("model"), **filters)

    def get_object(self):
        log = request_log_access_by_id(request_tenant(self.request), self.kwargs[self.lookup_field])
        self.check_object_permissions(self.request, log)
        return log
