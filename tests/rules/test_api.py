"""/api/rules/ as tenants call it with their API keys: CRUD of named rules, built-ins listed, the dry run."""

import pytest

from apps.rules.engine import BUILTIN_RULES
from apps.rules.models import Rule
from apps.tenants.models import Membership
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant_a():
    return factories.admin_api("rules-a")


@pytest.fixture
def tenant_b():
    return factories.admin_api("rules-b")


def create(client, **body):
    return client.post("/api/rules/", body, format="json")


def test_crud_of_a_named_rule(tenant_a):
    tenant, client = tenant_a
    response = create(client, name="ready", description="content and approval",
                      condition={"And": ["has_content", {"FieldEquals": {"field": "status", "value": "approved"}}]})
    assert response.status_code == 201, response.json()
    rule = response.json()
    assert rule["builtin"] is False and rule["enabled"] is True and rule["name"] == "ready"
    assert Rule.objects.get(pk=rule["id"]).tenant == tenant

    assert client.get(f"/api/rules/{rule['id']}/").json()["condition"] == rule["condition"]
    patched = client.patch(f"/api/rules/{rule['id']}/", {"condition": ["has_content"], "enabled": False},
                           format="json")
    assert patched.status_code == 200 and patched.json()["condition"] == ["has_content"]
    assert patched.json()["enabled"] is False
    assert client.delete(f"/api/rules/{rule['id']}/").status_code == 204
    assert client.get(f"/api/rules/{rule['id']}/").status_code == 404


def test_the_list_holds_the_tenants_rules_and_the_builtins_read_only(tenant_a):
    _, client = tenant_a
    create(client, name="high_priority", condition={"FieldGreaterThan": {"field": "priority", "value": 100}})
    listed = client.get("/api/rules/", {"limit": 500}).json()
    rows = listed["results"]
    assert listed["count"] == len(BUILTIN_RULES) + 1
    own = [r for r in rows if not r["builtin"]]
    builtins = {r["name"]: r for r in rows if r["builtin"]}
    assert [r["name"] for r in own] == ["high_priority"]
    assert set(builtins) == set(BUILTIN_RULES)
    assert builtins["high_priority"]["shadowed"] is True and builtins["has_content"]["shadowed"] is False
    assert builtins["has_content"]["id"] is None and "not empty" in builtins["has_content"]["description"]


def test_a_bad_condition_is_a_400_listing_every_problem(tenant_a):
    _, client = tenant_a
    response = create(client, name="broken", condition={"And": [
        {"type": "Nope"}, "missing_rule", {"Expression": "data.x >"},
        {"FieldMatches": {"field": "a", "pattern": "("}}]})
    assert response.status_code == 400
    problems = response.json()["condition"]
    assert [p.split(":")[0] for p in problems] == ["$.And[0].type", "$.And[1]", "$.And[2].Expression",
                                                   "$.And[3].FieldMatches.pattern"]
    assert not Rule.objects.filter(name="broken").exists()


def test_bad_bodies_are_field_errors(tenant_a):
    _, client = tenant_a
    response = create(client, name="Not a slug!", condition=[], colour="red")
    assert response.status_code == 400 and response.json() == {"colour": ["Unknown field."]}
    response = create(client, name="Not a slug!", condition=[])
    assert response.status_code == 400 and set(response.json()) == {"name"}
    assert create(client, name="x").status_code == 400
    assert client.post("/api/rules/", "not json", content_type="application/json").status_code == 400


def test_a_taken_name_is_a_400_naming_the_field(tenant_a, tenant_b):
    _, client_a = tenant_a
    _, client_b = tenant_b
    assert create(client_a, name="same", condition=[]).status_code == 201
    duplicate = create(client_a, name="same", condition=[])
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["name"]
    assert "already has a rule named 'same'" in duplicate.json()["name"][0]
    other = create(client_a, name="other", condition=[]).json()
    renamed = client_a.patch(f"/api/rules/{other['id']}/", {"name": "same"}, format="json")
    assert renamed.status_code == 400 and list(renamed.json()) == ["name"]
    assert create(client_b, name="same", condition=[]).status_code == 201  # names are per tenant


def test_cycles_and_breaking_references_are_refused(tenant_a):
    _, client = tenant_a
    a = create(client, name="a", condition={"FieldExists": "x"}).json()
    b = create(client, name="b", condition=["a"]).json()
    cyclic = client.patch(f"/api/rules/{a['id']}/", {"condition": {"Not": "b"}}, format="json")
    assert cyclic.status_code == 400
    assert cyclic.json()["condition"] == ["$.Not → rule 'b' at $[0]: named rules form a cycle: a → b → a"]
    # b needs a: deleting, renaming or disabling a would leave b unable to compile
    for attempt in (lambda: client.delete(f"/api/rules/{a['id']}/"),
                    lambda: client.patch(f"/api/rules/{a['id']}/", {"name": "a2"}, format="json"),
                    lambda: client.patch(f"/api/rules/{a['id']}/", {"enabled": False}, format="json")):
        response = attempt()
        assert response.status_code == 409 and response.json()["code"] == "rule_in_use"
        assert "b" in response.json()["detail"]
    assert client.delete(f"/api/rules/{b['id']}/").status_code == 204
    assert client.delete(f"/api/rules/{a['id']}/").status_code == 204


