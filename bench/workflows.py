"""`python -m bench.workflows`: firings per second through the service layer on Postgres, against a bare
UPDATE … RETURNING loop on the token table, and the analysis time of a 50-place net.

Steps: prepare the bench database (create, migrate) -> save a 10-step sequential workflow for the bench tenant
-> create the instances (each with one token) -> T threads fire every instance's ten transitions by token id
through `transition_fire` (each firing its own transaction with the instance row locked) -> the baseline: the
same threads run one-statement `UPDATE workflows_token … RETURNING` transactions on the same rows -> analyse a
50-place net (median of 5) -> print the table with PASS/MISS against the targets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import database

ROOT = Path(__file__).resolve().parent.parent
TENANT = "bench-workflows"
TARGET_FIRINGS = 1000.0  # per second
TARGET_ANALYSIS_MS = 100.0  # "well under a second"
STEPS = 10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400, help="instances (each fires 10 times; default 400)")
    parser.add_argument("--threads", type=int, default=8, help="firing threads (default 8)")
    parser.add_argument("--fresh", action="store_true", help="drop and re-create the bench database first")
    return parser.parse_args(argv)


def chain(places: int) -> dict:
    ids = [f"s{i}" for i in range(places)]
    return {"id": f"bench_chain_{places}", "places": ids, "initial_place": ids[0], "final_places": [ids[-1]],
            "transitions": [{"id": f"t{i}", "from_places": [ids[i]], "to_place": ids[i + 1]}
                            for i in range(places - 1)]}


def prepare(instances: int):
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant
    from apps.workflows import services
    from apps.workflows.models import Token

    Tenant.objects.filter(slug=TENANT).delete()
    tenant = tenant_services.tenant_create(slug=TENANT)
    services.workflow_save(tenant, definition=chain(STEPS + 1))
    tokens = []
    for _ in range(instances):
        instance = services.instance_create(tenant, workflow_id=f"bench_chain_{STEPS + 1}")
        tokens.append(str(Token.objects.get(instance=instance).pk))
    return tenant, tokens


def run_threads(work, chunks) -> float:
    from django.db import connections

    errors: list[BaseException] = []

    def run(chunk):
        try:
            work(chunk)
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def firings(tenant, tokens, threads: int) -> float:
    from apps.workflows.services import transition_fire

    def work(chunk):
        for step in range(STEPS):
            for token in chunk:
                transition_fire(tenant, token_id=token, transition_id=f"t{step}")

    chunks = [tokens[i::threads] for i in range(threads)]
    return len(tokens) * STEPS / run_threads(work, chunks)


def baseline(tokens, threads: int) -> float:
    from django.db import connection, transaction

    def work(chunk):
        for step in range(STEPS):
            for token in chunk:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("UPDATE workflows_token SET place = %s, updated_at = now() WHERE id = %s "
                                   "RETURNING id", [f"b{step}", token])
                    cursor.fetchone()

    chunks = [tokens[i::threads] for i in range(threads)]
    return len(tokens) * STEPS / run_threads(work, chunks)


def analysis_ms() -> tuple[float, int]:
    from apps.workflows.engine import analyse, parse_definition

    net = parse_definition(chain(50), problems=[])
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        result = analyse(net)
        runs.append((time.perf_counter() - started) * 1000)
    assert result.sound
    return statistics.median(runs), result.explored


def main(argv=None) -> int:
    args = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-workflows-"))
    database.setup_django(ROOT, log_dir, fresh=args.fresh)
    tenant, tokens = prepare(args.instances)
    rate = firings(tenant, tokens, args.threads)
    base = baseline(tokens, args.threads)
    ms, explored = analysis_ms()
    print(f"workflows bench: {args.instances} instances x {STEPS} firings, {args.threads} threads, "
          f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'case':<44} {'result':>14} {'target':>12}  verdict")
    print(f"{'firings/s (transition_fire, Postgres)':<44} {rate:>14,.0f} {'>= 1,000':>12}  "
          f"{'PASS' if rate >= TARGET_FIRINGS else 'MISS'}")
    print(f"{'baseline: UPDATE … RETURNING txns/s':<44} {base:>14,.0f} {'':>12}  "
          f"(firing = {rate / base:.0%} of it)")
    print(f"{'analysis of a 50-place net (ms, median)':<44} {ms:>14.2f} {'< 100':>12}  "
          f"{'PASS' if ms < TARGET_ANALYSIS_MS else 'MISS'}  ({explored} markings)")
    return 0 if rate >= TARGET_FIRINGS and ms < TARGET_ANALYSIS_MS else 1


if __name__ == "__main__":
    sys.exit(main())
