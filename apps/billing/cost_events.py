"""Spend and budget-alert notifications for real-time subscribers (GraphQL `costUpdates`).

Billing sits below the surfaces and must not import them: the real-time app registers a publisher (from its
AppConfig.ready); with none registered nothing is built. Events are handed over after the transaction that
recorded them commits; a publisher's failure is logged and never undoes or blocks billing.

Event (a dict): `tenant_id`, `event_type` (`cost_incurred`, `budget_warning` — a threshold under 100 % —,
`budget_exhausted`), `user_id`, `project_id`, `request_id`, `model`, `cost`, `budget_id`, `threshold`,
`spent`, `limit` (money as decimal strings), `timestamp` (ISO 8601)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import transaction

log = logging.getLogger(__name__)

_publishers: list[Callable[[list[dict]], None]] = []


def register_cost_publisher(publisher: Callable[[list[dict]], None]) -> None:
    if publisher not in _publishers:
        _publishers.append(publisher)


def wanted() -> bool:
    return bool(_publishers)


def publish(events: list[dict]) -> None:
    """Hand `events` to every publisher now (after the commit that recorded them); never raises."""
    for publisher in list(_publishers):
        try:
            publisher(events)
        except Exception:
            log.exception("cost event publisher %r failed", publisher)


def publish_on_commit(events: list[dict]) -> None:
    if events and _publishers:
        transaction.on_commit(lambda: publish(events))


def usage_events(records) -> list[dict]:
    """`cost_incurred` for ledger rows just written (UsageRecord objects)."""
    return [{"tenant_id": r.tenant_id, "event_type": "cost_incurred", "user_id": r.user_label or None,
             "project_id": r.project_label or None, "request_id": r.request_id, "model": r.model_served or None,
             "cost": str(r.cost), "budget_id": None, "threshold": None, "spent": None, "limit": None,
             "timestamp": r.created_at.isoformat()} for r in records if r.tenant_id is not None]


def alert_event(alert, budget) -> dict:
    exhausted = alert.threshold >= 100
    return {"tenant_id": budget.tenant_id, "event_type": "budget_exhausted" if exhausted else "budget_warning",
            "user_id": budget.user_label or None, "project_id": budget.project_label or None, "request_id": None,
            "model": budget.model or None, "cost": None, "budget_id": budget.id, "threshold": float(alert.threshold),
            "spent": str(alert.spent), "limit": str(alert.limit), "timestamp": datetime.now(UTC).isoformat()}
