"""Workflows over GraphQL: the documents' operations, the full Petri-net form, cross-tenant ids, atomicity and
query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.workflows.models import WorkflowDefinition

from .conftest import codes

pytestmark = pytest.mark.django_db

CREATE = """
mutation Create($input: WorkflowDefinitionInput!) {
  createWorkflow(input: $input) { id name version sound places initialMarking
    transitions { id name fromPlaces toPlace from_places to_place } }
}"""
REVIEW = {"name": "Document Review", "places": ["draft", "review", "approved"],
          "transitions": [{"id": "submit", "name": "Submit", "fromPlaces": ["draft"], "toPlace": "review"},
                          {"id": "approve", "fromPlaces": ["review"], "toPlace": "approved",
                           "conditions": [{"type": "FieldEquals", "field": "ok", "value": True}]}],
          "initialPlace": "draft"}


def _review(caller, **overrides):
    return caller(CREATE, {"input": {**REVIEW, **overrides}})["createWorkflow"]


def test_create_workflow_in_the_original_shape(tenant_a):
    _, gql = tenant_a
    workflow = _review(gql)
    assert workflow["id"] == "document_review" and workflow["version"] == 1
    assert workflow["places"] == ["draft", "review", "approved"]
    assert workflow["initialMarking"] == {"draft": 1}
    submit = workflow["transitions"][0]
    assert submit == {"id": "submit", "name": "Submit", "fromPlaces": ["draft"], "toPlace": "review",
                      "from_places": ["draft"], "to_place": "review"}
    assert _review(gql)["version"] == 1  # the same net again: no new version


def test_create_workflow_from_the_full_petri_net_form(tenant_a):
    _, gql = tenant_a
    definition = {"id": "fork", "places": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
                  "transitions": [{"id": "split", "inputs": [{"place": "a", "weight": 1}],
                                   "outputs": [{"place": "b"}, {"place": "c"}]}],
                  "initial_marking": {"a": 1}, "final_places": ["b", "c"]}
    workflow = gql(CREATE, {"input": {"definition": definition}})["createWorkflow"]
    assert workflow["id"] == "fork"
    assert workflow["transitions"][0]["fromPlaces"] == ["a"]


def test_a_bad_definition_lists_its_problems_and_saves_nothing(tenant_a):
    tenant, gql = tenant_a
    data, errors = gql.errors(CREATE, {"input": {**REVIEW, "transitions": [
        {"id": "submit", "fromPlaces": ["nowhere"], "toPlace": "review"}]}})
    assert data == {"createWorkflow": None} and codes(errors) == ["INVALID_DEFINITION"]
    assert errors[0]["extensions"]["problems"] and "nowhere" in errors[0]["message"]
    assert not WorkflowDefinition.objects.filter(tenant=tenant).exists()


def test_tokens_fire_and_transitions(tenant_a):
    _, gql = tenant_a
    _review(gql)
    token = gql("""mutation { createToken(input: {workflowId: "document_review", initialPlace: "draft",
                 data: {title: "Doc"}, metadata: {source: "test"}}) { id place workflowId data metadata status } }
              """)["createToken"]
    assert (token["place"], token["workflowId"], token["data"], token["status"]) == (
        "draft", "document_review", {"title": "Doc"}, "active")
    available = gql("query($id: ID!) { availableTransitions(tokenId: $id) { id enabled tokensReady guardPassed } }",
                    {"id": token["id"]})["availableTransitions"]
    assert {t["id"]: t["enabled"] for t in available} == {"submit": True, "approve": False}
    fired = gql("""mutation($id: ID!) { fireTransition(input: {tokenId: $id, transitionId: "submit",
                 data: {ok: false}}) { id place data history { kind transition fromPlace toPlace } } }""",
                {"id": token["id"]})["fireTransition"]
    assert fired["place"] == "review" and fired["data"] == {"title": "Doc", "ok": False}
    assert [h["kind"] for h in fired["history"]] == ["created", "moved"]
    # The guard refuses: CONFLICT with its explanation, nothing moved.
    _, errors = gql.errors("""mutation($id: ID!) { fireTransition(input: {tokenId: $id, transitionId: "approve"})
                            { id } }""", {"id": fired["id"]})
    assert codes(errors) == ["TRANSITION_NOT_ENABLED"] and errors[0]["extensions"]["status"] == 409
    # executeActivity (the original's later name) with its own argument names.
    done = gql("""mutation($id: ID!) { executeActivity(input: {resourceId: $id, activityId: "approve",
                data: {ok: true}}) { id place } }""", {"id": fired["id"]})["executeActivity"]
    assert done["place"] == "approved"
    in_place = gql('{ tokensInPlace(place: "approved") { id } resources(workflowId: "document_review") { id } }')
    assert in_place["tokensInPlace"] == [{"id": done["id"]}] and in_place["resources"] == [{"id": done["id"]}]
    assert gql("query($id: ID!) { token(id: $id) { id currentPlace } }", {"id": done["id"]})["token"] == {
        "id": done["id"], "currentPlace": "approved"}


def test_create_resource_and_the_documents_snake_case_create_token(tenant_a):
    _, gql = tenant_a
    _review(gql)
    made = gql("""mutation { createToken(input: {workflow_id: "document_review", place: "draft",
                data: "{\\"title\\": \\"My Document\\"}"}) { id place data } }""")["createToken"]
    assert made["place"] == "draft" and made["data"] == {"title": "My Document"}
    other = gql("""mutation { createResource(input: {workflowId: "document_review", place: "review"}) { place } }""")
    assert other["createResource"] == {"place": "review"}


def test_create_workflow_instance(tenant_a):
    _, gql = tenant_a
    _review(gql)
    instance = gql("""mutation { createWorkflowInstance(input: {workflowId: "document_review",
                    initialData: {topic: "quantum computing", depth: "intermediate"}, triggeredBy: "tester"})
                    { id currentPlace streamUrl agents { id role status } status workflowId tokens { data } } }
                 """)["createWorkflowInstance"]
    assert instance["currentPlace"] == "draft" and instance["status"] == "running"
    assert instance["streamUrl"] == f"/api/workflow-instances/{instance['id']}/events/stream"
    assert instance["agents"] == [] and instance["tokens"] == [{"data": {"topic": "quantum computing",
                                                                         "depth": "intermediate"}}]
    got = gql("query($id: ID!) { workflowInstance(id: $id) { id } }", {"id": instance["id"]})
    assert got["workflowInstance"]["id"] == instance["id"]


def test_unknown_workflow_is_not_found(tenant_a):
    _, gql = tenant_a
    _, errors = gql.errors('mutation { createWorkflowInstance(input: {workflowId: "nope"}) { id } }')
    assert codes(errors) == ["NOT_FOUND"]


def test_another_tenants_ids_are_not_found(tenant_a, tenant_b):
    _, gql_a = tenant_a
    _, gql_b = tenant_b
    _review(gql_a)
    token = gql_a('mutation { createToken(input: {workflowId: "document_review", place: "draft"}) '
                  '{ id instanceId } }')["createToken"]
    probes = [
        ('{ workflow(id: "document_review") { id } }', None),
        ("query($id: ID!) { token(id: $id) { id } }", {"id": token["id"]}),
        ("query($id: ID!) { availableTransitions(tokenId: $id) { id } }", {"id": token["id"]}),
        ("query($id: ID!) { workflowInstance(id: $id) { id } }", {"id": token["instanceId"]}),
        ("query($id: ID!) { tokens(instanceId: $id) { id } }", {"id": token["instanceId"]}),
        ('mutation($id: ID!) { fireTransition(input: {tokenId: $id, transitionId: "submit"}) { id } }',
         {"id": token["id"]}),
        ('mutation($id: ID!) { createToken(input: {instanceId: $id, place: "draft"}) { id } }',
         {"id": token["instanceId"]}),
        ('mutation { createWorkflowInstance(input: {workflowId: "document_review"}) { id } }', None),
    ]
    for query, variables in probes:
        data, errors = gql_b.errors(query, variables)
        assert codes(errors) == ["NOT_FOUND"], (query, errors)
        assert not data or not any(data.values()), data
    assert gql_b("{ workflows { id } tokens { id } }") == {"workflows": [], "tokens": []}


def test_lists_do_not_query_per_item(tenant_a):
    _, gql = tenant_a
    _review(gql)
    query = """{ workflows { id places transitions { id } }
                 workflowInstances { id workflowId version tokens { id workflowId history { kind } } }
                 tokens { id workflowId history { kind } } }"""

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            gql(query)
        return len(queries)

    for _ in range(2):
        gql('mutation { createWorkflowInstance(input: {workflowId: "document_review"}) { id } }')
    few = count()
    for _ in range(6):
        gql('mutation { createWorkflowInstance(input: {workflowId: "document_review"}) { id } }')
    assert count() == few, "a query per item"


def test_pages_are_bounded(tenant_a):
    _, gql = tenant_a
    _, errors = gql.errors("{ workflows(first: 1000) { id } }")
    assert codes(errors) == ["INVALID_PAGE"]
    assert gql("{ workflows(first: 100, offset: 5) { id } }") == {"workflows": []}
