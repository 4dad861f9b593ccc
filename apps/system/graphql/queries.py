"""`version`, `health`, `metrics`."""

from __future__ import annotations

import graphene
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.billing import analytics
from apps.core.graphql_fields import reader
from apps.core.health import health_report
from apps.gateway import completion_api
from apps.gateway import health_report as gateway_health
from apps.gateway import metrics as gateway_metrics

from .types import CostMetrics, ProviderStatus, SystemHealth, SystemMetrics

HEALTH_TIMEOUT_SECONDS = 8.0
MAX_WINDOW_SECONDS = 86400


class SystemQueries(graphene.ObjectType):
    version = graphene.String(required=True, description="cbplatform version.")
    health = graphene.Field(SystemHealth, required=True)
    metrics = graphene.Field(SystemMetrics, required=True,
                             window_seconds=graphene.Int(default_value=300,
                                                         description=f"1…{MAX_WINDOW_SECONDS}; default 300."))

    @staticmethod
    def resolve_version(root, info):
        return settings.VERSION

    @staticmethod
    @reader
    def resolve_health(root, info):
        # On the server's loop, as GET /health runs: its providers section reads the shared gateway runtime, whose
        # Redis client belongs to that loop (used from another loop, it crashed the process).
        _, body = completion_api.run_sync(health_report, timeout=HEALTH_TIMEOUT_SECONDS)
        return SystemHealth(status=body["status"], version=body["version"], embedded=body["embedded"],
                            checks=body["checks"], providers=body.get("providers") or {})

    @staticmethod
    @reader
    def resolve_metrics(root, info, *, window_seconds=300):
        if not 1 <= window_seconds <= MAX_WINDOW_SECONDS:
            raise ValidationError({"windowSeconds": [f"From 1 to {MAX_WINDOW_SECONDS}."]})
        tenant = info.context.tenant
        traffic = analytics.recent_traffic(tenant=tenant, seconds=window_seconds)
        today = analytics.today_utc()
        projection = analytics.spend_projection(tenant=tenant, today=today)
        today_cost = analytics.usage_summary(tenant=tenant, start=today, end=today)["cost"]
        providers = [ProviderStatus(provider=slug, provider_type=entry.get("type", ""), status=entry["status"],
                                    deployments_measured=entry.get("deployments_measured", 0),
                                    circuits_open=entry.get("circuits_open", 0))
                     for slug, entry in sorted(gateway_health.global_provider_status().items())]
        return SystemMetrics(
            window_seconds=window_seconds, requests=traffic["requests"],
            requests_per_second=traffic["requests_per_second"], error_rate=traffic["error_rate"],
            average_latency_ms=traffic["average_latency_ms"], active_connections=gateway_metrics.inflight_now(),
            provider_health=providers,
            cost_metrics=CostMetrics(cost_in_window=float(traffic["cost"]), cost_today=float(today_cost),
                                     cost_this_month=float(projection["month_to_date"]),
                                     projected_monthly_spend=float(projection["projected_month_end"])))
