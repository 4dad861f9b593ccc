"""Runs through a real worker: retries only on the errors a function names, with fixed/linear/exponential
backoff; timeouts; cancellation (pending, running command killed); duplicated tasks run nothing twice; chains
on success, failure and condition, with their mapping and delay."""

from __future__ import annotations

import os
import sys
import time

import pytest
from celery import current_app

from tests.celery_worker import wait_until

from .conftest import execution, finished, python_function

pytestmark = pytest.mark.django_db(transaction=True)


def start(api, function_id, data) -> str:
    response = api.post(f"/api/functions/{function_id}/execute/", {"input": data}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def attempt_times(log_path) -> list[float]:
    return [float(line.split()[1]) for line in log_path.read_text().splitlines()]


@pytest.mark.parametrize(("backoff", "gaps"), [("fixed", [0.4, 0.4]), ("linear", [0.4, 0.8]),
                                               ("exponential", [0.4, 0.8])])
def test_retries_with_backoff_on_retryable_errors(fn_worker, api, tmp_path, backoff, gaps):
    flaky = python_function(api, "tests.functions.callables.flaky", max_attempts=3, backoff=backoff,
                            retry_delay_seconds=0.4, retry_on=["connection"])
    log = tmp_path / "attempts"
    run_id = start(api, flaky["id"], {"succeed_on": 3, "code": "connection", "log": str(log)})
    done = wait_until(lambda: finished(run_id))
    assert done.status == "completed" and done.output == {"attempt": 3} and done.attempts == 3
    assert [e["outcome"] for e in done.logs] == ["connection", "connection", "ok"]
    times = attempt_times(log)
    measured = [b - a for a, b in zip(times, times[1:], strict=False)]
    for got, wanted in zip(measured, gaps, strict=True):
        assert wanted <= got < wanted + 3.0, (backoff, measured)


def test_no_retry_on_errors_not_named_and_the_last_error_stays(fn_worker, api, tmp_path):
    flaky = python_function(api, "tests.functions.callables.flaky", max_attempts=4, retry_delay_seconds=0.1,
                            retry_on=["connection"])
    run_id = start(api, flaky["id"], {"succeed_on": 3, "code": "exception"})
    done = wait_until(lambda: finished(run_id))
    assert done.status == "failed" and done.attempts == 1 and done.error_code == "exception"
    assert "ValueError: attempt 1 failed" in done.error
    exhausted = start(api, flaky["id"], {"code": "connection"})  # never succeeds: stops after max_attempts
    done = wait_until(lambda: finished(exhausted))
    assert done.status == "failed" and done.attempts == 4 and done.error_code == "connection"


def test_python_timeout_and_timeout_retried_when_named(fn_worker, api):
    sleepy = python_function(api, "tests.functions.callables.sleep", timeout_seconds=0.5, max_attempts=2,
                             retry_delay_seconds=0.1, retry_on=[])
    run_id = start(api, sleepy["id"], {"seconds": 2})
    done = wait_until(lambda: finished(run_id))
    assert done.status == "timeout" and done.error_code == "timeout" and done.attempts == 1
    api.patch(f"/api/functions/{sleepy['id']}/", {"retry_on": ["timeout"]}, format="json")
    run_id = start(api, sleepy["id"], {"seconds": 2})
    done = wait_until(lambda: finished(run_id))
    assert done.status == "timeout" and done.attempts == 2


def staff_client(tenant):
    from rest_framework.test import APIClient

    from apps.tenants.models import Membership
    from tests import factories

    client = APIClient()
    client.force_login(factories.user(tenant_obj=tenant, role=Membership.Role.ADMIN, is_staff=True))
    return client


def test_cancel_a_running_command_kills_it_and_a_pending_run_never_starts(fn_worker, api, tmp_path):
    pid_file = tmp_path / "pid"
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    created = staff_client(api.tenant).post("/api/functions/", {
        "name": "long", "runtime": "command", "config": {"command": [sys.executable, "-c", script]},
        "timeout_seconds": 120}, format="json")
    assert created.status_code == 201, created.json()
    run_id = start(api, created.json()["id"], {})
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text())
    assert execution(run_id).status == "running"
    cancelled = api.post(f"/api/function-executions/{run_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    pid = int(pid_file.read_text())

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    assert wait_until(gone, timeout=5), "the command still runs"
    time.sleep(0.5)
    assert execution(run_id).status == "cancelled" and execution(run_id).output is None
    again = api.post(f"/api/function-executions/{run_id}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "execution_finished"

    # A pending run (its task not yet delivered) never starts once cancelled.
    from apps.functions.launch import execution_create
    from apps.functions.models import Function

    count = python_function(api, "tests.functions.callables.count_run")
    log = tmp_path / "count"
    pending = execution_create(Function.objects.get(pk=count["id"]), input={"log": str(log)}, trigger="manual")
    api.post(f"/api/function-executions/{pending.id}/cancel/")
    current_app.tasks["functions.run"].delay(str(pending.id), 1)
    time.sleep(1.0)
    assert not log.exists() and execution(pending.id).status == "cancelled"


def test_duplicated_tasks_run_an_execution_once(fn_worker, api, tmp_path):
    from apps.functions.launch import execution_create
    from apps.functions.models import Function

    count = python_function(api, "tests.functions.callables.count_run")
    log = tmp_path / "runs"
    row = execution_create(Function.objects.get(pk=count["id"]), input={"log": str(log), "seconds": 0.2},
                           trigger="manual")
    for _ in range(3):  # as a redelivery or a double enqueue would
        current_app.tasks["functions.run"].delay(str(row.id), 1)
    done = wait_until(lambda: finished(row.id))
    time.sleep(1.0)
    assert done.status == "completed" and done.attempts == 1
    assert log.read_text().splitlines() == ["ran"]
    current_app.tasks["functions.run"].delay(str(row.id), 1)  # after the end, too
    time.sleep(0.5)
    assert log.read_text().splitlines() == ["ran"] and execution(row.id).attempts == 1


def chain(api, first, following, on, **fields):
    response = api.post("/api/function-chains/", {"function": first, "next_function": following, "on": on,
                                                  **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_chains_on_success_failure_and_condition(fn_worker, api):
    count = python_function(api, "apps.functions.builtins.word_count")["id"]
    describe = python_function(api, "tests.functions.callables.describe")["id"]
    slug = python_function(api, "apps.functions.builtins.slugify")["id"]
    on_success = chain(api, count, describe, "success", input_mapping={"mode": "template", "template": {
        "minutes": "{{ output.reading_time_minutes }}", "from": "{{ input.text }}"}})
    on_failure = chain(api, count, slug, "failure", input_mapping={"mode": "template", "template": {
        "text": "failed {{ event.error_code }}"}})
    long_only = chain(api, count, describe, "condition", delay_seconds=1.0,
                      condition={"FieldGreaterThan": {"field": "output.words", "value": 3}})

    def children(parent_id, expected):
        rows = [r for r in execution(parent_id).children.all() if r.finished]
        return rows if len(rows) >= expected else None

    short = start(api, count, {"text": "two words"})
    [child] = wait_until(lambda: children(short, 1))
    assert child.function_id.hex == describe.replace("-", "") and child.trigger == "chain"
    assert child.input == {"minutes": 1, "from": "two words"} and child.context["chain_id"] == on_success["id"]
    time.sleep(1.5)
    assert execution(short).children.count() == 1  # 2 words: the condition chain did not run

    long = start(api, count, {"text": "one two three four five"})
    kids = wait_until(lambda: children(long, 2), timeout=15)
    by_chain = {k.context["chain_id"]: k for k in kids}
    assert set(by_chain) == {on_success["id"], long_only["id"]}
    delayed = by_chain[long_only["id"]]
    assert (delayed.started_at - execution(long).finished_at).total_seconds() >= 0.9  # its delay

    broken = start(api, count, {"text": 7})
    [child] = wait_until(lambda: children(broken, 1))
    assert child.context["chain_id"] == on_failure["id"] and child.output == {"slug": "failed-input_invalid"}
    bad = api.post("/api/function-chains/", {"function": count, "next_function": count, "on": "sometimes"},
                   format="json")
    assert bad.status_code == 400 and "on" in bad.json()


def test_the_sweep_reruns_what_a_lost_task_left(fn_worker, api, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from apps.functions.launch import execution_create
    from apps.functions.models import Function, FunctionExecution

    count = Function.objects.get(pk=python_function(api, "tests.functions.callables.count_run")["id"])
    log = tmp_path / "runs"
    lost_message = execution_create(count, input={"log": str(log)}, trigger="manual")  # never enqueued
    died_mid_run = execution_create(count, input={"log": str(log)}, trigger="manual")
    long_ago = timezone.now() - timedelta(minutes=5)
    FunctionExecution.objects.filter(pk=lost_message.pk).update(next_attempt_at=long_ago)
    FunctionExecution.objects.filter(pk=died_mid_run.pk).update(status="running", attempts=1, started_at=long_ago,
                                                                next_attempt_at=long_ago)
    delayed = execution_create(count, input={"log": str(log)}, trigger="chain", due_in=3600)
    assert wait_until(lambda: finished(lost_message.id) and finished(died_mid_run.id), timeout=15)
    assert execution(lost_message.id).status == execution(died_mid_run.id).status == "completed"
    assert execution(died_mid_run.id).attempts == 1
    assert execution(delayed.id).status == "pending"  # not due yet: left alone
    assert log.read_text().splitlines() == ["ran", "ran"]
