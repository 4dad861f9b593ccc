"""The dashboard draws the tenant's spend: bars proportional to each day's cost, only the tenant's own."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.billing.analytics import today_utc
from apps.billing.models import UsageRecord
from apps.tenants.models import Membership
from tests import factories

pytestmark = pytest.mark.django_db


def record(tenant, day_offset: int, cost: str, model="gpt-4o", status=200):
    day = today_utc() - timedelta(days=day_offset)
    UsageRecord.objects.create(
        request_id=f"req_{tenant.pk}_{day_offset}_{cost}_{model}_{status}",
        created_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC), tenant=tenant, endpoint="chat.completions",
        provider="p", model_requested=model, model_served=model, prompt_tokens=10, completion_tokens=5,
        cost=Decimal(cost), latency_ms=20, status=status)


def bars(html: str, chart: str) -> list[tuple[float, str]]:
    svg = re.search(rf'<svg class="chart chart-{chart}".*?</svg>', html, re.S).group(0)
    return [(float(h), t) for h, t in re.findall(r'height="([\d.]+)"><title>([^<]+)</title>', svg)]


def test_spend_is_drawn_per_day_for_the_users_tenant_only(client):
    mine, theirs = factories.tenant("dash-mine"), factories.tenant("dash-theirs")
    record(mine, 0, "0.02")
    record(mine, 1, "0.01")
    record(mine, 1, "0.01", model="claude-3-haiku")
    record(mine, 5, "0.005", status=502)
    record(theirs, 0, "9.99")  # must not show up anywhere
    user = factories.user(tenant_obj=mine, role=Membership.Role.VIEWER)
    client.force_login(user)
    page = client.get("/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    spend = bars(html, "spend")
    assert len(spend) == 30
    tallest = max(height for height, _ in spend)
    assert spend[-1][0] == tallest  # today: $0.02 is the top of the scale
    assert spend[-2][0] == pytest.approx(tallest)  # yesterday: two requests of $0.01
    assert spend[-6][0] == pytest.approx(tallest / 4)  # five days ago: $0.005
    assert spend[-1][1].endswith("$0.0200") and spend[-3][0] == 0
    requests = bars(html, "requests")
    assert requests[-2][0] == max(h for h, _ in requests)  # yesterday had the most requests (2)
    assert "9.99" not in html and "dash-theirs" not in html
    assert "gpt-4o" in html and "claude-3-haiku" in html  # top models
    assert "$0.0450" in html  # the 30-day total


def test_dashboard_requires_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
