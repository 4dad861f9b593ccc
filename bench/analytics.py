"""`python -m bench.analytics`: cost-analytics queries over a 1,000,000-row usage ledger, against 200 ms each.

Steps: prepare the bench database (create, migrate) -> replace the previous run's analytics rows with 1,000,000
fresh ones generated inside Postgres (one INSERT … SELECT over generate_series per tenant: 90 days, 10 tenants,
half of the rows in one big tenant) -> VACUUM ANALYZE -> roll up the 91 days -> time every analytics selector
for the big tenant (median of 5, after one warm-up) and print ms per query with PASS/MISS against the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from . import database

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 200.0
PREFIX = "ban-"  # request ids of the rows this benchmark owns
TENANTS = 10
DAYS = 90


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows to generate (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (the median is reported)")
    parser.add_argument("--fresh", action="store_true", help="drop and re-create the bench database first")
    return parser.parse_args(argv)


def tenants_and_keys() -> list[tuple[int, list[int]]]:
    """The benchmark's tenants (bench-analytics-0…9), each with 20 API keys; created once, reused."""
    from apps.tenants import services
    from apps.tenants.models import ApiKey, Tenant

    out = []
    for n in range(TENANTS):
        tenant = Tenant.objects.filter(slug=f"bench-analytics-{n}").first()
        if tenant is None:
            tenant = services.tenant_create(slug=f"bench-analytics-{n}")
        keys = list(ApiKey.objects.filter(tenant=tenant).order_by("id").values_list("id", flat=True))
        for i in range(len(keys), 20):
            key, _ = services.api_key_create(tenant=tenant, name=f"key-{i}", scopes=["inference"])
            keys.append(key.pk)
        out.append((tenant.pk, keys))
    return out


# One INSERT … SELECT per tenant: every value derives from the series number, so runs are reproducible.
INSERT = """
INSERT INTO billing_usagerecord (
    request_id, created_at, tenant_id, api_key_id, user_label, project_label, workflow_id, agent_id, endpoint,
    provider, deployment, model_requested, model_served, strategy, attempts, prompt_tokens, completion_tokens,
    cached_tokens, cache_write_tokens, reasoning_tokens, cost, latency_ms, ttft_ms, status, error_type, streamed,
    usage_estimated)
SELECT %(prefix)s || %(tenant)s || '-' || g,
       %(now)s - (g::float8 / %(rows)s) * %(span)s * interval '1 second',
       %(tenant)s,
       (%(keys)s::bigint[])[1 + (g * 7) %% array_length(%(keys)s::bigint[], 1)],
       'user-' || (g * 13) %% 50, 'project-' || (g * 17) %% 10,
       CASE WHEN g %% 4 = 0 THEN 'wf-' || (g * 19) %% 5 ELSE '' END, '', 'chat',
       (ARRAY['openai', 'anthropic', 'gemini', 'azure'])[1 + g %% 4], '',
       'auto', (ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'claude-haiku', 'gemini-pro', 'gemini-flash',
                      'gpt-4.1', 'o3-mini'])[1 + (g * 3) %% 8],
       'cost-optimal', 1,
       100 + (g * 31) %% 2000, 20 + (g * 37) %% 800, (g * 11) %% 300, 0, (g * 5) %% 50,
       ((100 + (g * 31) %% 2000) * 0.0000025 + (20 + (g * 37) %% 800) * 0.00001)::numeric(18, 10),
       50 + ((g * 7919) %% 1000) * 1.7 + CASE WHEN g %% 97 = 0 THEN 5000 ELSE 0 END,
       20 + ((g * 7919) %% 300) * 0.5,
       CASE WHEN g %% 61 = 0 THEN 502 WHEN g %% 89 = 0 THEN 499 WHEN g %% 113 = 0 THEN 429 ELSE 200 END,
       '', g %% 2 = 0, false
FROM generate_series(1::bigint, %(rows)s::bigint) AS g
"""


