"""Arbitrary definitions and fire bodies never make the engine or the API fail with anything but a listed
problem (400), a missing object (404) or a refusal (409)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.workflows.engine import analyse, parse_definition, structural_problems
from tests import factories

from .nets import DOCUMENT_REVIEW

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12)
names = st.sampled_from(["a", "b", "c", "d"]) | st.text(max_size=4) | json_values
arcs = st.lists(names | st.fixed_dictionaries({"place": names}, optional={"weight": json_values}), max_size=3)
transition = st.fixed_dictionaries({"id": names}, optional={
    "from_places": arcs | names, "to_place": names, "to_places": arcs, "inputs": arcs, "outputs": arcs,
    "join": st.sampled_from(["any", "all"]) | json_values, "conditions": st.lists(names, max_size=2) | json_values,
    "guard": json_values, "automatic": json_values, "delay": json_values, "name": json_values})
definitions = st.fixed_dictionaries({"id": st.just("fuzz") | json_values}, optional={
    "places": st.lists(names | st.fixed_dictionaries({"id": names}, optional={
        "kind": st.sampled_from(["initial", "terminal", "weird"]) | json_values, "capacity": json_values}),
        max_size=5) | json_values,
    "transitions": st.lists(transition, max_size=4) | json_values,
    "initial_place": names, "initial_marking": json_values | st.dictionaries(names.filter(
        lambda v: isinstance(v, str)), json_values, max_size=3), "final_places": json_values | st.lists(names),
    "extra": json_values})


@settings(max_examples=300, deadline=None)
@given(definitions)
def test_the_engine_lists_problems_for_any_definition(raw):
    problems: list[str] = []
    net = parse_definition(raw, problems=problems)
    if net is not None:
        problems += structural_problems(net)
        if not problems:
            analyse(net, cap=200)
    assert all(isinstance(p, str) for p in problems)


@pytest.fixture(scope="module")
def client(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        tenant, api = factories.admin_api(f"wf-fuzz-{uuid.uuid4().hex[:6]}")
        api.post("/api/workflows/", DOCUMENT_REVIEW, format="json")
        instance = api.post("/api/workflow-instances/", {"workflow_id": "document_review"}, format="json").json()
    yield api, instance
    with django_db_blocker.unblock():
        tenant.delete()


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definitions)
def test_the_api_answers_any_definition_without_a_500(client, raw):
    api, _ = client
    response = api.post("/api/workflows/", raw, format="json")
    assert response.status_code in (200, 201, 400), response.content


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["transition_id", "token_id", "data", "transitionId", "x"]), json_values,
                       max_size=4))
def test_the_api_answers_any_fire_body_without_a_500(client, body):
    api, instance = client
    for url in (f"/api/workflow-instances/{instance['id']}/fire/", f"/api/tokens/{instance['tokens'][0]['id']}/fire/"):
        response = api.post(url, body, format="json")
        assert response.status_code in (200, 400, 404, 409), response.content
