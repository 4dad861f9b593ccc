"""Cost analytics (/api/analytics/), the daily roll-up, OpenRouter's /api/v1/generation and the ledger admin,
against hand-computed figures on ledger rows made here."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from rest_framework.test import APIClient

from apps.billing import analytics, rollup
from apps.billing.models import UsageDaily, UsageRecord, UsageRollupDay
from tests import factories

pytestmark = pytest.mark.django_db
D = Decimal
_ids = itertools.count(1)



def at(day, hour=12):
    return datetime.combine(day, time(hour), tzinfo=UTC)


def record(tenant, when, cost="0", *, request_id=None, status=200, **fields):
    return UsageRecord.objects.create(request_id=request_id or f"an-{next(_ids)}", created_at=when, tenant=tenant,
                                      endpoint="chat", status=status, cost=D(cost), **fields)


@pytest.fixture
def world():
    """Tenant A's ledger (five rows in the last 30 days, one older) and tenant B's single expensive row."""
    today = analytics.today_utc()
    a = factories.tenant("an-a")
    b = factories.tenant("an-b")
    k1, secret_a = factories.api_key(a, scopes=["admin"], name="backend")
    k2, _ = factories.api_key(a, scopes=["inference"], name="frontend")
    _, inference_a = factories.api_key(a, scopes=["inference"], name="infer")
    _, secret_b = factories.api_key(b, scopes=["admin"])
    _, inference_b = factories.api_key(b, scopes=["inference"])
    rows = {
        "r1": record(a, at(today, 0), "1.5", request_id="gen-a-1", model_served="gpt-4o", model_requested="auto",
                     provider="openai", api_key=k1, user_label="u1", project_label="p1", workflow_id="w1",
                     prompt_tokens=100, completion_tokens=50, cached_tokens=10, reasoning_tokens=5, latency_ms=100,
                     ttft_ms=40, streamed=True, strategy="cost-optimal"),
        "r2": record(a, at(today, 0), "0.25", model_served="claude", provider="anthropic", api_key=k2,
                     user_label="u2", project_label="p1", prompt_tokens=20, completion_tokens=10, latency_ms=300),
        "r3": record(a, at(today, 0), "0", status=500, model_served="gpt-4o", provider="openai", api_key=k1,
                     latency_ms=50, error_type="upstream_error"),
        "r4": record(a, at(today - timedelta(days=1)), "2.0", model_served="gpt-4o", provider="openai", api_key=k1,
                     user_label="u1", project_label="p2", prompt_tokens=200, completion_tokens=100, latency_ms=200),
        "r5": record(a, at(today - timedelta(days=3)), "0.125", request_id="gen-a-5", status=499,
                     model_served="claude", provider="anthropic", api_key=k2, latency_ms=400),
        "r6": record(a, at(today - timedelta(days=40)), "10", model_served="gpt-4o", provider="openai"),
        "b1": record(b, at(today, 0), "99", request_id="gen-b-1", model_served="gpt-4o", provider="openai",
                     prompt_tokens=7, latency_ms=5),
    }
    return {"today": today, "a": a, "b": b, "k1": k1, "k2": k2, "rows": rows,
            "client_a": factories.api_client(secret_a), "client_b": factories.api_client(secret_b),
            "inference_a": factories.api_client(inference_a), "inference_b": factories.api_client(inference_b)}


def rolled_up(world):
    today = world["today"]
    rollup.rollup_usage([today - timedelta(days=n) for n in range(45)])


# ---- spend ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("roll", [False, True], ids=["ledger", "rollup"])
def test_summary_of_the_last_30_days(world, roll):
    if roll:
        rolled_up(world)
    body = world["client_a"].get("/api/analytics/summary/").json()
    today = world["today"]
    assert body["start"] == (today - timedelta(days=29)).isoformat() and body["end"] == today.isoformat()
    # r1..r5: 1.5 + 0.25 + 0 + 2 + 0.125; r6 is 40 days old.
    assert body["cost"] == 3.875
    assert (body["requests"], body["errors"], body["error_rate"]) == (5, 2, 0.4)
    assert (body["prompt_tokens"], body["completion_tokens"], body["cached_tokens"], body["reasoning_tokens"],
            body["total_tokens"]) == (320, 160, 10, 5, 480)
    assert body["avg_latency_ms"] == 210.0  # (100 + 300 + 50 + 200 + 400) / 5

    wider = world["client_a"].get(f"/api/analytics/summary/?start={today - timedelta(days=40)}").json()
    assert wider["cost"] == 13.875 and wider["requests"] == 6


@pytest.mark.parametrize("roll", [False, True], ids=["ledger", "rollup"])
def test_daily_trend_is_zero_filled(world, roll):
    if roll:
        rolled_up(world)
    today = world["today"]
    body = world["client_a"].get("/api/analytics/daily/").json()
    assert len(body["results"]) == 30
    by_day = {row["day"]: row for row in body["results"]}
    assert list(by_day) == [(today - timedelta(days=29 - n)).isoformat() for n in range(30)]
    assert (by_day[today.isoformat()]["cost"], by_day[today.isoformat()]["requests"]) == (1.75, 3)
    assert by_day[today.isoformat()]["errors"] == 1
    assert by_day[(today - timedelta(days=1)).isoformat()]["cost"] == 2.0
    assert by_day[(today - timedelta(days=3)).isoformat()]["cost"] == 0.125
    assert by_day[(today - timedelta(days=2)).isoformat()] == {
        "day": (today - timedelta(days=2)).isoformat(), "cost": 0.0, "requests": 0, "errors": 0, "error_rate": 0.0,
        "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0, "total_tokens": 0,
        "avg_latency_ms": None}
    assert sum(row["cost"] for row in body["results"]) == 3.875


@pytest.mark.parametrize("roll", [False, True], ids=["ledger", "rollup"])
def test_monthly_spend(world, roll):
    if roll:
        rolled_up(world)
    today = world["today"]
    start = today - timedelta(days=40)
    body = world["client_a"].get(f"/api/analytics/monthly/?start={start}&end={today}").json()
    expected: dict[str, Decimal] = {}
    day = start
    while day <= today:
        expected.setdefault(f"{day:%Y-%m}", D(0))
        day += timedelta(days=1)
    for offset, cost in ((0, "1.75"), (1, "2.0"), (3, "0.125"), (40, "10")):
        expected[f"{today - timedelta(days=offset):%Y-%m}"] += D(cost)
    assert {row["month"]: row["cost"] for row in body["results"]} == {m: float(c) for m, c in expected.items()}

    default = world["client_a"].get("/api/analytics/monthly/").json()
    assert len(default["results"]) == 12 and default["results"][0]["month"] == default["start"][:7]
    assert default["start"].endswith("-01") and default["results"][-1]["month"] == f"{today:%Y-%m}"


@pytest.mark.parametrize("roll", [False, True], ids=["ledger", "rollup"])
@pytest.mark.parametrize(("dimension", "expected"), [
    ("provider", [("openai", 3.5, 3), ("anthropic", 0.375, 2)]),
    ("model", [("gpt-4o", 3.5, 3), ("claude", 0.375, 2)]),
    ("user", [("u1", 3.5, 2), ("u2", 0.25, 1), ("", 0.125, 2)]),
    ("project", [("p2", 2.0, 1), ("p1", 1.75, 2), ("", 0.125, 2)]),
    ("workflow", [("", 2.375, 4), ("w1", 1.5, 1)]),
])
def test_breakdowns(world, roll, dimension, expected):
    if roll:
        rolled_up(world)
    body = world["client_a"].get(f"/api/analytics/breakdown/{dimension}/").json()
    assert [(row["key"], row["cost"], row["requests"]) for row in body["results"]] == expected
    assert body["total_cost"] == 3.875 and body["groups"] == len(expected)
    assert body["results"][0]["share"] == round(expected[0][1] / 3.875, 6)


def test_breakdown_by_api_key_names_the_keys(world):
    rolled_up(world)
    body = world["client_a"].get("/api/analytics/breakdown/api_key/").json()
    k1, k2 = world["k1"], world["k2"]
    assert [(row["key"], row["name"], row["hint"], row["cost"], row["errors"]) for row in body["results"]] == [
        (k1.pk, "backend", k1.hint, 3.5, 1), (k2.pk, "frontend", k2.hint, 0.375, 1)]
    assert body["results"][0]["share"] == round(3.5 / 3.875, 6)


def test_top_models(world):
    body = world["client_a"].get("/api/analytics/top-models/?limit=1").json()
    assert [(row["key"], row["cost"]) for row in body["results"]] == [("gpt-4o", 3.5)]
    assert body["total_cost"] == 3.875
    assert len(world["client_a"].get("/api/analytics/top-models/").json()["results"]) == 2


def test_projection_of_month_end_spend():
    tenant = factories.tenant("an-proj")
    _, secret = factories.api_key(tenant, scopes=["read"])
    today = analytics.today_utc()
    first = today.replace(day=1)
    record(tenant, at(today, 0), "4")
    record(tenant, at(first, 0), "6")
    record(tenant, at(first - timedelta(days=1)), "1000")  # last month
    rollup.rollup_usage([first - timedelta(days=1), first])
    body = factories.api_client(secret).get("/api/analytics/projection/").json()
    days = calendar.monthrange(today.year, today.month)[1]
    expected = (D(10) / today.day * days).quantize(D("0.0000000001"))
    assert body == {"month": f"{today:%Y-%m}", "month_to_date": 10.0, "days_elapsed": today.day,
                    "days_in_month": days, "projected_month_end": float(expected)}
    # Decimal arithmetic, e.g. on the 3rd of a 30-day month: 10 / 3 * 30 = 100.0000000000 (not 99.99999…).
    assert analytics.spend_projection(tenant=tenant, today=first.replace(day=3))["projected_month_end"] == (
        (analytics.usage_summary(tenant=tenant, start=first, end=first.replace(day=3))["cost"] / 3
         * calendar.monthrange(first.year, first.month)[1]).quantize(D("0.0000000001")))


def test_performance_percentiles_from_the_ledger(world):
    body = world["client_a"].get("/api/analytics/performance/").json()
    # Successful latencies 100, 300, 200 → sorted 100, 200, 300: p50 = 200, p95 = 200 + 0.9 × 100, p99 = 298.
    assert (body["requests"], body["errors"], body["error_rate"]) == (5, 2, 0.4)
    assert body["latency_ms"] == {"avg": 200.0, "p50": 200.0, "p95": 290.0, "p99": 298.0}
    empty = world["client_a"].get("/api/analytics/performance/?start=2020-01-01&end=2020-01-31").json()
    assert empty == {"start": "2020-01-01", "end": "2020-01-31", "requests": 0, "errors": 0, "error_rate": 0.0,
                     "latency_ms": {"avg": None, "p50": None, "p95": None, "p99": None}}


def test_python_percentiles_match_percentile_cont():
    values = [100.0, 200.0, 300.0]
    assert [analytics.percentile(values, f) for f in (0.5, 0.95, 0.99)] == [200.0, 290.0, 298.0]
    assert analytics.percentile([7.0], 0.99) == 7.0


# ---- the roll-up ---------------------------------------------------------------------------------------------
def _ledger_by_day():
    rows = (UsageRecord.objects.filter(tenant__isnull=False).annotate(d=TruncDate("created_at", tzinfo=UTC))
            .values("tenant_id", "d").annotate(n=Count("id"), e=Count("id", filter=Q(status__gte=400)),
                                               c=Sum("cost"), p=Sum("prompt_tokens"), o=Sum("completion_tokens"),
                                               l=Sum("latency_ms")).order_by())
    return {(r["tenant_id"], r["d"]): (r["n"], r["e"], r["c"], r["p"], r["o"], r["l"]) for r in rows}


def _rollup_by_day():
    rows = (UsageDaily.objects.values("tenant_id", "day")
            .annotate(n=Sum("requests"), e=Sum("errors"), c=Sum("cost"), p=Sum("prompt_tokens"),
                      o=Sum("completion_tokens"), l=Sum("latency_ms_sum")).order_by())
    return {(r["tenant_id"], r["day"]): (r["n"], r["e"], r["c"], r["p"], r["o"], r["l"]) for r in rows}


def test_rollup_equals_the_ledger_and_is_idempotent(world):
    today = world["today"]
    UsageRecord.objects.create(request_id="orphan", created_at=at(today), tenant=None, endpoint="chat", status=200,
                               cost=D("5"))  # a deleted tenant's row: not rolled up
    rolled_up(world)
    first = sorted(UsageDaily.objects.values_list("tenant_id", "day", "provider", "model_served", "api_key_id",
                                                  "user_label", "project_label", "workflow_id", "requests", "cost"))
    assert _rollup_by_day() == _ledger_by_day()
    # r1 and r3 share no group (different labels); today of tenant A has three groups.
    assert UsageDaily.objects.filter(tenant=world["a"], day=today).count() == 3
    rolled_up(world)
    rollup.rollup_usage()  # the beat's call: yesterday and today
    again = sorted(UsageDaily.objects.values_list("tenant_id", "day", "provider", "model_served", "api_key_id",
                                                  "user_label", "project_label", "workflow_id", "requests", "cost"))
    assert again == first
    assert UsageRollupDay.objects.get(day=today).rows == UsageDaily.objects.filter(day=today).count()

    # A late row changes the day once it is rolled up again.
    record(world["a"], at(today - timedelta(days=1), 23), "0.5", model_served="gpt-4o", provider="openai")
    rollup.rollup_usage(today - timedelta(days=1))
    assert _rollup_by_day() == _ledger_by_day()
    assert _rollup_by_day()[(world["a"].id, today - timedelta(days=1))][2] == D("2.5")


def test_rollup_task_accepts_iso_days(world):
    today = world["today"]
    result = rollup.rollup_usage_task.apply(args=[(today - timedelta(days=3)).isoformat()]).get()
    assert result == {(today - timedelta(days=3)).isoformat(): 1}
    assert rollup.rollup_usage_task.name == "billing.rollup_usage"


def test_past_days_read_the_rollup_only_once_it_covered_them(world):
    today = world["today"]
    day = today - timedelta(days=3)
    rollup.rollup_usage(day)
    from_rollup, intervals = analytics.rollup_plan(day, today)
    assert from_rollup == [day]
    assert intervals == [(rollup.day_bounds(day + timedelta(days=1))[0], rollup.day_bounds(today)[1])]
    # A roll-up made before the day was over (plus the ingestion grace) is not trusted: the ledger is read.
    UsageRollupDay.objects.filter(day=day).update(rolled_at=at(day, 23))
    assert analytics.rollup_plan(day, today)[0] == []
    # …which matters: rows that arrived after that roll-up are counted.
    record(world["a"], at(day, 23), "1")
    assert analytics.usage_summary(tenant=world["a"], start=day, end=day)["cost"] == D("1.125")


# ---- the generation endpoint ---------------------------------------------------------------------------------
def test_generation_in_openrouters_shape(world):
    r1 = world["rows"]["r1"]
    for client in (world["inference_a"], world["client_a"]):
        response = client.get("/api/v1/generation?id=gen-a-1")
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert data["id"] == "gen-a-1" and data["model"] == "gpt-4o" and data["provider_name"] == "openai"
        assert data["created_at"] == r1.created_at.isoformat()
        assert (data["tokens_prompt"], data["tokens_completion"]) == (100, 50)
        assert (data["native_tokens_prompt"], data["native_tokens_completion"], data["native_tokens_reasoning"],
                data["native_tokens_cached"]) == (100, 50, 5, 10)
        assert data["total_cost"] == 1.5 and data["usage"] == 1.5
        assert (data["latency"], data["generation_time"], data["streamed"], data["cancelled"]) == (100, 60, True,
                                                                                                   False)
        assert data["status"] == 200 and data["finish_reason"] is None and data["external_user"] == "u1"
    cancelled = world["inference_a"].get("/api/v1/generation?id=gen-a-5").json()["data"]
    assert cancelled["cancelled"] is True and cancelled["finish_reason"] == "cancelled"
    assert cancelled["status"] == 499 and cancelled["total_cost"] == 0.125


def test_generation_of_another_tenant_looks_missing(world):
    foreign = world["inference_a"].get("/api/v1/generation?id=gen-b-1")
    missing = world["inference_a"].get("/api/v1/generation?id=gen-nope")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert world["inference_b"].get("/api/v1/generation?id=gen-a-1").status_code == 404
    assert world["inference_b"].get("/api/v1/generation?id=gen-b-1").json()["data"]["total_cost"] == 99.0
    assert world["inference_a"].get("/api/v1/generation?id=" + "x" * 300).status_code == 404
    assert world["inference_a"].get("/api/v1/generation").status_code == 400
    assert APIClient().get("/api/v1/generation?id=gen-a-1").status_code in (401, 403)


# ---- isolation, access and validation ------------------------------------------------------------------------
ENDPOINTS = ["/api/analytics/summary/", "/api/analytics/daily/", "/api/analytics/monthly/",
             "/api/analytics/breakdown/model/", "/api/analytics/breakdown/api_key/", "/api/analytics/top-models/",
             "/api/analytics/projection/", "/api/analytics/performance/"]


def test_every_endpoint_sees_only_the_callers_tenant(world):
    rolled_up(world)
    b = world["client_b"]
    assert b.get("/api/analytics/summary/").json()["cost"] == 99.0
    assert b.get("/api/analytics/summary/").json()["requests"] == 1
    assert sum(row["cost"] for row in b.get("/api/analytics/daily/").json()["results"]) == 99.0
    assert sum(row["cost"] for row in b.get("/api/analytics/monthly/").json()["results"]) == 99.0
    for dimension in analytics.DIMENSIONS:
        body = b.get(f"/api/analytics/breakdown/{dimension}/").json()
        assert body["total_cost"] == 99.0 and body["groups"] == 1, dimension
    assert b.get("/api/analytics/top-models/").json()["results"][0]["cost"] == 99.0
    assert b.get("/api/analytics/projection/").json()["month_to_date"] == 99.0
    assert b.get("/api/analytics/performance/").json()["latency_ms"]["p50"] == 5.0
    a_keys = {row["key"] for row in world["client_a"].get("/api/analytics/breakdown/api_key/").json()["results"]}
    assert a_keys == {world["k1"].pk, world["k2"].pk}


def test_access(world):
    for url in ENDPOINTS:
        assert APIClient().get(url).status_code in (401, 403), url
        assert world["inference_a"].get(url).status_code == 403, url  # inference keys do not read analytics
    # A member reads their tenant; naming another tenant looks like it does not exist.
    member = factories.user(tenant_obj=world["a"])
    client = APIClient()
    client.force_login(member)
    assert client.get("/api/analytics/summary/").json()["cost"] == 3.875
    assert client.get("/api/analytics/summary/?tenant=an-b").status_code == 404
    # Staff pick the tenant with ?tenant=.
    staff = factories.user(is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_login(staff)
    assert client.get("/api/analytics/summary/?tenant=an-b").json()["cost"] == 99.0
    assert client.get("/api/analytics/summary/?tenant=an-a").json()["cost"] == 3.875
    assert client.get("/api/v1/generation?id=gen-b-1&tenant=an-b").status_code == 200
    assert client.get("/api/v1/generation?id=gen-b-1&tenant=an-a").status_code == 404


@pytest.mark.parametrize("query", ["start=2026-13-01", "end=yesterday", "start=2026-1-1", "start=20260101",
                                   "start=2026-03-02&end=2026-03-01", "start=2025-01-01&end=2026-01-02",
                                   "limit=0", "limit=1001", "limit=ten"])
def test_bad_parameters_are_400(world, query):
    url = "/api/analytics/breakdown/model/" if query.startswith("limit") else "/api/analytics/summary/"
    response = world["client_a"].get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()


def test_ranges_up_to_366_days_and_unknown_breakdowns(world):
    ok = world["client_a"].get("/api/analytics/daily/?start=2024-01-01&end=2024-12-31")  # a leap year: 366 days
    assert ok.status_code == 200 and len(ok.json()["results"]) == 366
    assert world["client_a"].get("/api/analytics/breakdown/colour/").status_code == 404
    for url in ENDPOINTS[:-2]:
        assert world["client_a"].get(f"{url}?start=2026-02-30").status_code == 400, url


RANGED = [url for url in ENDPOINTS if "projection" not in url]


def schema_path(url: str) -> str:
    return url.split("?", maxsplit=1)[0].replace("/breakdown/model/", "/breakdown/{dimension}/") \
        .replace("/breakdown/api_key/", "/breakdown/{dimension}/")


@pytest.mark.parametrize("url", RANGED)
def test_range_rules_are_400s_on_the_field_and_the_schema_lists_them(world, url):
    """start after end, or longer than 366 days (either end may be the default) is a 400 naming `start`; the
    schema cannot say so, so the operation lists the rules and carries x-validated-beyond-schema."""
    client, today = world["client_a"], world["today"]
    for query in (f"start={today + timedelta(days=1)}", "start=2000-01-01",
                  "start=2024-03-02&end=2024-03-01", "start=2023-01-01&end=2024-01-02"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 400 and list(response.json()) == ["start"], (query, response.content)
    assert client.get(f"{url}?start=2023-01-02&end=2024-01-01").status_code == 200  # 365 days
    operation = client.get("/api/schema/?format=json").json()["paths"][schema_path(url)]["get"]
    assert operation["x-validated-beyond-schema"] is True
    assert "at most 366 days" in operation["description"] and "not after `end`" in operation["description"]


@pytest.mark.parametrize("url", [*ENDPOINTS, "/api/v1/generation/?id=gen-a-1"])
def test_answers_have_the_shape_the_schema_documents(world, url):
    """Every analytics answer has a documented shape (not a free-form object), and it is the answer's."""
    body = world["client_a"].get(url).json()
    schema = world["client_a"].get("/api/schema/?format=json").json()
    answer = schema["paths"][schema_path(url)]["get"]["responses"]["200"]
    component = answer["content"]["application/json"]["schema"]["$ref"]
    components = schema["components"]["schemas"]

    def properties(ref):
        return components[ref.rsplit("/", 1)[1]]["properties"]

    documented = properties(component)
    assert set(body) == set(documented), url
    for name in ("results", "data", "latency_ms"):
        if name in body and body[name]:
            inner = documented[name].get("items", documented[name])
            inner = inner.get("$ref") or inner["allOf"][0]["$ref"]
            row = body[name][0] if isinstance(body[name], list) else body[name]
            assert set(row) <= set(properties(inner)), (url, name)


# ---- the ledger admin ----------------------------------------------------------------------------------------
def test_usage_admin_is_read_only(world):
    staff = factories.user(is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_login(staff)
    listing = client.get(f"/admin/billing/usagerecord/?tenant__id__exact={world['a'].id}")
    assert listing.status_code == 200
    assert b"gen-a-1" in listing.content and b"gen-b-1" not in listing.content
    for filter_query in ("provider=openai", "status__exact=499", "model_served=claude",
                         f"api_key__id__exact={world['k1'].pk}",
                         f"created_at__year={world['today'].year}"):
        assert client.get(f"/admin/billing/usagerecord/?{filter_query}").status_code == 200, filter_query
    assert client.get("/admin/billing/usagerecord/add/").status_code == 403
    pk = world["rows"]["r1"].pk
    detail = client.get(f"/admin/billing/usagerecord/{pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert client.post(f"/admin/billing/usagerecord/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert UsageRecord.objects.filter(pk=pk).exists()
