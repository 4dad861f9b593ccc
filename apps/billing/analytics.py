"""Tenant-scoped cost and usage analytics.

Whole past days come from the daily roll-up (`UsageDaily`) when it was rebuilt after the day ended; today and any
day the roll-up has not (completely) covered come from the ledger itself, so a missed roll-up never under-counts.
Latency percentiles always come from the ledger (sums of latencies cannot give percentiles). Days are UTC.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.tenants.models import ApiKey

from .models import UsageDaily, UsageRecord, UsageRollupDay
from .rollup import INGEST_GRACE, day_bounds

ZERO = Decimal(0)
MONEY_PLACES = Decimal("0.0000000001")  # the ledger's precision

# API name of a breakdown → the column in both the ledger and the roll-up.
DIMENSIONS = {"provider": "provider", "model": "model_served", "api_key": "api_key_id", "user": "user_label",
              "project": "project_label", "workflow": "workflow_id"}
# What analytics may be narrowed by (the seeds' userId / projectId), as columns of both the ledger and roll-up.
NARROWINGS = {"user": "user_label", "project": "project_label"}
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
PERCENTILES = (0.5, 0.95, 0.99)
PERCENTILE_WORK_MEM = "64MB"


def today_utc() -> date:
    return timezone.now().astimezone(UTC).date()


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def rollup_plan(start: date, end: date) -> tuple[list[date], list[tuple[datetime, datetime]]]:
    """(days read from the roll-up, [start, end) intervals read from the ledger) covering start..end."""
    today = today_utc()
    rolled = {}
    if start < today:
        rolled = dict(UsageRollupDay.objects.filter(day__gte=start, day__lte=min(end, today - timedelta(days=1)))
                      .values_list("day", "rolled_at"))
    from_rollup, intervals = [], []
    for day in _days(start, end):
        day_start, day_end = day_bounds(day)
        rolled_at = rolled.get(day)
        if rolled_at is not None and rolled_at >= day_end + INGEST_GRACE:
            from_rollup.append(day)
        elif intervals and intervals[-1][1] == day_start:
            intervals[-1] = (intervals[-1][0], day_end)
        else:
            intervals.append((day_start, day_end))
    return from_rollup, intervals


def _empty() -> dict:
    return {"requests": 0, "errors": 0, **{name: 0 for name in TOKEN_FIELDS}, "cost": ZERO, "latency_ms_sum": 0.0}


def _add(into: dict, row: dict) -> None:
    into["requests"] += row["n_requests"] or 0
    into["errors"] += row["n_errors"] or 0
    for name in TOKEN_FIELDS:
        into[name] += row[f"s_{name}"] or 0
    into["cost"] += row["s_cost"] if row["s_cost"] is not None else ZERO
    into["latency_ms_sum"] += row["s_latency"] or 0.0


def _grouped(tenant, start: date, end: date, keys: tuple[str, ...] = (), narrow: dict | None = None
             ) -> dict[tuple, dict]:
    """Sums per group of `keys` (ledger column names, or "day") over the days start..end inclusive; `narrow`
    ({column: value} of NARROWINGS) keeps only those rows."""
    narrow = {column: value for column, value in (narrow or {}).items() if value is not None}
    from_rollup, intervals = rollup_plan(start, end)
    out: dict[tuple, dict] = {}

    def collect(queryset, sums):
        rows = queryset.order_by().values(*keys).annotate(**sums) if keys else [queryset.aggregate(**sums)]
        for row in rows:
            if not keys and not row["n_requests"]:
                continue
            _add(out.setdefault(tuple(row[k] for k in keys), _empty()), row)

    if from_rollup:
        daily = UsageDaily.objects.filter(tenant=tenant, **narrow)
        if len(from_rollup) == (from_rollup[-1] - from_rollup[0]).days + 1:
            daily = daily.filter(day__gte=from_rollup[0], day__lte=from_rollup[-1])
        else:
            daily = daily.filter(day__in=from_rollup)
        collect(daily, {"n_requests": Sum("requests"), "n_errors": Sum("errors"),
                        **{f"s_{name}": Sum(name) for name in TOKEN_FIELDS},
                        "s_cost": Sum("cost"), "s_latency": Sum("latency_ms_sum")})
    if intervals:
        window = Q()
        for low, high in intervals:
            window |= Q(created_at__gte=low, created_at__lt=high)
        ledger = UsageRecord.objects.filter(window, tenant=tenant, **narrow)
        if "day" in keys:
            ledger = ledger.annotate(day=TruncDate("created_at", tzinfo=UTC))
        collect(ledger, {"n_requests": Count("id"), "n_errors": Count("id", filter=Q(status__gte=400)),
                         **{f"s_{name}": Sum(name) for name in TOKEN_FIELDS},
                         "s_cost": Sum("cost"), "s_latency": Sum("latency_ms")})
    return out


def _figures(sums: dict) -> dict:
    requests = sums["requests"]
    tokens = sums["prompt_tokens"] + sums["completion_tokens"]
    return {
        "cost": sums["cost"].quantize(MONEY_PLACES),
        "requests": requests,
        "errors": sums["errors"],
        "error_rate": round(sums["errors"] / requests, 6) if requests else 0.0,
        **{name: sums[name] for name in TOKEN_FIELDS},
        "total_tokens": tokens,
        "avg_latency_ms": round(sums["latency_ms_sum"] / requests, 3) if requests else None,
    }


# ---- selectors -----------------------------------------------------------------------------------------------
def usage_summary(*, tenant, start: date, end: date, narrow: dict | None = None) -> dict:
    """Spend, requests, tokens and error rate over start..end (inclusive UTC days)."""
    return _figures(_grouped(tenant, start, end, narrow=narrow).get((), _empty()))


def usage_daily(*, tenant, start: date, end: date, narrow: dict | None = None) -> list[dict]:
    """One entry per day of start..end, zero-filled: the spend trend."""
    grouped = _grouped(tenant, start, end, ("day",), narrow=narrow)
    return [{"day": day, **_figures(grouped.get((day,), _empty()))} for day in _days(start, end)]


def usage_monthly(*, tenant, start: date, end: date) -> list[dict]:
    """One entry per calendar month touching start..end (only the days inside the range count)."""
    months: dict[str, dict] = {}
    for day in _days(start, end):
        months.setdefault(f"{day:%Y-%m}", _empty())
    for (day,), sums in _grouped(tenant, start, end, ("day",)).items():
        target = months[f"{day:%Y-%m}"]
        for name, value in sums.items():
            target[name] += value
    return [{"month": month, **_figures(sums)} for month, sums in months.items()]


def usage_breakdown(*, tenant, start: date, end: date, dimension: str, limit: int = 100,
                    narrow: dict | None = None) -> dict:
    """Groups of one dimension (see DIMENSIONS), most expensive first, with their share of the spend."""
    column = DIMENSIONS[dimension]
    grouped = _grouped(tenant, start, end, (column,), narrow=narrow)
    total = sum((sums["cost"] for sums in grouped.values()), ZERO)
    rows = sorted(grouped.items(), key=lambda item: (-item[1]["cost"], -item[1]["requests"], str(item[0][0])))
    names = {}
    if dimension == "api_key":
        ids = [key for (key,), _ in rows[:limit] if key is not None]
        names = {key.pk: key for key in ApiKey.objects.filter(tenant=tenant, pk__in=ids).only("id", "name", "hint")}
    out = []
    for (key,), sums in rows[:limit]:
        entry = {"key": key, **_figures(sums),
                 "share": round(float(sums["cost"] / total), 6) if total else 0.0}
        if dimension == "api_key":
            api_key = names.get(key)
            entry["name"] = api_key.name if api_key else None
            entry["hint"] = api_key.hint if api_key else None
        out.append(entry)
    return {"dimension": dimension, "total_cost": total.quantize(MONEY_PLACES), "groups": len(grouped),
            "results": out}


def spend_projection(*, tenant, today: date | None = None, narrow: dict | None = None) -> dict:
    """Month-end spend if the month goes on as it went so far: spent ÷ days elapsed (today included) × days."""
    today = today or today_utc()
    month_start = today.replace(day=1)
    spent = usage_summary(tenant=tenant, start=month_start, end=today, narrow=narrow)["cost"]
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    elapsed = today.day
    projected = (spent / elapsed * days_in_month).quantize(MONEY_PLACES)
    return {"month": f"{today:%Y-%m}", "month_to_date": spent, "days_elapsed": elapsed,
            "days_in_month": days_in_month, "projected_month_end": projected}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks: what Postgres' percentile_cont computes."""
    position = fraction * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def usage_performance(*, tenant, start: date, end: date) -> dict:
    """Requests, errors, error rate and latency percentiles of successful requests, from the ledger."""
    low, high = day_bounds(start)[0], day_bounds(end)[1]
    if connection.vendor == "postgresql":
        table = UsageRecord._meta.db_table  # the names come from the model; every value is bound
        with transaction.atomic(), connection.cursor() as cursor:
            # percentile_cont sorts the range's latencies; let a few hundred thousand sort in memory, not on disk.
            cursor.execute(f"SET LOCAL work_mem = '{PERCENTILE_WORK_MEM}'")
            cursor.execute(
                f"SELECT COUNT(*), COUNT(*) FILTER (WHERE status >= 400), "  # noqa: S608
                f"AVG(latency_ms) FILTER (WHERE status < 400), "
                f"percentile_cont(ARRAY[{', '.join(map(str, PERCENTILES))}]) WITHIN GROUP (ORDER BY latency_ms) "
                f"FILTER (WHERE status < 400) "
                f"FROM {table} WHERE tenant_id = %s AND created_at >= %s AND created_at < %s",
                [tenant.pk, low, high])
            requests, errors, average, percentiles = cursor.fetchone()
    else:  # SQLite (the embedded default): the same figures in Python
        rows = UsageRecord.objects.filter(tenant=tenant, created_at__gte=low, created_at__lt=high)
        requests = rows.count()
        errors = rows.filter(status__gte=400).count()
        latencies = sorted(rows.filter(status__lt=400).values_list("latency_ms", flat=True))
        average = sum(latencies) / len(latencies) if latencies else None
        percentiles = [percentile(latencies, f) for f in PERCENTILES] if latencies else None
    named = dict(zip(("p50", "p95", "p99"), percentiles or (None, None, None), strict=True))
    return {"requests": requests, "errors": errors,
            "error_rate": round(errors / requests, 6) if requests else 0.0,
            "latency_ms": {"avg": round(average, 3) if average is not None else None,
                           **{name: round(value, 3) if value is not None else None for name, value in named.items()}}}


