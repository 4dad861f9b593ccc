"""/graphql over HTTP: bodies whatever their Content-Type, GET, authentication (keys, scopes, sessions with
CSRF, the embedded default's anonymous tenant) and the depth/cost limits."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client, override_settings

from tests.tenants.factories import api_key, tenant, user

from .conftest import codes

pytestmark = pytest.mark.django_db


def _post(client, body, *, content_type="application/json", **headers):
    return client.post("/graphql", data=body if isinstance(body, str) else json.dumps(body),
                       content_type=content_type, headers=headers)


@pytest.fixture
def key(db):
    created = tenant("transport")
    _, secret = api_key(created, scopes=["admin"])
    return secret


def test_a_json_body_is_json_whatever_its_content_type(key):
    auth = {"Authorization": f"Bearer {key}"}
    for content_type in ("application/json", "application/x-www-form-urlencoded", "text/plain",
                         "application/json; charset=utf-8"):
        response = _post(Client(), '{"query": "{ version }"}', content_type=content_type, **auth)
        assert response.status_code == 200 and response.json() == {"data": {"version": "0.1.0"}}, content_type
    response = Client().post("/graphql", data="{ version }", content_type="application/graphql", headers=auth)
    assert response.json() == {"data": {"version": "0.1.0"}}
    response = _post(Client(), '{"query": ', content_type="application/x-www-form-urlencoded", **auth)
    assert response.status_code == 400 and codes(response.json()["errors"]) == ["BAD_REQUEST"]
    for bad in ("[1, 2]", '{"query": 12}', '{"query": "{ version }", "variables": [1]}',
                '{"query": "{ version }", "operationName": 5}', '{"query": "{ version }", "variables": "[1]"}'):
        response = _post(Client(), bad, **auth)
        assert response.status_code == 400 and codes(response.json()["errors"]) == ["BAD_REQUEST"], bad


def test_get_runs_queries_and_refuses_mutations(key):
    client = Client()
    response = client.get("/graphql", {"query": "query($n: Int) { workflows(first: $n) { id } }",
                                       "variables": '{"n": 5}'}, headers={"x-api-key": key})
    assert response.json() == {"data": {"workflows": []}}
    response = client.get("/graphql", {"query": 'mutation { deleteRule(id: "1") { id } }'},
                          headers={"x-api-key": key})
    assert response.status_code == 405 and codes(response.json()["errors"]) == ["METHOD_NOT_ALLOWED"]


def test_graphiql_is_served_to_browsers():
    page = Client().get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"graphiql" in page.content.lower()


def test_no_key_a_bad_key_and_a_revoked_key_are_401(key, db):
    response = _post(Client(), {"query": "{ version }"})
    assert response.status_code == 401 and codes(response.json()["errors"]) == ["MISSING_API_KEY"]
    response = _post(Client(), {"query": "{ version }"}, Authorization="Bearer cb-not-a-real-key")
    assert response.status_code == 401 and codes(response.json()["errors"]) == ["INVALID_API_KEY"]
    assert "data" not in response.json()


def test_a_database_that_refuses_connections_is_a_503_graphql_error(key, monkeypatch):
    from django.db import OperationalError

    from apps.tenants import graphql_auth

    def refused(secret):
        raise OperationalError('connection failed: FATAL:  sorry, too many clients already')

    monkeypatch.setattr(graphql_auth, "api_key_from_secret", refused)
    response = _post(Client(), {"query": "{ version }"}, Authorization=f"Bearer {key}")
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert codes(response.json()["errors"]) == ["DATABASE_UNAVAILABLE"]
    assert "too many clients" not in response.content.decode()


def test_scopes(db):
    created = tenant("scopes")
    _, read = api_key(created, scopes=["read"])
    _, inference = api_key(created, scopes=["inference"])
    ok = _post(Client(), {"query": "{ workflows { id } rules(first: 1) { name } }"}, Authorization=f"Bearer {read}")
    assert "errors" not in ok.json()
    refused = _post(Client(), {"query": 'mutation { setBudget(input: {limit: 1}) { budgetId } }'},
                    Authorization=f"Bearer {read}").json()
    assert codes(refused["errors"]) == ["INSUFFICIENT_SCOPE"] and refused["data"] == {"setBudget": None}
    refused = _post(Client(), {"query": "{ workflows { id } }"}, Authorization=f"Bearer {inference}").json()
    assert codes(refused["errors"]) == ["INSUFFICIENT_SCOPE"]


def test_a_session_user_acts_for_their_tenant_with_csrf(db):
    from apps.tenants.models import Membership

    first, second = tenant("sess-one"), tenant("sess-two")
    member = user("alice", tenant_obj=first, role=Membership.Role.ADMIN)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    query = {"query": "mutation { createRule(input: {name: \"r\", condition: null}) { name } }"}
    refused = _post(client, query)
    assert refused.status_code == 403 and codes(refused.json()["errors"]) == ["CSRF_FAILED"]
    client.get("/graphql", headers={"Accept": "text/html"})  # GraphiQL's page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert _post(client, query, **{"X-CSRFToken": token}).json() == {"data": {"createRule": {"name": "r"}}}
    # A second membership: the tenant must be named; a tenant the user is not in is NOT_FOUND.
    Membership.objects.create(user=member, tenant=second, role=Membership.Role.VIEWER)
    body = _post(client, {"query": "{ version }"}, **{"X-CSRFToken": token}).json()
    assert codes(body["errors"]) == ["TENANT_REQUIRED"]
    body = _post(client, {"query": "{ rules(includeBuiltin: false) { name } }"},
                 **{"X-CSRFToken": token, "X-CB-Tenant": "sess-one"}).json()
    assert body == {"data": {"rules": [{"name": "r"}]}}
    body = _post(client, query, **{"X-CSRFToken": token, "X-CB-Tenant": "sess-two"}).json()
    assert codes(body["errors"]) == ["PERMISSION_DENIED"]  # a viewer there
    body = _post(client, {"query": "{ version }"}, **{"X-CSRFToken": token, "X-CB-Tenant": "elsewhere"}).json()
    assert codes(body["errors"]) == ["NOT_FOUND"]


def test_a_key_needs_no_csrf_token_even_beside_a_session(key, db):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user("bob"))
    response = _post(client, {"query": "{ version }"}, Authorization=f"Bearer {key}")
    assert response.json() == {"data": {"version": "0.1.0"}}


@override_settings(API_KEY_REQUIRED=False, ANONYMOUS_TENANT="anon-demo")
def test_the_embedded_defaults_anonymous_tenant(db):
    demo = tenant("anon-demo")
    made = _post(Client(), {"query": 'mutation { createRule(input: {name: "anon", condition: null}) { id } }'},
                 Authorization="Bearer not-needed").json()  # SDKs' placeholder key: anonymous, as on /v1
    assert "errors" not in made, made
    assert demo.rules.filter(name="anon").exists()
    bad = _post(Client(), {"query": "{ version }"}, Authorization="Bearer cb-looks-like-ours-but-unknown")
    assert bad.status_code == 401


def test_depth_and_cost_limits_refuse_before_running(key):
    auth = {"Authorization": f"Bearer {key}"}
    deep = "{ workflowInstances { tokens { history { kind } } } }"
    assert "errors" not in _post(Client(), {"query": deep}, **auth).json()
    with override_settings(GRAPHQL_MAX_DEPTH=3):
        response = _post(Client(), {"query": deep}, **auth)
    body = response.json()
    assert response.status_code == 400 and codes(body["errors"]) == ["QUERY_TOO_DEEP"] and "data" not in body
    # Fragments cannot hide depth, and a fragment cycle is an error, not a hung worker.
    hidden = ("query { workflowInstances { ...I } } fragment I on WorkflowInstance { tokens { ...T } } "
              "fragment T on Token { history { kind } }")
    with override_settings(GRAPHQL_MAX_DEPTH=3):
        assert codes(_post(Client(), {"query": hidden}, **auth).json()["errors"]) == ["QUERY_TOO_DEEP"]
    cycle = "query { workflows { ...A } } fragment A on Workflow { id ...B } fragment B on Workflow { name ...A }"
    body = _post(Client(), {"query": cycle}, **auth).json()
    assert codes(body["errors"]) == ["GRAPHQL_VALIDATION_FAILED"] and "data" not in body
    # Wide instead of deep: 30 aliases × 100 instances × their tokens × history.
    hostile = "{ " + " ".join(f"a{i}: workflowInstances(first: 100) {{ tokens {{ history {{ kind at actor }} }} }}"
                              for i in range(30)) + " }"
    started = time.perf_counter()
    response = _post(Client(), {"query": hostile}, **auth)
    assert time.perf_counter() - started < 2
    body = response.json()
    assert response.status_code == 400 and codes(body["errors"]) == ["QUERY_TOO_COMPLEX"] and "data" not in body
    assert body["errors"][0]["extensions"]["cost"] > body["errors"][0]["extensions"]["maxCost"]
    # GraphiQL's own introspection query is deep but allowed.
    from graphql import get_introspection_query

    body = _post(Client(), {"query": get_introspection_query()}, **auth).json()
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_nul_characters_are_the_clients_error(key):
    auth = {"Authorization": f"Bearer {key}"}
    for query, variables, param in (
            ('{ workflow(id: "\\u0000") { id } }', None, "id"),
            ("mutation($i: TokenCreateInput!) { createToken(input: $i) { id } }",
             {"i": {"workflowId": "w", "place": "p", "data": {"note": ["ok", "bad\u0000"]}}}, "input.data.note.1")):
        body = _post(Client(), {"query": query, "variables": variables}, **auth).json()
        assert codes(body["errors"]) == ["INVALID_CHARACTER"], body
        assert body["errors"][0]["extensions"]["param"] == param
