"""The daily usage roll-up: the ledger summed per UTC day into `UsageDaily`, so analytics over months stay fast.

`rollup_usage` recomputes whole days (delete + one INSERT … SELECT, in one transaction per day), so running it
twice, or concurrently, gives the same rows. The beat runs it for today and yesterday; past days can be
recomputed on demand (`rollup_usage(day=date(2026, 1, 31))`), e.g. after a late backfill of the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from celery import shared_task
from django.db import connection, transaction
from django.utils import timezone

from .models import UsageDaily, UsageRecord, UsageRollupDay

logger = logging.getLogger(__name__)

# Records reach the ledger through the ingestion stream, a second or so after the request; a roll-up made
# less than this long after a day ended is not trusted to be complete for that day.
INGEST_GRACE = timedelta(minutes=5)

ROLLUP_LOCK = 0x0CB0_0000_0000  # + the day's ordinal: the advisory lock that serialises roll-ups of one day

DIMENSIONS = ("provider", "model_served", "api_key_id", "user_label", "project_label", "workflow_id")
SUMS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _insert_sql() -> str:
    daily, ledger = UsageDaily._meta.db_table, UsageRecord._meta.db_table
    dims = ", ".join(DIMENSIONS)
    sums = ", ".join(f"SUM({name})" for name in SUMS)
    # Names come from the models and the constants above; every value is bound.
    return (
        f"INSERT INTO {daily} (tenant_id, day, {dims}, requests, errors, {', '.join(SUMS)}, cost, latency_ms_sum) "  # noqa: S608, E501
        f"SELECT tenant_id, %s, {dims}, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), {sums}, "
        f"SUM(cost), SUM(latency_ms) FROM {ledger} "
        f"WHERE tenant_id IS NOT NULL AND created_at >= %s AND created_at < %s "
        f"GROUP BY tenant_id, {dims}"
    )


def rollup_day(day: date) -> int:
    """Recompute one day's roll-up rows from the ledger; returns how many rows it holds now."""
    start, end = day_bounds(day)
    rolled_at = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Two roll-ups of the same day must not both delete-then-insert (doubling the day): serialise them.
                cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [ROLLUP_LOCK + day.toordinal()])
            UsageDaily.objects.filter(day=day).delete()
            cursor.execute(_insert_sql(), [day, start, end])
            rows = max(cursor.rowcount, 0)
        UsageRollupDay.objects.update_or_create(day=day, defaults={"rolled_at": rolled_at, "rows": rows})
    return rows


def rollup_usage(day: date | str | Iterable[date | str] | None = None) -> dict[str, int]:
    """Recompute the given day(s) (ISO strings accepted); by default yesterday and today (UTC)."""
    if day is None:
        today = timezone.now().astimezone(UTC).date()
        days = [today - timedelta(days=1), today]
    elif isinstance(day, (date, str)):
        days = [day]
    else:
        days = list(day)
    done = {}
    for item in days:
        parsed = date.fromisoformat(item) if isinstance(item, str) else item
        done[parsed.isoformat()] = rollup_day(parsed)
    logger.info("usage roll-up: %s", done)
    return done


@shared_task(name="billing.rollup_usage", bind=True, autoretry_for=(Exception,), retry_backoff=10,
             retry_backoff_max=600, retry_jitter=True, max_retries=5, acks_late=True)
def rollup_usage_task(self, day: str | list[str] | None = None) -> dict[str, int]:
    """Beat: every few minutes with no argument. Idempotent: a retry or a duplicate recomputes the same rows."""
    return rollup_usage(day)
