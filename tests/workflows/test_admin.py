"""The admin: the net drawn as SVG (places with token counts, transitions, weighted arcs), an instance's marking
highlighted, token history, the cancel action; and the page as headless Chromium renders it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from django.contrib.auth import get_user_model

from apps.workflows import services
from apps.workflows.models import Token, WorkflowDefinition

from .nets import PARALLEL_REVIEW

pytestmark = pytest.mark.django_db

WEIGHTED = {"id": "weighted", "places": ["in", "pairs", "out"], "initial_marking": {"in": 4}, "final_places": ["out"],
            "transitions": [{"id": "pair", "inputs": [{"place": "in", "weight": 2}], "outputs": ["pairs"]},
                            {"id": "finish", "inputs": [{"place": "pairs", "weight": 2}],
                             "outputs": [{"place": "out", "weight": 3}]}]}


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("wf-admin", "a@example.com", "pw")
    client.force_login(user)
    return client


def svg_of(html: str) -> str:
    match = re.search(r"<svg [^>]*class=\"petri-net\".*?</svg>", html, re.S)
    assert match, "no SVG on the page"
    return match.group(0)


def test_workflow_page_draws_the_net_with_token_counts_and_weights(staff, tenant):
    services.workflow_save(tenant, definition=WEIGHTED)
    services.instance_create(tenant, workflow_id="weighted")
    workflow = WorkflowDefinition.objects.get(tenant=tenant, slug="weighted")
    page = staff.get(f"/admin/workflows/workflowdefinition/{workflow.pk}/change/")
    assert page.status_code == 200
    svg = svg_of(page.content.decode())
    assert 'data-place="in" data-tokens="4"' in svg and 'data-place="out" data-tokens="0"' in svg
    assert svg.count('class="arc"') == 4 and svg.count('class="transition"') == 2
    assert re.findall(r'class="weight"[^>]*>(\d+)<', svg) == ["2", "2", "3"]
    assert "Sound" in page.content.decode()


def test_instance_page_highlights_its_marking_and_cancels(staff, tenant):
    services.workflow_save(tenant, definition=PARALLEL_REVIEW)
    instance = services.instance_create(tenant, workflow_id="parallel_review")
    services.transition_fire(tenant, instance_id=instance.id, transition_id="split")
    page = staff.get(f"/admin/workflows/workflowinstance/{instance.pk}/change/")
    assert page.status_code == 200
    svg = svg_of(page.content.decode())
    marked = re.findall(r'class="place marked" data-place="([^"]+)" data-tokens="(\d+)"', svg)
    assert sorted(marked) == [("legal", "1"), ("technical", "1")]
    assert "transition_fired" in page.content.decode()
    token = Token.objects.filter(instance=instance).first()
    history = staff.get(f"/admin/workflows/token/{token.pk}/change/")
    assert history.status_code == 200 and "split" in history.content.decode()
    response = staff.post("/admin/workflows/workflowinstance/", {"action": "cancel", "_selected_action": [instance.pk]})
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.status == "cancelled"


@pytest.mark.skipif(not shutil.which("chromium") and not os.environ.get("CI"), reason="needs the system chromium")
def test_headless_chromium_renders_the_instance_page(staff, tenant, tmp_path):
    services.workflow_save(tenant, definition=PARALLEL_REVIEW)
    instance = services.instance_create(tenant, workflow_id="parallel_review")
    services.transition_fire(tenant, instance_id=instance.id, transition_id="split")
    html = staff.get(f"/admin/workflows/workflowinstance/{instance.pk}/change/").content.decode()
    page = tmp_path / "instance.html"
    page.write_text(svg_of(html))
    shot = tmp_path / "instance.png"
    result = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,400",
                             f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 5000, result.stderr[-2000:]
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    assert dom.count("<circle") == 6 and 'data-tokens="1"' in dom