def generate(rows: int) -> float:
    """Replace the benchmark's ledger rows; returns seconds taken."""
    from django.db import connection, transaction
    from django.utils import timezone

    started = time.perf_counter()
    plan = tenants_and_keys()
    # Half of the rows in the first tenant, the rest spread over the other nine.
    counts = [rows // 2] + [rows // 2 // (TENANTS - 1)] * (TENANTS - 1)
    counts[-1] += rows - sum(counts)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_usagerecord WHERE request_id LIKE %s", [PREFIX + "%"])
        cursor.execute("DELETE FROM billing_usagedaily WHERE tenant_id = ANY(%s)", [[t for t, _ in plan]])
        for (tenant_id, keys), count in zip(plan, counts, strict=True):
            cursor.execute(INSERT, {"prefix": PREFIX, "tenant": tenant_id, "keys": keys, "rows": count,
                                    "now": now, "span": DAYS * 86400})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billing_usagerecord")  # the deleted rows of the last run too
    return time.perf_counter() - started


def time_ms(fn, repeat: int) -> float:
    fn()  # warm-up: plans and caches, as on a live server
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as log_dir:
        database.setup_django(ROOT, Path(log_dir), fresh=args.fresh)

    from django.db import connection

    from apps.billing import analytics, rollup
    from apps.tenants.models import Tenant

    seconds = generate(args.rows)
    print(f"generated {args.rows:,} ledger rows in {seconds:.1f} s")
    today = analytics.today_utc()
    started = time.perf_counter()
    rollup.rollup_usage([today - timedelta(days=n) for n in range(DAYS + 1)])
    rolled = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billing_usagedaily")
    print(f"rolled up {DAYS + 1} days in {rolled:.1f} s ({rolled / (DAYS + 1) * 1000:.0f} ms per day)")

    tenant = Tenant.objects.get(slug="bench-analytics-0")
    last30 = (today - timedelta(days=29), today)
    last90 = (today - timedelta(days=DAYS), today)
    year = (today - timedelta(days=365), today)
    queries = {
        "summary, 30 days": lambda: analytics.usage_summary(tenant=tenant, start=last30[0], end=last30[1]),
        "summary, 366 days": lambda: analytics.usage_summary(tenant=tenant, start=year[0], end=year[1]),
        "daily trend, 30 days": lambda: analytics.usage_daily(tenant=tenant, start=last30[0], end=last30[1]),
        "daily trend, 366 days": lambda: analytics.usage_daily(tenant=tenant, start=year[0], end=year[1]),
        "monthly, 366 days": lambda: analytics.usage_monthly(tenant=tenant, start=year[0], end=year[1]),
        **{f"breakdown {d}, 30 days": (lambda d=d: analytics.usage_breakdown(
            tenant=tenant, start=last30[0], end=last30[1], dimension=d)) for d in analytics.DIMENSIONS},
        "breakdown user, 366 days": lambda: analytics.usage_breakdown(tenant=tenant, start=year[0], end=year[1],
                                                                      dimension="user"),
        "top models, 30 days": lambda: analytics.usage_breakdown(tenant=tenant, start=last30[0], end=last30[1],
                                                                 dimension="model", limit=10),
        "projection (month to date)": lambda: analytics.spend_projection(tenant=tenant),
        "performance p50/p95/p99, 1 day": lambda: analytics.usage_performance(tenant=tenant, start=today,
                                                                              end=today),
        "performance p50/p95/p99, 7 days": lambda: analytics.usage_performance(
            tenant=tenant, start=today - timedelta(days=6), end=today),
        "performance p50/p95/p99, 30 days": lambda: analytics.usage_performance(tenant=tenant, start=last30[0],
                                                                                end=last30[1]),
        "performance p50/p95/p99, 90 days": lambda: analytics.usage_performance(tenant=tenant, start=last90[0],
                                                                                end=last90[1]),
        "generation by id": lambda: analytics.generation_get(tenant=tenant, request_id=f"{PREFIX}{tenant.pk}-4242"),
    }
    rows_30 = analytics.usage_summary(tenant=tenant, start=last30[0], end=last30[1])["requests"]
    print(f"\nbig tenant: {rows_30:,} requests in the last 30 days; median of {args.repeat} runs, target "
          f"{TARGET_MS:.0f} ms\n")
    width = max(map(len, queries))
    misses = 0
    for name, fn in queries.items():
        ms = time_ms(fn, args.repeat)
        verdict = "PASS" if ms <= TARGET_MS else "MISS"
        misses += verdict == "MISS"
        print(f"  {name:<{width}}  {ms:9.1f} ms  {verdict}")
    print(f"\n{len(queries) - misses}/{len(queries)} queries within {TARGET_MS:.0f} ms")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
