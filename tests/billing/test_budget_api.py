"""/api/budgets/ as its users call it: the seed's setBudget fields, ours, tenant isolation, validation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from apps.billing import services
from apps.billing.models import Budget, UsageRecord
from apps.billing.periods import period_bounds
from tests import factories

pytestmark = pytest.mark.django_db
D = Decimal



@pytest.fixture
def tenant_a():
    return factories.admin_api("budget-a")


@pytest.fixture
def tenant_b():
    return factories.admin_api("budget-b")


def spend(tenant, cost, **fields):
    spend.seq = getattr(spend, "seq", 0) + 1
    UsageRecord.objects.create(request_id=f"api-{spend.seq}-{tenant.id}", created_at=timezone.now(), tenant=tenant,
                               endpoint="chat", status=200, cost=D(cost), **fields)


def test_set_budget_with_the_seed_fields(tenant_a):
    tenant, client = tenant_a
    response = client.post("/api/budgets/", {"userId": "user-123", "projectId": "project-456", "limit": 100.0,
                                             "period": "monthly", "alertThresholds": [50, 80, 95]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["budgetId"] > 0
    assert (body["userId"], body["projectId"], body["limit"], body["period"]) == ("user-123", "project-456", 100.0,
                                                                                 "monthly")
    assert body["alertThresholds"] == [50, 80, 95]
    assert (body["used"], body["remaining"], body["isExhausted"]) == (0.0, 100.0, False)
    assert body["scope"] == "user" and body["action"] == "block" and body["downgradeThreshold"] == 95.0
    assert [a["threshold"] for a in body["alerts"]] == [50.0, 80.0, 95.0]
    assert not any(a["triggered"] for a in body["alerts"])
    start, end = period_bounds("monthly")
    assert body["periodStart"].startswith(start.strftime("%Y-%m-%dT00:00:00"))
    assert body["periodEnd"].startswith(end.strftime("%Y-%m-%d"))

    # Spend in the ledger and a fired alert show up in the answer.
    spend(tenant, "60.5", user_label="user-123", project_label="project-456")
    spend(tenant, "99", user_label="user-123", project_label="elsewhere")
    services.budget_alert_record(body["budgetId"], start, 50, D("60.5"))
    got = client.get(f"/api/budgets/{body['budgetId']}/").json()
    assert (got["used"], got["remaining"], got["isExhausted"]) == (60.5, 39.5, False)
    fired = {a["threshold"]: a for a in got["alerts"]}
    assert fired[50.0]["triggered"] and fired[50.0]["triggeredAt"] and fired[50.0]["spent"] == 60.5
    assert "50% of the monthly budget reached" in fired[50.0]["message"]
    assert not fired[80.0]["triggered"] and fired[80.0]["triggeredAt"] is None

    spend(tenant, "40", user_label="user-123", project_label="project-456")
    got = client.get(f"/api/budgets/{body['budgetId']}/").json()
    assert (got["used"], got["remaining"], got["isExhausted"]) == (100.5, 0.0, True)


def test_budget_lifecycle_with_our_fields(tenant_a):
    tenant, client = tenant_a
    key, _ = factories.api_key(tenant, name="ci")
    response = client.post("/api/budgets/", {
        "apiKeyId": key.id, "model": "gpt-4o", "limit": 5.25, "period": "daily", "action": "downgrade",
        "downgradeThreshold": 90, "webhookUrl": "https://hooks.example.com/budget", "webhookSecret": "s3cret-value-99",
    }, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["scope"] == "api_key" and created["apiKeyId"] == key.id and created["model"] == "gpt-4o"
    assert created["alertThresholds"] == [50, 80, 95]  # the default
    assert "webhookSecret" not in created and "s3cret-value-99" not in response.content.decode()
    assert created["webhookSecretHint"] == "…e-99"
    budget = Budget.objects.get(pk=created["budgetId"])
    assert budget.webhook_secret() == "s3cret-value-99" and "s3cret" not in budget.encrypted_webhook_secret

    url = f"/api/budgets/{created['budgetId']}/"
    patched = client.patch(url, {"limit": 7, "alertThresholds": [90, 25.5], "enabled": False}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["limit"] == 7.0 and patched.json()["alertThresholds"] == [25.5, 90]
    assert Budget.objects.get(pk=created["budgetId"]).webhook_secret() == "s3cret-value-99"  # kept

    echoed = client.put(url, {**patched.json(), "limit": 8}, format="json")  # GET, edit, PUT back: read-only ignored
    assert echoed.status_code == 200, echoed.json()
    assert echoed.json()["limit"] == 8.0 and echoed.json()["used"] == 0.0

    listed = client.get("/api/budgets/").json()["results"]
    assert [b["budgetId"] for b in listed] == [created["budgetId"]]

    cleared = client.patch(url, {"webhookUrl": ""}, format="json")
    assert cleared.status_code == 200 and cleared.json()["webhookSecretHint"] == ""
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


def test_another_tenants_budget_is_not_found(tenant_a, tenant_b):
    a, client_a = tenant_a
    b, client_b = tenant_b
    foreign = services.budget_create(tenant=b, limit=D(1), period="total")
    url = f"/api/budgets/{foreign.id}/"
    missing = client_a.get("/api/budgets/999999/")
    assert missing.status_code == 404
    for response in (client_a.get(url), client_a.patch(url, {"limit": 1000}, format="json"), client_a.delete(url)):
        assert response.status_code == 404
        assert response.json() == missing.json()
    assert client_a.get("/api/budgets/").json()["results"] == []
    assert Budget.objects.get(pk=foreign.id).limit == D(1)
    assert client_b.get(url).status_code == 200
    # Another tenant's API key cannot be named either.
    b_key, _ = factories.api_key(b)
    response = client_a.post("/api/budgets/", {"apiKeyId": b_key.id, "limit": 1, "period": "daily"}, format="json")
    assert response.status_code == 400 and "apiKeyId" in response.json()


def test_validation_errors_name_the_fields(tenant_a):
    _, client = tenant_a
    response = client.post("/api/budgets/", {"limit": -1, "period": "yearly", "action": "explode",
                                             "alertThresholds": [0, 150, "x"], "downgradeThreshold": 120,
                                             "webhookUrl": "ftp://example.com/hook"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"limit", "period", "action", "alertThresholds", "downgradeThreshold",
                                    "webhookUrl"}
    assert client.post("/api/budgets/", {"period": "daily"}, format="json").json().keys() >= {"limit"}
    too_big = client.post("/api/budgets/", {"limit": 10_000_000, "period": "daily"}, format="json")
    assert too_big.status_code == 400 and "limit" in too_big.json()
    # snake_case by mistake would silently widen the budget to the whole tenant: refused.
    typo = client.post("/api/budgets/", {"user_id": "alice", "limit": 1, "period": "daily"}, format="json")
    assert typo.status_code == 400 and "user_id" in typo.json()
    # A webhook needs a secret (errors from the model speak the API's names too).
    no_secret = client.post("/api/budgets/", {"limit": 1, "period": "daily", "webhookUrl": "https://example.com/h"},
                            format="json")
    assert no_secret.status_code == 400 and "webhookSecret" in no_secret.json()
    assert client.post("/api/budgets/", "not json", content_type="application/json").status_code == 400
    assert Budget.objects.count() == 0


@pytest.mark.parametrize("field", ["limit", "downgradeThreshold"])
def test_money_and_percents_are_json_numbers_not_strings(tenant_a, field):
    """The schema says number; "25" is refused like 25 for a string (what a typed client sends is a number)."""
    _, client = tenant_a
    body = {"limit": 25, "period": "daily", "downgradeThreshold": 90}
    refused = client.post("/api/budgets/", {**body, field: str(body[field])}, format="json")
    assert refused.status_code == 400 and refused.json() == {field: ["Must be a number."]}
    created = client.post("/api/budgets/", {**body, "limit": 12.345678}, format="json")
    assert created.status_code == 201 and created.json()["limit"] == 12.345678  # exact: read through str()
    url = f"/api/budgets/{created.json()['budgetId']}/"
    patched = client.patch(url, {field: "30"}, format="json")
    assert patched.status_code == 400 and patched.json() == {field: ["Must be a number."]}
    assert Budget.objects.get().limit == D("12.345678")


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_alert_thresholds_bounds_hold_on_every_write_and_the_schema_states_them(tenant_a, method):
    """Percents above 0 and up to 1000 (a notify budget may overrun: 150% is meaningful), at most 20."""
    _, client = tenant_a
    body = {"limit": 10, "period": "daily", "action": "notify"}
    url = "/api/budgets/"
    if method != "post":
        url += f"{client.post(url, body, format='json').json()['budgetId']}/"
    write = getattr(client, method)
    for thresholds in ([0], [1000.01], [-5], [50.001], list(range(1, 22))):
        response = write(url, {**body, "alertThresholds": thresholds}, format="json")
        assert response.status_code == 400 and set(response.json()) == {"alertThresholds"}, thresholds
    accepted = write(url, {**body, "alertThresholds": [150, 0.01, 1000, 50]}, format="json")
    assert accepted.status_code in (200, 201) and accepted.json()["alertThresholds"] == [0.01, 50, 150, 1000]
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    for component in ("BudgetRequest", "PatchedBudgetRequest"):
        declared = schema[component]["properties"]["alertThresholds"]
        assert declared["maxItems"] == 20 and declared["items"] == {"type": "number", "minimum": 0.01,
                                                                    "maximum": 1000}


def test_private_webhook_urls_follow_the_upstream_rule(tenant_a, settings):
    _, client = tenant_a
    settings.ALLOW_PRIVATE_UPSTREAMS = False
    response = client.post("/api/budgets/", {"limit": 1, "period": "daily", "webhookUrl": "http://127.0.0.1:8080/x",
                                             "webhookSecret": "abc"}, format="json")
    assert response.status_code == 400 and "webhookUrl" in response.json()


def test_read_scope_reads_and_inference_keys_are_refused(tenant_a):
    tenant, client = tenant_a
    services.budget_create(tenant=tenant, limit=D(3), period="weekly")
    _, read_secret = factories.api_key(tenant, scopes=["read"])
    reader = factories.api_client(read_secret)
    assert reader.get("/api/budgets/").status_code == 200
    assert reader.post("/api/budgets/", {"limit": 1, "period": "daily"}, format="json").status_code == 403
    _, inference = factories.api_key(tenant)
    assert factories.api_client(inference).get("/api/budgets/").status_code == 403


def test_admin_pages_keep_the_secret_write_only(client):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("budget-admin", password="pw")
    client.force_login(admin_user)
    tenant = factories.tenant()
    response = client.post("/admin/billing/budget/add/", {
        "tenant": tenant.id, "name": "team", "user_label": "", "project_label": "web", "model": "",
        "limit": "12.5", "period": "weekly", "action": "notify", "downgrade_threshold": "95",
        "alert_thresholds": "[50, 90]", "webhook_url": "https://hooks.example.com/b", "webhook_secret": "adm-secret-77",
        "enabled": "on", "alerts-TOTAL_FORMS": "0", "alerts-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    budget = Budget.objects.get(name="team")
    assert budget.scope == "project" and budget.webhook_secret() == "adm-secret-77"
    page = client.get(f"/admin/billing/budget/{budget.id}/change/").content.decode()
    assert "adm-secret-77" not in page and budget.encrypted_webhook_secret not in page
    assert client.get("/admin/billing/budget/?scope__exact=project&period__exact=weekly").status_code == 200
    services.budget_alert_record(budget.id, period_bounds("weekly")[0], 50, D(7))
    assert client.get("/admin/billing/budgetalert/").status_code == 200
    assert client.get("/admin/billing/budgetalert/add/").status_code == 403


def test_snapshot_specs_hold_every_enabled_budget_by_tenant(tenant_a, tenant_b):
    from apps.billing.facade import budget_specs_by_tenant

    a, b = tenant_a[0], tenant_b[0]
    key, _ = factories.api_key(a)
    one = services.budget_create(tenant=a, api_key=key, model="gpt-4o", limit=D("2.5"), period="daily",
                                 action="downgrade", downgrade_threshold=D(90), alert_thresholds=[80])
    services.budget_create(tenant=a, limit=D(1), period="daily", enabled=False)
    two = services.budget_create(tenant=b, user_label="u", project_label="p", limit=D(3), period="total")
    specs = budget_specs_by_tenant()
    assert [s.id for s in specs[a.id]] == [one.id] and [s.id for s in specs[b.id]] == [two.id]
    spec = specs[a.id][0]
    assert (spec.tenant_id, spec.api_key_id, spec.model, spec.limit, spec.period, spec.action) == (
        a.id, key.id, "gpt-4o", D("2.5"), "daily", "downgrade")
    assert spec.downgrade_threshold == D(90) and spec.alert_thresholds == (80,) and spec.scope == "api_key"
    assert (specs[b.id][0].user_label, specs[b.id][0].project_label, specs[b.id][0].scope) == ("u", "p", "user")
