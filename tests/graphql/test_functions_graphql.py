"""Functions over GraphQL: createFunction (validation as the REST API's, write-only secrets, staff-only
runtimes), executeFunction without waiting (the run itself: test_agents_graphql), lists, cross-tenant ids and
query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.functions.models import Function, FunctionExecution

from .conftest import codes

pytestmark = pytest.mark.django_db

CREATE = """mutation($input: FunctionInput!) { createFunction(input: $input) {
  id name runtime config inputSchema timeoutSeconds maxAttempts retryOn enabled tags version hasSecret hmacSecret
  createdBy } }"""
WC = {"name": "wc", "runtime": "python", "config": {"callable": "apps.functions.builtins.word_count"},
      "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}


def _create(gql, **fields):
    return gql(CREATE, {"input": {**WC, **fields}})["createFunction"]


def test_create_function_and_read_it_back(tenant_a):
    _, gql = tenant_a
    made = _create(gql, tags=["text"], maxAttempts=2)
    assert (made["name"], made["runtime"], made["version"], made["maxAttempts"], made["tags"]) == (
        "wc", "python", 1, 2, ["text"])
    assert made["hasSecret"] is False and made["hmacSecret"] is None and made["createdBy"].startswith("api-key:")
    assert gql("query($id: ID!) { function(id: $id) { id name } }", {"id": made["id"]})["function"] == {
        "id": made["id"], "name": "wc"}
    _create(gql, name="other", tags=["misc"])
    assert [f["name"] for f in gql('{ functions(tag: "text") { name } }')["functions"]] == ["wc"]
    assert len(gql("{ functions(first: 1) { id } }")["functions"]) == 1


def test_an_http_functions_generated_secret_is_shown_once(tenant_a):
    tenant, gql = tenant_a
    made = _create(gql, name="hook", runtime="http", config={"url": "https://hooks.example.com/run"})
    assert made["hasSecret"] is True and len(made["hmacSecret"]) >= 32
    assert Function.objects.get(pk=made["id"]).secret() == made["hmacSecret"]
    again = gql("query($id: ID!) { function(id: $id) { hasSecret hmacSecret } }", {"id": made["id"]})["function"]
    assert again == {"hasSecret": True, "hmacSecret": None}
    given = _create(gql, name="hook2", runtime="http", config={"url": "https://hooks.example.com/run"},
                    hmacSecret="a-secret-of-my-own-choosing")
    assert given["hasSecret"] and given["hmacSecret"] is None  # a key the caller gave is never echoed
    assert Function.objects.filter(tenant=tenant).count() == 2


def test_bad_functions_change_nothing(tenant_a):
    tenant, gql = tenant_a
    for bad, code in (({"runtime": "cobol"}, "VALIDATION_ERROR"),
                      ({"config": {"callable": "os.system"}}, "VALIDATION_ERROR"),
                      ({"inputSchema": {"type": "nonsense"}}, "VALIDATION_ERROR"),
                      ({"runtime": "command", "config": {"argv": ["/bin/true"]}}, "STAFF_ONLY"),
                      ({"hmacSecret": "a-secret-of-my-own-choosing"}, "VALIDATION_ERROR")):
        data, errors = gql.errors(CREATE, {"input": {**WC, **bad}})
        assert data == {"createFunction": None} and codes(errors) == [code], (bad, errors)
    _create(gql)
    _, errors = gql.errors(CREATE, {"input": WC})
    assert codes(errors) == ["DUPLICATE_NAME"]
    assert Function.objects.filter(tenant=tenant).count() == 1


def test_execute_function_records_a_pending_run(tenant_a):
    _, gql = tenant_a
    made = _create(gql)
    run = gql("""mutation($id: ID!) { executeFunction(input: {functionId: $id, input: "{\\"text\\": \\"a b\\"}"})
               { id status finished input trigger functionId functionName } }""", {"id": made["id"]})["executeFunction"]
    assert (run["status"], run["finished"], run["input"], run["trigger"]) == ("pending", False, {"text": "a b"}, "api")
    assert run["functionId"] == made["id"] and run["functionName"] == "wc"
    # Input that breaks the schema is refused before anything is recorded.
    _, errors = gql.errors("""mutation($id: ID!) { executeFunction(input: {functionId: $id, input: {text: 3}})
                            { id } }""", {"id": made["id"]})
    assert codes(errors) == ["INPUT_INVALID"] and errors[0]["extensions"]["param"] == "input"
    assert FunctionExecution.objects.filter(function_id=made["id"]).count() == 1
    got = gql("query($id: ID!) { functionExecution(id: $id) { id status } }", {"id": run["id"]})
    assert got["functionExecution"] == {"id": run["id"], "status": "pending"}
    _, errors = gql.errors('{ functionExecutions(status: "bogus") { id } }')
    assert codes(errors) == ["VALIDATION_ERROR"]


def test_another_tenants_functions_are_not_found(tenant_a, tenant_b):
    _, gql_a = tenant_a
    _, gql_b = tenant_b
    made = _create(gql_a)
    run = gql_a("mutation($id: ID!) { executeFunction(input: {functionId: $id, input: {text: \"x\"}}) { id } }",
                {"id": made["id"]})["executeFunction"]
    for query, variables in (
            ("query($id: ID!) { function(id: $id) { id } }", {"id": made["id"]}),
            ("query($id: ID!) { functionExecution(id: $id) { id } }", {"id": run["id"]}),
            ("query($id: ID!) { functionExecutions(functionId: $id) { id } }", {"id": made["id"]}),
            ("mutation($id: ID!) { executeFunction(input: {functionId: $id, input: {text: \"x\"}}) { id } }",
             {"id": made["id"]}),
            ('{ function(id: "not-a-uuid") { id } }', None)):
        data, errors = gql_b.errors(query, variables)
        assert codes(errors) == ["NOT_FOUND"], (query, errors)
        assert not data or all(value is None for value in data.values())
    assert gql_b("{ functions { id } functionExecutions { id } }") == {"functions": [], "functionExecutions": []}
    assert FunctionExecution.objects.filter(function_id=made["id"]).count() == 1


def test_execution_lists_cost_the_same_queries_for_more_items(tenant_a):
    _, gql = tenant_a
    query = "{ functionExecutions { id functionName function { name } } functions { id name } }"

    def grow(n):
        for i in range(n):
            made = _create(gql, name=f"wc-{Function.objects.count()}-{i}")
            gql("mutation($id: ID!) { executeFunction(input: {functionId: $id, input: {text: \"x\"}}) { id } }",
                {"id": made["id"]})

    def count():
        with CaptureQueriesContext(connection) as queries:
            gql(query)
        return len(queries)

    grow(2)
    few = count()
    grow(4)
    assert count() == few
