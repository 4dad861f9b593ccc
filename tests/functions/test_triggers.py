"""Every trigger kind through a real worker: workflow events from real apps.workflows.services calls (token
created in a place, transitioned, updated, instance completed, workflow saved), function completed, custom
events through POST /api/events/, and cron schedules started exactly once by two beats; conditions and input
mappings (fields, template, event)."""

from __future__ import annotations

import time

import pytest

from tests import factories
from tests.celery_worker import Worker, wait_until

from .conftest import WORKER_ENV, python_function

pytestmark = pytest.mark.django_db(transaction=True)

REVIEW = {"id": "review", "places": ["draft", "review", "done"], "initial_place": "draft", "final_places": ["done"],
          "transitions": [{"id": "submit", "from_places": ["draft"], "to_place": "review"},
                          {"id": "approve", "from_places": ["review"], "to_place": "done"}]}
DESCRIBE = "tests.functions.callables.describe"


def trigger(api, function_id, kind, **fields):
    response = api.post("/api/function-triggers/", {"function": function_id, "kind": kind, **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def executions(**filters):
    from apps.functions.models import FunctionExecution

    return list(FunctionExecution.objects.filter(**filters).order_by("created_at"))


def finished_runs(expected: int, **filters):
    rows = executions(**filters)
    return rows if len(rows) >= expected and all(r.finished for r in rows) else None


def test_workflow_event_triggers_with_conditions_and_mappings(fn_worker, api):
    from apps.functions.models import FunctionExecution
    from apps.workflows import services as workflows
    from apps.workflows.models import Token, WorkflowEvent

    tenant = api.tenant
    describe = python_function(api, DESCRIBE)["id"]
    created = trigger(api, describe, "token_created", workflow="review", config={"place": "draft"},
                      condition={"FieldEquals": {"field": "data.priority", "value": "high"}},
                      input_mapping={"mode": "fields", "fields": {"title": "data.title", "place": "event.place"}})
    moved = trigger(api, describe, "token_transitioned", config={"transition": "submit", "to_place": "review"},
                    input_mapping={"mode": "template", "template": {
                        "summary": "{{ data.title }} went to {{ event.to_places[0] }}", "title": "{{ data.title }}",
                        "n": "{{ data.pages }}"}})
    updated = trigger(api, describe, "token_updated", workflow="review")
    completed = trigger(api, describe, "instance_completed", input_mapping={"mode": "event"})
    saved = trigger(api, describe, "workflow_saved")
    trigger(api, describe, "token_created", workflow="another_workflow")  # never matches

    workflows.workflow_save(tenant, definition=REVIEW)
    assert wait_until(lambda: finished_runs(1, trigger_ref_id=saved["id"]))
    low = workflows.instance_create(tenant, workflow_id="review", data={"title": "Low", "priority": "low"})
    high = workflows.instance_create(tenant, workflow_id="review", data={"title": "Doc", "priority": "high",
                                                                         "pages": 3})
    [run] = wait_until(lambda: finished_runs(1, trigger_ref_id=created["id"]))
    assert run.status == "completed" and run.trigger == "token_created"
    assert run.input == {"title": "Doc", "place": "draft"}
    assert run.instance_id == high.id and run.workflow == "review"
    token = Token.objects.get(instance=high)
    assert run.token_id == token.id

    workflows.transition_fire(tenant, instance_id=high.id, transition_id="submit")
    [run] = wait_until(lambda: finished_runs(1, trigger_ref_id=moved["id"]))
    assert run.input == {"summary": "Doc went to review", "title": "Doc", "n": 3}  # one expression keeps its type
    workflows.token_update_data(tenant, token_id=token.id, data={"reviewer": "ann"})
    [run] = wait_until(lambda: finished_runs(1, trigger_ref_id=updated["id"]))
    assert run.input["reviewer"] == "ann" and run.input["title"] == "Doc"
    workflows.transition_fire(tenant, instance_id=high.id, transition_id="approve")
    [run] = wait_until(lambda: finished_runs(1, trigger_ref_id=completed["id"]))
    assert run.input["event"]["type"] == "instance_completed" and run.input["instance_id"] == str(high.id)

    time.sleep(0.5)
    assert not executions(instance_id=low.id, trigger_ref_id=created["id"])  # the condition did not hold
    assert len(executions(trigger_ref_id=created["id"])) == 1
    # Instance-linked runs report to the instance's event stream.
    types = list(WorkflowEvent.objects.filter(instance_id=high.id, type__startswith="function_")
                 .values_list("type", flat=True))
    assert types.count("function_executing") == types.count("function_completed") >= 3
    listed = api.get(f"/api/function-executions/?instance={high.id}").json()["results"]
    assert {r["trigger"] for r in listed} == {"token_created", "token_transitioned", "token_updated",
                                              "instance_completed"}
    assert FunctionExecution.objects.filter(tenant=tenant).count() == 5


def test_function_completed_and_custom_event_triggers(fn_worker, api):
    count = python_function(api, "apps.functions.builtins.word_count")["id"]
    describe = python_function(api, DESCRIBE)["id"]
    on_success = trigger(api, describe, "function_completed", config={"function_id": count, "success": True},
                         input_mapping={"mode": "fields", "fields": {"words": "output.words"}})
    on_failure = trigger(api, describe, "function_completed", config={"function_id": count, "success": False},
                         input_mapping={"mode": "fields", "fields": {"error": "event.error_code"}})
    custom = trigger(api, count, "custom", config={"name": "article.published"},
                     condition={"FieldEquals": {"field": "data.lang", "value": "en"}})

    emitted = api.post("/api/events/", {"name": "article.published", "data": {"text": "a b c d", "lang": "en"}},
                       format="json")
    assert emitted.status_code == 202 and len(emitted.json()["executions"]) == 1
    skipped = api.post("/api/events/", {"name": "article.published", "data": {"text": "x", "lang": "fr"}},
                       format="json")
    assert skipped.json()["executions"] == []
    assert api.post("/api/events/", {"name": "other", "data": {}}, format="json").json()["executions"] == []
    [first] = wait_until(lambda: finished_runs(1, trigger_ref_id=custom["id"]))
    assert first.output == {"words": 4, "reading_time_minutes": 1} and first.trigger == "custom"
    [after] = wait_until(lambda: finished_runs(1, trigger_ref_id=on_success["id"]))
    assert after.input == {"words": 4} and after.parent_id == first.id and after.depth == 1

    api.post("/api/events/", {"name": "article.published", "data": {"text": 5, "lang": "en"}}, format="json")
    [failed] = wait_until(lambda: finished_runs(1, trigger_ref_id=on_failure["id"]))
    assert failed.input == {"error": "input_invalid"}
    bad = api.post("/api/events/", {"name": "", "data": []}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"name", "data"}


def test_schedule_starts_each_slot_once_with_two_beats(fn_worker, api, tmp_path):
    describe = python_function(api, DESCRIBE)["id"]
    every_second = trigger(api, describe, "schedule", config={"cron": "* * * * * *"},
                           input_mapping={"mode": "event"})
    assert every_second["next_run_at"]
    bad = api.post("/api/function-triggers/", {"function": describe, "kind": "schedule",
                                               "config": {"cron": "every minute"}}, format="json")
    assert bad.status_code == 400 and "cron" in bad.json()["config"][0]
    second = Worker(tmp_path, WORKER_ENV)  # a second worker with its own beat
    try:
        runs = wait_until(lambda: finished_runs(4, trigger_ref_id=every_second["id"]), timeout=30)
    finally:
        second.stop()
    assert runs, "the schedule did not start"
    slots = [r.input["event"]["scheduled_for"] for r in runs]
    assert len(slots) == len(set(slots))  # no slot started twice
    assert all(r.trigger == "schedule" and r.status == "completed" for r in runs)
    api.patch(f"/api/function-triggers/{every_second['id']}/", {"enabled": False}, format="json")
    time.sleep(0.5)
    stopped = len(executions(trigger_ref_id=every_second["id"]))
    time.sleep(1.5)
    assert len(executions(trigger_ref_id=every_second["id"])) == stopped


def test_listener_ignores_tenants_without_triggers(fn_worker, transactional_db):
    from apps.workflows import services as workflows

    tenant = factories.tenant("fn-no-triggers")
    workflows.workflow_save(tenant, definition=REVIEW)
    workflows.instance_create(tenant, workflow_id="review", data={"title": "x"})
    assert executions(tenant=tenant) == []


def test_the_content_pipeline_example_counts_the_draft_submitted_for_edit(fn_worker, api):
    from apps.functions.services import examples_load
    from apps.workflows import services as workflows

    tenant = api.tenant
    workflows.examples_load(tenant=tenant)
    [function] = examples_load(tenant=tenant)
    assert examples_load(tenant=tenant) == []  # loaded once
    instance = workflows.instance_create(tenant, workflow_id="content_pipeline", data={"topic": "Petri nets"})
    assert wait_until(lambda: workflows.transition_fire(tenant, instance_id=instance.id,
                                                        transition_id="outline_ready") if _in(instance, "research")
                      else None, timeout=20)  # start_research is automatic: the worker fires it
    workflows.transition_fire(tenant, instance_id=instance.id, transition_id="draft_ready",
                              data={"draft": "Tokens move through places. " * 150})
    workflows.transition_fire(tenant, instance_id=instance.id, transition_id="submit_for_edit")
    [run] = wait_until(lambda: finished_runs(1, function_id=function.id))
    assert run.status == "completed" and run.instance_id == instance.id
    assert run.output == {"words": 600, "reading_time_minutes": 3}


def _in(instance, place) -> bool:
    from apps.workflows.models import WorkflowInstance

    return WorkflowInstance.objects.get(pk=instance.id).marking.get(place) == 1
