from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.billing.analytics import spend_projection, today_utc, usage_breakdown, usage_daily, usage_summary
from apps.providers.selectors import model_list, provider_list
from apps.tenants.selectors import api_key_list, tenants_for_user

from .charts import bar_chart

DAYS = 30


@login_required
def overview(request):
    """Per tenant: 30 days of spend drawn, month-to-date and projection, top models, providers and keys."""
    today = today_utc()
    start = today - timedelta(days=DAYS - 1)
    rows = []
    for tenant in tenants_for_user(user=request.user)[:50]:
        daily = usage_daily(tenant=tenant, start=start, end=today)
        rows.append({
            "tenant": tenant,
            "chart": bar_chart([(f"{d['day']:%b %d}", d["cost"]) for d in daily]),
            "requests_chart": bar_chart([(f"{d['day']:%b %d}", d["requests"]) for d in daily], unit=""),
            "summary": usage_summary(tenant=tenant, start=start, end=today),
            "projection": spend_projection(tenant=tenant, today=today),
            "top_models": usage_breakdown(tenant=tenant, start=start, end=today, dimension="model",
                                          limit=5)["results"],
            "providers": list(provider_list(tenant=tenant).filter(enabled=True)),
            "active_keys": api_key_list(tenant=tenant).filter(revoked_at__isnull=True).count(),
            "models": model_list(tenant=tenant).filter(enabled=True).count(),
        })
    return render(request, "dashboard/overview.html", {"rows": rows, "days": DAYS})
