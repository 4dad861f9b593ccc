"""Cost and usage analytics under /api/analytics/, and OpenRouter's GET /api/v1/generation?id=.

Tenant-scoped like the budgets API: an API key acts for its tenant, a member for theirs (staff: ?tenant=slug).
Money is emitted as JSON numbers (USD, computed as Decimal at the ledger's 10 decimal places), like /api/budgets/
and OpenRouter's `total_cost`. Days are UTC; ranges are inclusive.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.billing import analytics
from apps.core.api import beyond_schema
from apps.tenants.api.permissions import IsTenantAdmin
from apps.tenants.api.tenancy import request_tenant
from apps.tenants.models import ApiKey

from . import analytics_serializers as shapes

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_LIMIT = 1000

RANGE_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE,
                     description="First UTC day, YYYY-MM-DD (default: 30 days before end); not after end."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last UTC day, YYYY-MM-DD, inclusive (default: today)."),
]
RANGE_RULES = beyond_schema("`start`: not after `end` (either may be a default).",
                            f"`start`: the range spans at most {MAX_DAYS} days, both ends included.")


def range_schema(response, *, parameters=(), **kwargs):
    """The schema of a view over ?start=&end=: its parameters, the range rules, what it answers."""
    return extend_schema(parameters=[*RANGE_PARAMETERS, *parameters], responses={200: response},
                         extensions=RANGE_RULES, **kwargs)


LIMIT_PARAMETER = OpenApiParameter("limit", int, description=f"How many groups, 1…{MAX_LIMIT}.")


def money(value: Decimal) -> float:
    return float(value)


def _day(request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise exceptions.ValidationError({name: ["Expected a date as YYYY-MM-DD."]}) from None


def date_range(request, *, default_start=None) -> tuple[date, date]:
    """?start=&end= (inclusive), defaulting to the last 30 days; at most 366 days; 400 on anything else."""
    end = _day(request, "end") or analytics.today_utc()
    start = _day(request, "start")
    if start is None:
        start = default_start(end) if default_start else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise exceptions.ValidationError({"start": ["start is after end."]})
    if (end - start).days + 1 > MAX_DAYS:
        raise exceptions.ValidationError({"start": [f"The range is longer than {MAX_DAYS} days."]})
    return start, end


def _limit(request, default: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise exceptions.ValidationError({"limit": [f"Expected an integer from 1 to {MAX_LIMIT}."]})
    return value


def _figures(row: dict) -> dict:
    return {**row, "cost": money(row["cost"])}


class _AnalyticsView(APIView):
    permission_classes = [IsTenantAdmin]

    def tenant(self):
        return request_tenant(self.request)


class SummaryView(_AnalyticsView):
    """Total spend, requests, tokens and error rate over the range."""

    @range_schema(shapes.SummarySerializer)
    def get(self, request):
        start, end = date_range(request)
        return Response({"start": start, "end": end,
                         **_figures(analytics.usage_summary(tenant=self.tenant(), start=start, end=end))})


class DailyView(_AnalyticsView):
    """Spend per day (the trend), every day of the range, zero-filled."""

    @range_schema(shapes.DailySerializer)
    def get(self, request):
        start, end = date_range(request)
        rows = analytics.usage_daily(tenant=self.tenant(), start=start, end=end)
        return Response({"start": start, "end": end, "results": [_figures(row) for row in rows]})


def _twelve_months(end: date) -> date:
    year, month = (end.year, end.month - 11) if end.month > 11 else (end.year - 1, end.month + 1)
    return date(year, month, 1)


class MonthlyView(_AnalyticsView):
    """Spend per calendar month; default range: the current month and the 11 before it."""

    @range_schema(shapes.MonthlySerializer)
    def get(self, request):
        start, end = date_range(request, default_start=_twelve_months)
        rows = analytics.usage_monthly(tenant=self.tenant(), start=start, end=end)
        return Response({"start": start, "end": end, "results": [_figures(row) for row in rows]})


class BreakdownView(_AnalyticsView):
    """Spend by provider, model, api_key, user, project or workflow, most expensive first (?limit=, ≤ 1000)."""

    @range_schema(shapes.BreakdownSerializer, parameters=[LIMIT_PARAMETER])
    def get(self, request, dimension: str):
        if dimension not in analytics.DIMENSIONS:
            raise exceptions.NotFound(f"No breakdown by {dimension!r}; one of {', '.join(analytics.DIMENSIONS)}.")
        start, end = date_range(request)
        result = analytics.usage_breakdown(tenant=self.tenant(), start=start, end=end, dimension=dimension,
                                           limit=_limit(request, 100))
        return Response({"start": start, "end": end, **result, "total_cost": money(result["total_cost"]),
                         "results": [_figures(row) for row in result["results"]]})


class TopModelsView(_AnalyticsView):
    """The most expensive models of the range (?limit=, default 10)."""

    @range_schema(shapes.TopModelsSerializer, parameters=[LIMIT_PARAMETER])
    def get(self, request):
        start, end = date_range(request)
        result = analytics.usage_breakdown(tenant=self.tenant(), start=start, end=end, dimension="model",
                                           limit=_limit(request, 10))
        return Response({"start": start, "end": end, "total_cost": money(result["total_cost"]),
                         "results": [_figures(row) for row in result["results"]]})


class ProjectionView(_AnalyticsView):
    """Projected month-end spend: spent so far this month ÷ days elapsed (today included) × days in the month."""

    @extend_schema(responses={200: shapes.ProjectionSerializer})
    def get(self, request):
        result = analytics.spend_projection(tenant=self.tenant())
        return Response({**result, "month_to_date": money(result["month_to_date"]),
                         "projected_month_end": money(result["projected_month_end"])})


class PerformanceView(_AnalyticsView):
    """Requests, errors, error rate and latency p50/p95/p99 (successful requests) from the ledger."""

    @range_schema(shapes.PerformanceSerializer)
    def get(self, request):
        start, end = date_range(request)
        return Response({"start": start, "end": end,
                         **analytics.usage_performance(tenant=self.tenant(), start=start, end=end)})


class CanReadGenerations(permissions.BasePermission):
    """What may read the tenant's generations: as IsTenantAdmin for reads, plus the tenant's inference keys
    (OpenRouter clients call /generation with the key they infer with)."""

    message = IsTenantAdmin.message

    def has_permission(self, request, view):
        if request.method not in permissions.SAFE_METHODS:
            return False
        if isinstance(request.auth, ApiKey) and request.auth.has_scope(ApiKey.Scope.INFERENCE):
            return True
        return IsTenantAdmin().has_permission(request, view)


def generation_data(record) -> dict:
    """OpenRouter's generation object for one of our ledger records."""
    ttft = record.ttft_ms
    cancelled = record.status == 499
    if cancelled:
        finish = "cancelled"
    elif record.status >= 400:
        finish = "error"
    else:
        finish = None  # the ledger does not keep the upstream finish reason
    return {
        "id": record.request_id,
        "model": record.model_served or record.model_requested,
        "model_requested": record.model_requested,
        "provider_name": record.provider or None,
        "created_at": record.created_at.isoformat(),
        "total_cost": money(record.cost),
        "usage": money(record.cost),
        "is_byok": True,  # every upstream call here uses the tenant's own provider key
        "upstream_id": None,
        "cache_discount": None,
        "streamed": record.streamed,
        "cancelled": cancelled,
        "latency": record.latency_ms,
        "generation_time": max(record.latency_ms - ttft, 0.0) if ttft is not None else record.latency_ms,
        "time_to_first_token": ttft,
        "moderation_latency": None,
        "finish_reason": finish,
        "native_finish_reason": finish,
        "status": record.status,
        "error_type": record.error_type or None,
        "tokens_prompt": record.prompt_tokens,
        "tokens_completion": record.completion_tokens,
        "native_tokens_prompt": record.prompt_tokens,
        "native_tokens_completion": record.completion_tokens,
        "native_tokens_reasoning": record.reasoning_tokens,
        "native_tokens_cached": record.cached_tokens,
        "native_tokens_cache_write": record.cache_write_tokens,
        "usage_estimated": record.usage_estimated,
        "num_media_prompt": None,
        "num_media_completion": None,
        "num_search_results": None,
        "origin": "",
        "app_id": None,
        "external_user": record.user_label or None,
        "project": record.project_label or None,
        "router": record.strategy or None,
        "api_type": record.endpoint,
    }


class GenerationView(APIView):
    """OpenRouter's `GET /api/v1/generation?id=…`: cost and stats of one of the caller tenant's requests."""

    permission_classes = [CanReadGenerations]

    @extend_schema(parameters=[OpenApiParameter("id", str, required=True, description="The request id.")],
                   responses={200: shapes.GenerationSerializer})
    def get(self, request):
        request_id = request.query_params.get("id", "")
        if not request_id:
            raise exceptions.ValidationError({"id": ["This query parameter is required."]})
        record = analytics.generation_get(tenant=request_tenant(request), request_id=request_id[:64])
        if record is None or len(request_id) > 64:
            raise exceptions.NotFound("Generation not found.")
        return Response({"data": generation_data(record)})
