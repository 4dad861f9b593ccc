"""Firing through the service layer on Postgres: token identity, joins and splits, history, the outbox in the
same transaction, statuses, versions, and the statement count of one firing."""

from __future__ import annotations

import copy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.errors import Conflict, InvalidRequest, NotFound
from apps.workflows import selectors, services
from apps.workflows.engine import DefinitionInvalid, TransitionNotEnabled
from apps.workflows.models import Token, TokenHistory, WorkflowEvent, WorkflowInstance
from tests import factories

from .nets import DOCUMENT_REVIEW, PARALLEL_REVIEW, chain

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["sql", "orm"])
def write_path(request, monkeypatch):
    """Every test runs on Postgres' one-statement path and on the ORM path (the embedded SQLite's)."""
    from apps.workflows import firing

    monkeypatch.setattr(firing, "SQL_FAST_PATH", request.param == "sql")
    return request.param


def only_token(instance) -> Token:
    (token,) = Token.objects.filter(instance=instance, status="active")
    return token


def test_a_token_moves_through_document_review_keeping_its_id(tenant, saved):
    saved(DOCUMENT_REVIEW)
    instance = services.instance_create(tenant, workflow_id="document_review", data={"title": "My Document"},
                                        actor="alice")
    token = only_token(instance)
    assert token.place == "draft" and token.data == {"title": "My Document"}
    for step, place in [("submit", "pending_review"), ("review", "reviewed"), ("reject", "rejected"),
                        ("revise", "draft"), ("submit", "pending_review"), ("review", "reviewed")]:
        result = services.transition_fire(tenant, token_id=token.id, transition_id=step, actor="alice")
        assert result.token_id == str(token.id)
        token.refresh_from_db()
        assert token.place == place
    result = services.transition_fire(tenant, token_id=token.id, transition_id="approve", data={"ok": True},
                                      actor="bob")
    instance.refresh_from_db()
    assert instance.status == "completed" and instance.marking == {"approved": 1} and instance.finished_at
    token.refresh_from_db()
    assert token.data == {"title": "My Document", "ok": True}
    history = list(TokenHistory.objects.filter(token=token).values_list("kind", "transition", "from_place",
                                                                          "to_place", "actor"))
    assert history[0] == ("created", "", "", "draft", "alice")
    assert history[-1] == ("moved", "approve", "reviewed", "approved", "bob")
    assert TokenHistory.objects.filter(token=token).last().data_change == {"set": {"ok": True}, "removed": []}
    types = list(WorkflowEvent.objects.filter(instance_id=instance.id).values_list("type", flat=True))
    assert types == ["instance_created", "token_created", *["transition_fired"] * 7, "instance_completed"]
    with pytest.raises(TransitionNotEnabled, match="completed"):
        services.transition_fire(tenant, token_id=token.id, transition_id="revise")


def test_a_transition_whose_input_lacks_the_token_is_a_conflict_with_reasons(tenant, saved):
    saved(DOCUMENT_REVIEW)
    instance = services.instance_create(tenant, workflow_id="document_review")
    token = only_token(instance)
    with pytest.raises(TransitionNotEnabled) as refused:
        services.transition_fire(tenant, token_id=token.id, transition_id="approve")
    assert refused.value.status == 409 and refused.value.code == "transition_not_enabled"
    assert "'draft'" in refused.value.message
    with pytest.raises(TransitionNotEnabled):
        services.transition_fire(tenant, instance_id=instance.id, transition_id="approve")
    with pytest.raises(InvalidRequest, match="no transition 'nope'"):
        services.transition_fire(tenant, token_id=token.id, transition_id="nope")
    with pytest.raises(NotFound):
        services.transition_fire(tenant, token_id="5d3c8f1e-0000-4000-8000-000000000000", transition_id="submit")
    with pytest.raises(NotFound):
        services.transition_fire(tenant, token_id="not-a-uuid", transition_id="submit")
    other = factories.tenant()
    with pytest.raises(NotFound):
        services.transition_fire(other, token_id=token.id, transition_id="submit")
    with pytest.raises(InvalidRequest):
        services.transition_fire(tenant, token_id=token.id, transition_id="submit", data=[1])
    assert only_token(instance).place == "draft"
    assert not WorkflowEvent.objects.filter(instance_id=instance.id, type="transition_fired").exists()