def test_deleting_a_shadowing_rule_lets_the_builtin_show_through(tenant_a):
    _, client = tenant_a
    shadow = create(client, name="has_content", condition={"FieldExists": "data.body"}).json()
    create(client, name="uses", condition=["has_content"])
    body = {"rule": "uses", "data": {"body": "x"}}
    assert client.post("/api/rules/evaluate/", body, format="json").json()["passed"] is True
    assert client.delete(f"/api/rules/{shadow['id']}/").status_code == 204
    assert client.post("/api/rules/evaluate/", body, format="json").json()["passed"] is False


def test_another_tenants_rule_looks_missing(tenant_a, tenant_b):
    _, client_a = tenant_a
    _, client_b = tenant_b
    foreign = create(client_b, name="secret", condition={"FieldExists": "x"}).json()
    for url in (f"/api/rules/{foreign['id']}/", "/api/rules/999999999/", "/api/rules/not-an-id/"):
        response = client_a.get(url)
        assert response.status_code == 404
        assert client_a.patch(url, {"description": "pwned"}, format="json").status_code == 404
        assert client_a.delete(url).status_code == 404
    assert client_a.get(f"/api/rules/{foreign['id']}/").json()["detail"].replace(str(foreign["id"]), "N") == \
        client_a.get("/api/rules/999999999/").json()["detail"].replace("999999999", "N")
    assert "secret" not in str(client_a.get("/api/rules/", {"limit": 500}).json())
    # nor can tenant A's conditions reference B's rule
    response = client_a.post("/api/rules/evaluate/", {"condition": "secret"}, format="json")
    assert response.status_code == 400 and "unknown named rule 'secret'" in response.json()["condition"][0]
    assert Rule.objects.get(pk=foreign["id"]).description == ""


def test_evaluate_explains_the_result(tenant_a):
    _, client = tenant_a
    create(client, name="urgent", condition={"Or": ["critical_priority", "emergency_flag"]})
    response = client.post("/api/rules/evaluate/", {
        "condition": {"And": ["urgent", {"Expression": "token.id == 3 && data.priority > 8"}]},
        "data": {"priority": 9}, "metadata": {}, "facts": {"token": {"id": 3}}}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["passed"] is True
    assert body["condition"] == {"type": "And", "conditions": [
        {"type": "Rule", "name": "urgent"}, {"type": "Expression", "expression": "token.id == 3 && data.priority > 8"}]}
    urgent, expression = body["explanation"]["children"]
    assert urgent["name"] == "urgent"
    assert urgent["children"][0]["children"][0]["children"][0]["seen"] == 9  # Or → critical_priority → field test
    assert urgent["children"][0]["children"][1]["skipped"] is True  # Or stopped at its first success
    assert expression["value"] is True

    failing = client.post("/api/rules/evaluate/", {"rule": "high_priority", "metadata": {"priority": "3"}},
                          format="json").json()
    assert failing["passed"] is False and failing["explanation"]["children"][0]["resolved"] == "metadata.priority"
    assert client.post("/api/rules/evaluate/", {"condition": None}, format="json").json()["passed"] is True


def test_evaluate_runtime_errors_are_explained_not_500(tenant_a):
    _, client = tenant_a
    response = client.post("/api/rules/evaluate/", {"condition": {"Expression": "data.nope > 1"}}, format="json")
    assert response.status_code == 200
    assert response.json()["passed"] is False and "no such key" in response.json()["explanation"]["error"]


@pytest.mark.parametrize(("body", "field"), [
    ({"condition": {"Bogus": 1}}, "condition"),
    ({"rule": "no_such_rule"}, "rule"),
    ({}, "condition"),
    ({"condition": [], "rule": "has_content"}, "condition"),
    ({"condition": [], "data": [1, 2]}, "data"),
    ({"condition": [], "dta": {}}, "dta"),
    ({"condition": [], "facts": {"data": {}}}, "facts"),
])
def test_evaluate_bad_bodies_are_400_naming_the_field(tenant_a, body, field):
    _, client = tenant_a
    response = client.post("/api/rules/evaluate/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_permissions(tenant_a):
    tenant, client = tenant_a
    _, read_only = factories.api_key(tenant, scopes=["read"])
    _, inference = factories.api_key(tenant, scopes=["inference"])
    reader = factories.api_client(read_only)
    assert reader.get("/api/rules/").status_code == 200
    assert create(reader, name="x", condition=[]).status_code == 403
    assert factories.api_client(inference).get("/api/rules/").status_code == 403
    assert factories.api_client("cb-nope").get("/api/rules/").status_code == 401

    member = factories.user(tenant_obj=tenant, role=Membership.Role.MEMBER)
    from rest_framework.test import APIClient

    session = APIClient()
    session.force_login(member)
    assert session.get("/api/rules/").status_code == 200
    assert session.post("/api/rules/", {"name": "x", "condition": []}, format="json").status_code == 403


def test_openapi_schema_lists_the_rules_api():
    from rest_framework.test import APIClient

    text = APIClient().get("/api/schema/").content.decode()
    assert "/api/rules/evaluate/" in text and "/api/rules/{id}/" in text
    assert "EvaluateRequest" in text and "ListedRule" in text
