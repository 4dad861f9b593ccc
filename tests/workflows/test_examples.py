"""The shipped examples load (service, command), are sound, export back to themselves and run to completion."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.workflows import services
from apps.workflows.engine import export_definition
from apps.workflows.models import Token, WorkflowDefinition
from apps.workflows.netcache import net_for_version
from apps.workflows.services import EXAMPLES_DIR

from .nets import net_from

pytestmark = pytest.mark.django_db

NAMES = ["content_pipeline", "document_review", "parallel_review", "research_and_summarize", "software_deployment"]

RUNS = {
    "document_review": [("submit", None), ("review", None), ("reject", None), ("revise", None), ("submit", None),
                        ("review", None), ("approve", None)],
    "software_deployment": [("submit_for_review", None), ("approve_code", {"reviewer": "ann"}),
                            ("tests_fail", {"tests_passed": False}), ("submit_for_review", None),
                            ("approve_code", None), ("tests_pass", {"tests_passed": True}),
                            ("security_ok", {"security_approved": True}), ("deploy", {"approver": "bob"})],
    "research_and_summarize": [("start", None), ("researched", {"research": "…"}), ("summarized", {"summary": "…"})],
    "content_pipeline": [("start_research", None), ("outline_ready", None), ("draft_ready", None),
                         ("submit_for_edit", None), ("request_rewrite", None), ("submit_for_edit", None),
                         ("publish", None)],
    "parallel_review": [("split", None), ("legal_approve", {"legal": {"approved": True}}),
                        ("technical_approve", {"technical": {"approved": True}}), ("merge", None)],
}
INITIAL = {"software_deployment": {"assignee": "carol"}, "research_and_summarize": {"topic": "quantum computing"}}


def test_examples_load_sound_and_export_back(tenant):
    loaded = services.examples_load(tenant=tenant)
    assert sorted(w.slug for w in loaded) == NAMES
    for workflow in loaded:
        version = workflow.current_version
        assert version.number == 1 and version.sound, (workflow.slug, version.analysis)
        net, _ = net_for_version(version.id)
        assert net_from(export_definition(net)) == net
    services.examples_load(tenant=tenant)  # again: nothing changes
    assert {w.current_version.number for w in WorkflowDefinition.objects.filter(tenant=tenant)} == {1}


@pytest.mark.parametrize("name", NAMES)
def test_each_example_runs_to_completion(tenant, name):
    services.examples_load(tenant=tenant)
    instance = services.instance_create(tenant, workflow_id=name, data=INITIAL.get(name, {"title": "x"}))
    for transition, data in RUNS[name]:
        services.transition_fire(tenant, instance_id=instance.id, transition_id=transition, data=data)
    instance.refresh_from_db()
    assert instance.status == "completed", instance.marking
    if name == "parallel_review":
        (merged,) = Token.objects.filter(instance=instance, status="active")
        assert merged.data["legal"] == {"approved": True} and merged.data["technical"] == {"approved": True}


def test_loadworkflow_command(tenant):
    out = StringIO()
    call_command("loadworkflow", str(EXAMPLES_DIR / "document_review.json"),
                 str(EXAMPLES_DIR / "parallel_review.yaml"), tenant=tenant.slug, stdout=out)
    assert "document_review: version 1; sound" in out.getvalue()
    assert "parallel_review: version 1; sound" in out.getvalue()
    out = StringIO()
    call_command("loadworkflow", str(EXAMPLES_DIR / "document_review.json"), tenant=tenant.slug, stdout=out)
    assert "unchanged (version 1)" in out.getvalue()


def test_loadworkflow_reports_every_problem(tenant, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nplaces: [a, a]\ntransitions:\n  - {id: t, from_places: [zz], to_place: a}\n"
                   "initial_place: a\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("loadworkflow", str(bad), tenant=tenant.slug, stderr=err)
    assert "Duplicate place id 'a'." in err.getvalue() and "unknown input place 'zz'" in err.getvalue()
    with pytest.raises(CommandError, match="No tenant"):
        call_command("loadworkflow", str(bad), tenant="nobody")
