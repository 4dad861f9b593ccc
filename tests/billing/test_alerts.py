"""Budget alerts: recorded once per threshold per period, and POSTed (HMAC-signed) to a real local server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.billing import services
from apps.billing.budget_spec import spec_from_budget
from apps.billing.budget_store_memory import LocalBudget
from apps.billing.models import BudgetAlert
from apps.billing.periods import period_bounds
from apps.billing.tasks import budget_alert_webhook
from tests import factories

from .webhook_server import WebhookReceiver

pytestmark = pytest.mark.django_db
D = Decimal
SECRET = "whsec-budget-signing-secret-0042"


def budget_with_webhook(url: str, **fields):
    fields = {"limit": D(10), "period": "monthly", "action": "notify", "alert_thresholds": [50, 80, 95], **fields}
    return services.budget_create(tenant=factories.tenant(), webhook_url=url, webhook_secret=SECRET, **fields)


def verify(received: dict) -> dict:
    expected = "sha256=" + hmac.new(SECRET.encode(), received["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received["headers"]["x-cb-signature"], expected)
    assert received["headers"]["content-type"] == "application/json"
    return json.loads(received["body"])


def test_settling_past_thresholds_records_each_alert_once_and_posts_signed_webhooks(
        django_capture_on_commit_callbacks):
    with WebhookReceiver() as receiver:
        budget = budget_with_webhook(receiver.url)
        spec = spec_from_budget(budget)

        async def spend(costs):
            engine = LocalBudget(load_used=lambda s, p: asyncio.sleep(0, D(0)))
            due = []
            for i, cost in enumerate(costs):
                reservation = await engine.reserve([spec], amount=D(cost), request_id=f"r{i}")
                due += (await engine.settle(reservation, actual=D(cost))).alerts
            return due

        due = asyncio.run(spend(["4", "1.5", "3", "0.1"]))
        assert [(a.threshold, a.spent) for a in due] == [(50, D("5.5")), (80, D("8.5"))]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            recorded = services.budget_alerts_record(due)
            again = services.budget_alerts_record(due)  # another process reporting the same crossings
        assert len(recorded) == 2 and again == []
        assert len(callbacks) == 2  # one webhook task per alert, enqueued on commit
        assert BudgetAlert.objects.filter(budget=budget).count() == 2
        start, _ = period_bounds("monthly", datetime.now(UTC))
        first = BudgetAlert.objects.get(budget=budget, threshold=50)
        assert first.period_start == start and first.spent == D("5.5") and first.limit == D(10)
        assert first.webhook_status == "pending"

        # Run the task as a worker would (eagerly, in this process).
        assert budget_alert_webhook.apply(args=[first.id]).get() == "delivered"
        assert len(receiver.received) == 1
        payload = verify(receiver.received[0])
        assert payload == {"alertId": first.id, "budgetId": budget.id, "threshold": 50.0, "spent": 5.5,
                           "limit": 10.0, "period": "monthly",
                           "periodStart": start.isoformat().replace("+00:00", "Z")}
        assert receiver.received[0]["path"] == "/hooks/budget/"  # the trailing slash is kept
        assert receiver.received[0]["headers"]["x-cb-delivery"] == str(first.id)
        first.refresh_from_db()
        assert (first.webhook_status, first.webhook_attempts) == ("delivered", 1)
        assert first.webhook_delivered_at is not None

        # Idempotent: a duplicate task (redelivered message) does not send again.
        assert budget_alert_webhook.apply(args=[first.id]).get() == "delivered"
        assert len(receiver.received) == 1


def test_webhook_failures_are_retried_with_backoff_until_delivered():
    with WebhookReceiver(statuses=[500, 503]) as receiver:
        budget = budget_with_webhook(receiver.url)
        alert = services.budget_alert_record(budget.id, period_bounds("monthly")[0], 80, D("8.01"))
        result = budget_alert_webhook.apply(args=[alert.id])  # eager: retries run at once
        assert result.get() == "delivered"
    assert len(receiver.received) == 3
    assert len({r["body"] for r in receiver.received}) == 1  # the same signed body each time
    verify(receiver.received[-1])
    alert.refresh_from_db()
    assert (alert.webhook_status, alert.webhook_attempts, alert.webhook_error) == ("delivered", 3, "")


def test_webhook_that_never_answers_ends_failed_with_the_reason(settings):
    budget = budget_with_webhook("http://127.0.0.1:9/unreachable")
    alert = services.budget_alert_record(budget.id, period_bounds("monthly")[0], 50, D(5))
    budget_alert_webhook.max_retries, saved = 2, budget_alert_webhook.max_retries
    try:
        result = budget_alert_webhook.apply(args=[alert.id])
    finally:
        budget_alert_webhook.max_retries = saved
    assert result.failed()
    alert.refresh_from_db()
    assert alert.webhook_status == "failed" and alert.webhook_attempts == 3
    assert "URLError" in alert.webhook_error or "Connection" in alert.webhook_error


def test_alert_without_webhook_is_recorded_and_logged(caplog):
    budget = services.budget_create(tenant=factories.tenant(), user_label="alice", limit=D(100), period="daily")
    start = period_bounds("daily")[0]
    alert = services.budget_alert_record(budget.id, start, 95, D("95.5"))
    assert alert.webhook_status == "none"
    assert services.budget_alert_record(budget.id, start, 95, D(99)) is None
    assert services.budget_alert_record(budget.id + 1000, start, 95, D(99)) is None  # deleted budget
    assert "reached 95%" in caplog.text and "user 'alice'" in caplog.text
    assert budget_alert_webhook.apply(args=[alert.id]).get() == "none"
    # A new period fires again.
    later = services.budget_alert_record(budget.id, period_bounds("daily", start.replace(day=1, month=1,
                                                                                         year=2099))[0], 95, D(96))
    assert later is not None
