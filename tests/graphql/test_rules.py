"""Named rules over GraphQL: create, update, delete, evaluate, list; another tenant's rule is NOT_FOUND."""

from __future__ import annotations

import pytest

from apps.rules.models import Rule

from .conftest import codes

pytestmark = pytest.mark.django_db

CREATE = """mutation($input: RuleCreateInput!) { createRule(input: $input) { id name condition enabled builtin } }"""
APPROVED = {"type": "FieldEquals", "field": "status", "value": "approved"}


def test_create_update_evaluate_delete(tenant_a):
    tenant, gql = tenant_a
    rule = gql(CREATE, {"input": {"name": "is_approved", "condition": APPROVED}})["createRule"]
    assert rule["name"] == "is_approved" and rule["enabled"] and not rule["builtin"]
    listed = gql("{ rules { id name builtin } }")["rules"]
    assert listed[0] == {"id": rule["id"], "name": "is_approved", "builtin": False}
    assert any(r["builtin"] for r in listed)
    assert gql('{ rules(includeBuiltin: false) { name } }')["rules"] == [{"name": "is_approved"}]

    evaluation = gql("""mutation { evaluateRule(input: {rule: "is_approved", data: {status: "approved"}})
                       { passed explanation } }""")["evaluateRule"]
    assert evaluation["passed"] is True and evaluation["explanation"]
    evaluation = gql("""mutation { evaluateRule(input: {condition: {Expression: "data.amount > 10"}, data: {amount: 5}})
                       { passed condition } }""")["evaluateRule"]
    assert evaluation["passed"] is False

    updated = gql("""mutation($id: ID!) { updateRule(input: {id: $id, description: "ok", enabled: false})
                    { description enabled condition } }""", {"id": rule["id"]})["updateRule"]
    assert updated == {"description": "ok", "enabled": False, "condition": APPROVED}
    deleted = gql("mutation($id: ID!) { deleteRule(id: $id) { id deleted } }", {"id": rule["id"]})["deleteRule"]
    assert deleted == {"id": rule["id"], "deleted": True}
    assert not Rule.objects.filter(tenant=tenant).exists()


def test_bad_conditions_and_duplicates_are_input_errors(tenant_a):
    _, gql = tenant_a
    _, errors = gql.errors(CREATE, {"input": {"name": "bad", "condition": {"type": "Nope"}}})
    assert codes(errors) == ["VALIDATION_ERROR"] and errors[0]["extensions"]["param"] == "condition"
    gql(CREATE, {"input": {"name": "dup", "condition": APPROVED}})
    _, errors = gql.errors(CREATE, {"input": {"name": "dup", "condition": APPROVED}})
    assert errors[0]["extensions"]["status"] in (400, 409) and "dup" in errors[0]["message"]
    _, errors = gql.errors('mutation { evaluateRule(input: {rule: "missing"}) { passed } }')
    assert codes(errors) == ["VALIDATION_ERROR"]


def test_a_rule_in_use_cannot_be_deleted_and_nothing_changes(tenant_a):
    tenant, gql = tenant_a
    base = gql(CREATE, {"input": {"name": "base", "condition": APPROVED}})["createRule"]
    gql(CREATE, {"input": {"name": "uses_base", "condition": {"type": "Rule", "name": "base"}}})
    _, errors = gql.errors("mutation($id: ID!) { deleteRule(id: $id) { id } }", {"id": base["id"]})
    assert codes(errors) == ["RULE_IN_USE"]
    assert Rule.objects.filter(tenant=tenant).count() == 2


def test_another_tenants_rule_is_not_found(tenant_a, tenant_b):
    _, gql_a = tenant_a
    _, gql_b = tenant_b
    rule = gql_a(CREATE, {"input": {"name": "mine", "condition": APPROVED}})["createRule"]
    for query in ("query($id: ID!) { rule(id: $id) { id } }",
                  "mutation($id: ID!) { updateRule(input: {id: $id, enabled: false}) { id } }",
                  "mutation($id: ID!) { deleteRule(id: $id) { id } }"):
        data, errors = gql_b.errors(query, {"id": rule["id"]})
        assert codes(errors) == ["NOT_FOUND"] and not any((data or {}).values())
    _, errors = gql_b.errors('mutation { evaluateRule(input: {rule: "mine"}) { passed } }')
    assert codes(errors) == ["VALIDATION_ERROR"]  # its name means nothing to another tenant
    assert Rule.objects.get(pk=rule["id"]).enabled