def test_parallel_review_splits_and_joins_tokens(tenant, saved):
    saved(PARALLEL_REVIEW)
    instance = services.instance_create(tenant, workflow_id="parallel_review", data={"doc": {"title": "x"}})
    doc = only_token(instance)
    split = services.transition_fire(tenant, token_id=doc.id, transition_id="split")
    assert split.token_id == str(doc.id) and len(split.created) == 1
    doc.refresh_from_db()
    child = Token.objects.get(pk=split.created[0])
    assert (doc.place, child.place, child.parents, child.data) == ("legal", "technical", [str(doc.id)],
                                                                   {"doc": {"title": "x"}})
    services.transition_fire(tenant, token_id=child.id, transition_id="tech_ok", data={"doc": {"tech": "ok"}})
    with pytest.raises(TransitionNotEnabled, match="lack tokens"):
        services.transition_fire(tenant, instance_id=instance.id, transition_id="merge")
    services.transition_fire(tenant, token_id=doc.id, transition_id="legal_ok", data={"doc": {"legal": "ok"}})
    merged = services.transition_fire(tenant, token_id=child.id, transition_id="merge", data={"done": True})
    assert merged.token_id == str(child.id) and merged.plan.consumed == (str(doc.id),)
    child.refresh_from_db()
    doc.refresh_from_db()
    assert child.place == "merged" and child.status == "active"
    assert doc.status == "consumed" and doc.merged_into == child.id
    # Deep merge in input-arc order (legal_done, then technical_done), then the patch.
    assert child.data == {"doc": {"title": "x", "legal": "ok", "tech": "ok"}, "done": True}
    instance.refresh_from_db()
    assert instance.status == "completed" and instance.marking == {"merged": 1}
    assert selectors.token_list(tenant=tenant, instance=instance, place="merged").get() == child


def test_a_deadlocked_instance_and_cancel(tenant, saved):
    saved({"id": "dl", "places": ["s", "a", "b", "c", "end"], "initial_place": "s", "final_places": ["end"],
           "transitions": [{"id": "split", "from_places": ["s"], "to_places": ["a", "b"]},
                           {"id": "left", "from_places": ["a"], "to_place": "c"},
                           {"id": "right", "from_places": ["b"], "to_place": "end"},
                           {"id": "join", "from_places": ["c", "b"], "to_place": "end"}]})
    instance = services.instance_create(tenant, workflow_id="dl")
    for step in ("split", "right", "left"):
        services.transition_fire(tenant, instance_id=instance.id, transition_id=step)
    instance.refresh_from_db()
    assert instance.status == "deadlocked" and instance.marking == {"c": 1, "end": 1}
    services.instance_cancel(tenant, instance_id=instance.id, actor="ops")
    instance.refresh_from_db()
    assert instance.status == "cancelled"
    with pytest.raises(Conflict):
        services.instance_cancel(tenant, instance_id=instance.id)
    assert WorkflowEvent.objects.filter(instance_id=instance.id, type="instance_cancelled").count() == 1


def test_saving_a_changed_definition_adds_a_version_and_running_instances_keep_theirs(tenant, saved):
    workflow, v1 = saved(DOCUMENT_REVIEW)
    assert (v1.number, v1.sound) == (1, True)
    _, again = saved(copy.deepcopy(DOCUMENT_REVIEW))
    assert again.pk == v1.pk  # unchanged: no new version
    running = services.instance_create(tenant, workflow_id="document_review")
    changed = copy.deepcopy(DOCUMENT_REVIEW)
    changed["transitions"][0]["to_place"] = "reviewed"  # submit skips the review
    changed["transitions"].pop(1)
    changed["places"].remove("pending_review")
    _, v2 = saved(changed)
    assert v2.number == 2
    workflow.refresh_from_db()
    assert workflow.current_version == v2
    services.transition_fire(tenant, instance_id=running.id, transition_id="submit")
    assert only_token(running).place == "pending_review"  # still version 1
    fresh = services.instance_create(tenant, workflow_id="document_review")
    services.transition_fire(tenant, instance_id=fresh.id, transition_id="submit")
    assert only_token(fresh).place == "reviewed"


def test_bad_definitions_list_every_problem_and_strict_refuses_unsound(tenant, saved):
    with pytest.raises(DefinitionInvalid) as bad:
        saved({"id": "bad", "places": ["a", "a"], "transitions": [{"id": "t", "from_places": ["zz"], "to_place": "a",
                                                                   "inputs": ["a"]}]})
    assert len(bad.value.problems) >= 2 and bad.value.status == 400
    unsound = {"id": "unsound", "places": ["s", "a", "b", "c", "end"], "initial_place": "s", "final_places": ["end"],
               "transitions": [{"id": "split", "from_places": ["s"], "to_places": ["a", "b"]},
                               {"id": "left", "from_places": ["a"], "to_place": "c"},
                               {"id": "right", "from_places": ["b"], "to_place": "end"},
                               {"id": "join", "from_places": ["c", "b"], "to_place": "end"}]}
    with pytest.raises(DefinitionInvalid) as refused:
        saved(unsound, strict=True)
    assert any("Dead marking" in p and "path:" in p for p in refused.value.problems)
    _, version = saved(unsound)  # not strict: saved, with the analysis
    assert not version.sound and any(f["kind"] == "deadlock" for f in version.analysis["findings"])


def test_token_create_in_a_place_starts_an_instance_and_joins_an_existing_one(tenant, saved):
    saved(DOCUMENT_REVIEW)
    token = services.token_create(tenant, workflow_id="document_review", place="pending_review", data={"t": 1})
    instance = token.instance
    assert instance.marking == {"pending_review": 1} and instance.status == "running"
    second = services.token_create(tenant, instance_id=instance.id, place="draft")
    instance.refresh_from_db()
    assert instance.marking == {"pending_review": 1, "draft": 1} and second.instance_id == instance.id
    with pytest.raises(InvalidRequest, match="no place"):
        services.token_create(tenant, workflow_id="document_review", place="nowhere")
    # Firing by instance takes the oldest token of the input place.
    services.transition_fire(tenant, instance_id=instance.id, transition_id="review")
    token.refresh_from_db()
    assert token.place == "reviewed"