def generation_get(*, tenant, request_id: str) -> UsageRecord | None:
    """The tenant's own ledger record for a request id; None for missing and foreign alike."""
    if not request_id:
        return None
    return UsageRecord.objects.filter(tenant=tenant, request_id=request_id).first()


def cost_analytics(*, tenant, start: date, end: date, user: str | None = None, project: str | None = None,
                   breakdown_limit: int = 100) -> dict:
    """The GraphQL `costAnalytics` figures over start..end, optionally for one user and/or project label:
    totals, today's and this month's spend, the month-end projection, the spend per provider and per model, and
    the daily trend. Money as Decimal."""
    narrow = {NARROWINGS["user"]: user, NARROWINGS["project"]: project}
    today = today_utc()
    summary = usage_summary(tenant=tenant, start=start, end=end, narrow=narrow)
    daily = usage_daily(tenant=tenant, start=start, end=end, narrow=narrow)
    by_day = {row["day"]: row for row in daily}
    today_cost = by_day[today]["cost"] if today in by_day else usage_summary(
        tenant=tenant, start=today, end=today, narrow=narrow)["cost"]
    projection = spend_projection(tenant=tenant, today=today, narrow=narrow)
    breakdowns = {dimension: usage_breakdown(tenant=tenant, start=start, end=end, dimension=dimension,
                                             limit=breakdown_limit, narrow=narrow)["results"]
                  for dimension in ("provider", "model")}
    return {"period_start": start, "period_end": end, "summary": summary, "daily": daily,
            "today": today_cost, "month_to_date": projection["month_to_date"],
            "projected_month_end": projection["projected_month_end"], **breakdowns}


def recent_traffic(*, tenant, seconds: int) -> dict:
    """The tenant's requests of the last `seconds` from the ledger: count, per second, errors, error rate and
    average latency (the ledger trails live traffic by the ingestion delay, about a second)."""
    since = timezone.now() - timedelta(seconds=seconds)
    row = UsageRecord.objects.filter(tenant=tenant, created_at__gte=since).aggregate(
        requests=Count("id"), errors=Count("id", filter=Q(status__gte=400)), latency=Avg("latency_ms"),
        cost=Sum("cost"))
    requests = row["requests"] or 0
    return {"requests": requests, "requests_per_second": round(requests / seconds, 6), "errors": row["errors"] or 0,
            "error_rate": round((row["errors"] or 0) / requests, 6) if requests else 0.0,
            "average_latency_ms": round(row["latency"], 3) if row["latency"] is not None else None,
            "cost": row["cost"] if row["cost"] is not None else ZERO}
