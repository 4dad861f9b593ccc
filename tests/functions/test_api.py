"""The functions API: validation answers (400 naming fields), staff-only command functions, execute with and
without waiting, filters, and tenant isolation on every endpoint (another tenant's object = 404)."""

from __future__ import annotations

import uuid

import pytest

from tests import factories

from .conftest import python_function

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_db(db):
    tenant, client = factories.admin_api(f"fn-api-{uuid.uuid4().hex[:8]}")
    client.tenant = tenant
    return client


def test_validation_errors_name_the_fields(api_db):
    cases = [
        ({"name": "x", "runtime": "ruby"}, "runtime"),
        ({"name": "", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"}}, "name"),
        ({"name": "x", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"},
          "input_schema": {"type": "nonsense"}}, "input_schema"),
        ({"name": "x", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"},
          "retry_on": ["sometimes"]}, "retry_on"),
        ({"name": "x", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"},
          "timeout_seconds": 0}, "timeout_seconds"),
        ({"name": "x", "runtime": "python", "config": {"callable": "apps.functions.builtins.nope"}}, "config"),
        ({"name": "x", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"},
          "color": "red"}, "color"),
        ({"name": "x", "runtime": "python", "config": {"callable": "apps.functions.builtins.echo"},
          "version": 5}, "version"),
    ]
    for body, field in cases:
        response = api_db.post("/api/functions/", body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert field in response.json(), (field, response.json())
    first = python_function(api_db, "apps.functions.builtins.echo", name="same")
    duplicate = api_db.post("/api/functions/", {"name": "same", "runtime": "python",
                                                "config": {"callable": "apps.functions.builtins.echo"}},
                            format="json")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_name"
    for body, field in [({"function": first["id"], "kind": "custom"}, "config"),
                        ({"function": first["id"], "kind": "token_created", "condition": {"Nope": 1}}, "condition"),
                        ({"function": first["id"], "kind": "custom", "config": {"name": "x"},
                          "input_mapping": {"mode": "template", "template": "{{ oops"}}, "input_mapping"),
                        ({"function": first["id"], "kind": "token_created", "config": {"colour": "x"}}, "config"),
                        ({"function": first["id"], "kind": "earthquake"}, "kind")]:
        response = api_db.post("/api/function-triggers/", body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.json())


def test_execute_refuses_input_that_breaks_the_schema(api_db):
    function = python_function(api_db, "apps.functions.builtins.word_count", input_schema={
        "type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})
    refused = api_db.post(f"/api/functions/{function['id']}/execute/", {"input": {"text": 1}}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "input_invalid"
    assert "text: 1 is not of type 'string'" in refused.json()["detail"]
    not_object = api_db.post(f"/api/functions/{function['id']}/execute/", {"input": [1]}, format="json")
    assert not_object.status_code == 400 and "input" in not_object.json()
    wait_not_bool = api_db.post(f"/api/functions/{function['id']}/execute/", {"input": {}, "wait": "yes"},
                                format="json")
    assert wait_not_bool.status_code == 400 and "wait" in wait_not_bool.json()
    api_db.patch(f"/api/functions/{function['id']}/", {"enabled": False}, format="json")
    disabled = api_db.post(f"/api/functions/{function['id']}/execute/", {"input": {"text": "a"}}, format="json")
    assert disabled.status_code == 409 and disabled.json()["code"] == "function_disabled"


def test_only_staff_define_or_change_command_functions(api_db):
    from rest_framework.test import APIClient

    from apps.tenants.models import Membership

    body = {"name": "ls", "runtime": "command", "config": {"command": "ls -l"}}
    refused = api_db.post("/api/functions/", body, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "staff_only"
    member_admin = APIClient()
    member_admin.force_login(factories.user(tenant_obj=api_db.tenant, role=Membership.Role.ADMIN))
    assert member_admin.post("/api/functions/", body, format="json").status_code == 403
    staff = APIClient()
    staff.force_login(factories.user(tenant_obj=api_db.tenant, role=Membership.Role.ADMIN, is_staff=True))
    created = staff.post("/api/functions/", body, format="json")
    assert created.status_code == 201, created.json()
    function_id = created.json()["id"]
    assert api_db.patch(f"/api/functions/{function_id}/", {"description": "x"}, format="json").status_code == 403
    assert api_db.delete(f"/api/functions/{function_id}/").status_code == 403
    # A python function cannot be turned into a command one by a non-staff caller either.
    echo = python_function(api_db, "apps.functions.builtins.echo")
    turned = api_db.patch(f"/api/functions/{echo['id']}/", {"runtime": "command", "config": {"command": "id"}},
                          format="json")
    assert turned.status_code == 403
    changed = staff.patch(f"/api/functions/{function_id}/", {"description": "lists"}, format="json")
    assert changed.status_code == 200 and changed.json()["version"] == 2
    # Anyone in the tenant may run it (running is not defining).
    assert api_db.get(f"/api/functions/{function_id}/").status_code == 200


def test_tenant_isolation_on_every_endpoint(api_db):
    from apps.functions.launch import execution_create
    from apps.functions.models import Function

    other_tenant, other = factories.admin_api(f"fn-other-{uuid.uuid4().hex[:8]}")
    theirs = python_function(other, "apps.functions.builtins.echo", name="theirs")
    mine = python_function(api_db, "apps.functions.builtins.echo", name="mine")
    their_trigger = other.post("/api/function-triggers/", {"function": theirs["id"], "kind": "custom",
                                                           "config": {"name": "go"}}, format="json").json()
    their_chain = other.post("/api/function-chains/", {"function": theirs["id"], "next_function": python_function(
        other, "apps.functions.builtins.slugify")["id"], "on": "always"}, format="json").json()
    their_run = execution_create(Function.objects.get(pk=theirs["id"]), input={}, trigger="manual")

    assert [f["name"] for f in api_db.get("/api/functions/").json()["results"]] == ["mine"]
    assert api_db.get("/api/function-triggers/").json()["results"] == []
    assert api_db.get("/api/function-chains/").json()["results"] == []
    assert api_db.get("/api/function-executions/").json()["results"] == []
    for method, url, body in [
        ("get", f"/api/functions/{theirs['id']}/", None),
        ("patch", f"/api/functions/{theirs['id']}/", {"description": "x"}),
        ("delete", f"/api/functions/{theirs['id']}/", None),
        ("post", f"/api/functions/{theirs['id']}/execute/", {"input": {}}),
        ("get", f"/api/function-triggers/{their_trigger['id']}/", None),
        ("patch", f"/api/function-triggers/{their_trigger['id']}/", {"enabled": False}),
        ("delete", f"/api/function-triggers/{their_trigger['id']}/", None),
        ("post", "/api/function-triggers/", {"function": theirs["id"], "kind": "custom", "config": {"name": "x"}}),
        ("get", f"/api/function-triggers/?function={theirs['id']}", None),
        ("get", f"/api/function-chains/{their_chain['id']}/", None),
        ("delete", f"/api/function-chains/{their_chain['id']}/", None),
        ("post", "/api/function-chains/", {"function": theirs["id"], "next_function": mine["id"]}),
        ("get", f"/api/function-executions/{their_run.id}/", None),
        ("post", f"/api/function-executions/{their_run.id}/cancel/", None),
        ("get", f"/api/function-executions/?function={theirs['id']}", None),
        ("get", "/api/functions/not-a-uuid/", None),
        ("get", "/api/function-executions/12/", None),
    ]:
        response = getattr(api_db, method)(url, body, format="json") if body is not None else \
            getattr(api_db, method)(url)
        assert response.status_code == 404, (method, url, response.status_code, response.content[:200])
    chained = api_db.post("/api/function-chains/", {"function": mine["id"], "next_function": theirs["id"]},
                          format="json")
    assert chained.status_code == 400 and "next_function" in chained.json()
    # Their custom event name starts nothing of ours, and ours nothing of theirs.
    assert api_db.post("/api/events/", {"name": "go", "data": {}}, format="json").json()["executions"] == []
    assert other_tenant.id != api_db.tenant.id
    assert Function.objects.get(pk=theirs["id"]).description == ""


def test_filters_and_read_only_executions(api_db):
    from apps.functions.launch import execution_create
    from apps.functions.models import Function

    echo = python_function(api_db, "apps.functions.builtins.echo")
    row = execution_create(Function.objects.get(pk=echo["id"]), input={"a": 1}, trigger="manual",
                           context={"instance_id": str(uuid.uuid4())})
    listed = api_db.get(f"/api/function-executions/?function={echo['id']}&status=pending").json()["results"]
    assert [r["id"] for r in listed] == [str(row.id)]
    assert api_db.get(f"/api/function-executions/?instance={row.instance_id}").json()["count"] == 1
    assert api_db.get(f"/api/function-executions/?instance={uuid.uuid4()}").json()["count"] == 0
    assert api_db.get("/api/function-executions/?status=finished").status_code == 400
    assert api_db.get("/api/function-executions/?token=12").status_code == 400
    assert api_db.post("/api/function-executions/", {}, format="json").status_code == 405
    assert api_db.delete(f"/api/function-executions/{row.id}/").status_code == 405
    unauthenticated = api_db.__class__()
    assert unauthenticated.get("/api/functions/").status_code in (401, 403)


def test_secrets_belong_to_their_runtime(api_db):
    wrong = api_db.post("/api/functions/", {"name": "p", "runtime": "python", "hmac_secret": "x" * 20,
                                            "config": {"callable": "apps.functions.builtins.echo"}}, format="json")
    assert wrong.status_code == 400 and "hmac_secret" in wrong.json()
    hook = api_db.post("/api/functions/", {"name": "h", "runtime": "http", "config": {"url": "https://example.com"},
                                           "secret_env": {"A": "b"}}, format="json")
    assert hook.status_code == 400 and "secret_env" in hook.json()
    created = api_db.post("/api/functions/", {"name": "h", "runtime": "http",
                                              "config": {"url": "https://example.com"}}, format="json").json()
    first = created["hmac_secret"]
    to_python = api_db.patch(f"/api/functions/{created['id']}/", {"runtime": "python", "config": {
        "callable": "apps.functions.builtins.echo"}}, format="json")
    assert to_python.status_code == 200 and to_python.json()["has_secret"] is False
    back = api_db.patch(f"/api/functions/{created['id']}/", {"runtime": "http", "config": {
        "url": "https://example.com"}}, format="json").json()
    assert back["has_secret"] is True and back["hmac_secret"] not in ("", first)  # a new one, shown once