def test_update_token_data_merges_and_records_history(tenant, saved):
    saved(DOCUMENT_REVIEW)
    instance = services.instance_create(tenant, workflow_id="document_review", data={"a": {"x": 1}})
    token = only_token(instance)
    services.token_update_data(tenant, token_id=token.id, data={"a": {"y": 2}, "b": 3}, actor="u")
    token.refresh_from_db()
    assert token.data == {"a": {"x": 1, "y": 2}, "b": 3}
    services.token_update_data(tenant, token_id=token.id, data={"only": 1}, replace=True)
    token.refresh_from_db()
    assert token.data == {"only": 1}
    assert list(token.history.values_list("kind", flat=True)) == ["created", "data_updated", "data_updated"]
    assert WorkflowEvent.objects.filter(token_id=token.id, type="token_updated").count() == 2


def test_join_any_keeps_the_originals_from_any_of_these(tenant, saved):
    saved({"id": "anyjoin", "places": ["start", "a", "b", "done"], "initial_place": "start",
           "transitions": [{"id": "finish", "from_places": ["a", "b"], "to_place": "done", "join": "any"},
                           {"id": "go_a", "from_places": ["start"], "to_place": "a"},
                           {"id": "go_b", "from_places": ["start"], "to_place": "b"}]})
    instance = services.instance_create(tenant, workflow_id="anyjoin")
    services.transition_fire(tenant, instance_id=instance.id, transition_id="go_b")
    result = services.transition_fire(tenant, instance_id=instance.id, transition_id="finish")
    assert result.plan.transition.id == "finish~b"
    instance.refresh_from_db()
    assert instance.status == "completed"
    event = WorkflowEvent.objects.filter(instance_id=instance.id, type="transition_fired").last()
    assert event.data["transition"] == "finish" and event.data["from_places"] == ["b"]


def test_one_firing_is_a_handful_of_statements(tenant, saved, write_path):
    saved(chain(10))
    instance = services.instance_create(tenant, workflow_id="chain10")
    token = only_token(instance)
    services.transition_fire(tenant, token_id=token.id, transition_id="t0")  # warms the net cache
    with CaptureQueriesContext(connection) as queries:
        services.transition_fire(tenant, token_id=token.id, transition_id="t1")
    # (The test runs inside a transaction, so the firing's own shows as a savepoint.)
    statements = [q["sql"].split()[0] for q in queries.captured_queries
                  if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    if write_path == "sql":
        # lock the instance (via the token) and read its tokens in one round trip, one statement for every write
        assert statements == ["SELECT", "WITH"], statements
    else:
        # lock, read, update the token, insert its history, insert the event, update the instance
        assert statements == ["SELECT", "SELECT", "UPDATE", "INSERT", "INSERT", "UPDATE"], statements


def test_the_outbox_row_commits_or_rolls_back_with_the_change(tenant, saved):
    from django.db import transaction

    saved(DOCUMENT_REVIEW)
    instance = services.instance_create(tenant, workflow_id="document_review")
    before = WorkflowEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.transition_fire(tenant, instance_id=instance.id, transition_id="submit")
        raise RuntimeError("the caller's transaction fails after the firing")
    assert WorkflowEvent.objects.count() == before and only_token(instance).place == "draft"
    assert WorkflowInstance.objects.get(pk=instance.pk).fire_count == 0


def test_transitions_listing_explains_each(tenant, saved):
    saved(PARALLEL_REVIEW)
    instance = services.instance_create(tenant, workflow_id="parallel_review")
    listing = {t["id"]: t for t in selectors.instance_transitions(instance=instance)}
    assert listing["split"]["enabled"] and listing["split"]["guard"]["passed"]
    assert not listing["merge"]["enabled"] and listing["merge"]["missing"] == {"legal_done": 1, "technical_done": 1}


def test_fail_an_instance_and_delete_a_workflow_only_when_nothing_runs(tenant, saved):
    workflow, _ = saved(DOCUMENT_REVIEW)
    instance = services.instance_create(tenant, workflow_id="document_review")
    with pytest.raises(Conflict, match="running instances"):
        services.workflow_delete(tenant, workflow=workflow)
    failed = services.instance_fail(tenant, instance_id=instance.id, reason="the agent gave up", actor="agent:1")
    assert failed.status == "failed" and failed.finished_at
    with pytest.raises(Conflict):
        services.instance_fail(tenant, instance_id=instance.id, reason="again")
    with pytest.raises(TransitionNotEnabled, match="failed"):
        services.transition_fire(tenant, instance_id=instance.id, transition_id="submit")
    services.workflow_delete(tenant, workflow=workflow, actor="ops")
    assert not WorkflowInstance.objects.filter(pk=instance.pk).exists()
    assert list(WorkflowEvent.objects.filter(workflow="document_review", tenant=tenant).values_list(
        "type", flat=True))[-2:] == ["instance_failed", "workflow_deleted"]
