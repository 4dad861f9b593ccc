"""Billing test data: budgets, usage rows and cost rules (tenants, keys and providers: tests/factories.py)."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

from django.utils import timezone

from apps.billing import services
from apps.billing.models import Budget, CostRule, UsageRecord

_ids = itertools.count(1)


def budget(tenant, **fields) -> Budget:
    """Through the service, as the API creates them (validation, secret handling)."""
    fields = {"limit": Decimal(10), "period": "monthly", "action": "block", **fields}
    return services.budget_create(tenant=tenant, **fields)


def usage_record(tenant, *, cost="0", created_at=None, request_id=None, status=200, **fields) -> UsageRecord:
    """A ledger row as the ingester writes it."""
    return UsageRecord.objects.create(
        request_id=request_id or f"req-{next(_ids)}-{time.monotonic_ns()}",
        created_at=created_at or timezone.now(), tenant=tenant, endpoint=fields.pop("endpoint", "chat"),
        status=status, cost=Decimal(cost), **fields)


def cost_rule(tenant=None, **fields) -> CostRule:
    """A cost rule, validated as the admin and the API validate it. `tenant` None: a global rule."""
    fields.setdefault("name", "r")
    created = CostRule(tenant=tenant, **fields)
    created.full_clean()
    created.save()
    return created
