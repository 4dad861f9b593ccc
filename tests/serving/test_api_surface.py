"""What a self-hosted user hits on the management API's edges: Swagger UI offline, both URL spellings, strict
bodies and query parameters, and WebSocket paths nobody serves."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.factories import admin_api

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_loads_only_local_assets_and_they_are_served(server_factory):
    server = server_factory()
    page = httpx.get(f"{server.url}/api/docs/", timeout=10)
    assert page.status_code == 200
    assert "cdn.jsdelivr.net" not in page.text and "https://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any("swagger-ui-bundle" in a for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert httpx.get(f"{server.url}{asset}", timeout=10).status_code == 200, asset


def test_unknown_websocket_path_is_refused_on_the_handshake_without_a_traceback(server_factory):
    server = server_factory()

    async def connect(path):
        async with websockets.connect(f"ws://127.0.0.1:{server.openai_port}{path}", open_timeout=5):
            pass

    for path in ("/nope", "/ws/unknown/deeper", "/api/providers/"):
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(connect(path))
        assert refused.value.response.status_code == 403
    assert "Traceback" not in server.output() and "No route found" not in server.output()


@pytest.mark.parametrize("path", ["/api/analytics/summary", "/api/analytics/summary/", "/api/analytics/daily",
                                  "/api/analytics/breakdown/model", "/api/providers", "/api/budgets",
                                  "/api/workflows", "/api/rules/evaluate"])
def test_every_api_route_answers_with_or_without_the_trailing_slash(path):
    _, client = admin_api("slashes")
    response = client.post(path, {"condition": None}, format="json") if path.endswith("evaluate") \
        else client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json")


def test_unknown_body_fields_are_a_400_naming_them():
    tenant, client = admin_api("strict-bodies")
    response = client.post("/api/virtual-models/", {"name": "mine", "models": ["gpt-4o"]}, format="json")
    assert response.status_code == 400 and response.json() == {"models": ["Unknown field."]}
    assert not tenant.virtual_models.exists() if hasattr(tenant, "virtual_models") else True
    response = client.post("/api/cost-rules/", {"name": "r", "action": "route_to_model", "colour": "red",
                                                "params": {"model": "gpt-4o-mini"}}, format="json")
    assert response.status_code == 400 and response.json() == {"colour": ["Unknown field."]}


def test_writing_a_read_only_field_is_a_400_naming_it():
    _, client = admin_api("strict-readonly")
    response = client.post("/api/providers/", {"slug": "mine", "name": "Mine", "type": "openai", "source": "env"},
                           format="json")
    assert response.status_code == 400 and response.json() == {"source": ["This field is read-only."]}
    created = client.post("/api/providers/", {"slug": "mine", "name": "Mine", "type": "openai"}, format="json")
    assert created.status_code == 201, created.json()
    url = f"/api/providers/{created.json()['id']}/"
    assert client.patch(url, {"source": "env"}, format="json").json() == {"source": ["This field is read-only."]}
    assert client.patch(url, {"id": created.json()["id"] + 1}, format="json").status_code == 400
    echoed = client.put(url, {**created.json(), "name": "Renamed"}, format="json")  # GET, edit, PUT back
    assert echoed.status_code == 200 and echoed.json()["name"] == "Renamed"


@pytest.mark.parametrize("query", ["offset=null", "offset=-1", "limit=-1", "limit=0", "limit=abc", "limit=1.5",
                                   "limit=100000"])
def test_bad_pagination_parameters_are_a_400(query):
    _, client = admin_api("strict-pages")
    response = client.get(f"/api/providers/?{query}")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {query.split("=")[0]}


def test_good_pagination_parameters_page():
    _, client = admin_api("pages")
    response = client.get("/api/providers/?limit=1&offset=0")
    assert response.status_code == 200 and len(response.json()["results"]) <= 1


def test_unmatched_api_paths_answer_json_404():
    _, client = admin_api("json-404")
    response = client.get("/api/providers/a.b/")
    assert response.status_code == 404 and response.json()["detail"] == "Not found."


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/providers/", {"slug": "nul", "name": "n", "type": "openai", "options": {"a": ["x\u0000y"]}}, "options"),
    ("/api/providers/", {"slug": "nul", "name": "n", "type": "openai", "options": {"k\u0000": 1}}, "options"),
    ("/api/virtual-models/", {"name": "nul", "candidates": ["gpt\u0000"]}, "candidates"),
    ("/api/cost-rules/", {"name": "r", "action": "route_to_model", "params": {"model": "a\u0000"}}, "params"),
])
def test_nul_characters_inside_json_fields_are_a_400_naming_the_field(path, body, field):
    """PostgreSQL's jsonb cannot store U+0000 (a 500 before); text fields already refuse it, JSON fields too."""
    _, client = admin_api("nul-json")
    response = client.post(path, body, format="json")
    assert response.status_code == 400 and response.json() == {field: ["Text may not contain NUL characters."]}


@pytest.mark.parametrize("query", ["workflow_id=a%00", "status=x%00y", "place=%00&workflow_id=w"])
def test_nul_characters_in_query_parameters_are_a_400_naming_them(query):
    """Filters would hand them to PostgreSQL (a 500 before); every string query parameter's schema says so."""
    _, client = admin_api("nul-query")
    path = "/api/tokens/" if "place" in query else "/api/workflow-instances/"
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400 and response.json() == {query.split("=")[0]: [
        "Text may not contain NUL characters."]}
    parameters = client.get("/api/schema/?format=json").json()["paths"][path]["get"]["parameters"]
    assert {p["name"]: p["schema"].get("pattern") for p in parameters}["workflow_id"] == "^[^\\x00]*$"


def test_the_schema_generates_without_warnings_and_every_answer_has_a_shape(tmp_path):
    """drf-spectacular warns about what it has to guess (an answer, a name); an endpoint added without its
    `extend_schema(responses=…)` shows up here as a free-form answer. The exceptions are free-form by nature."""
    from django.core.management import call_command  # why: only this test generates the schema offline

    target = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(target))
    import json  # why: the file is JSON; only this test reads it

    schema = json.loads(target.read_text())
    free_form = {  # a workflow document as submitted / its analysis findings / its transitions, described in prose
        "GET /api/workflows/{id}/export/", "GET /api/workflows/{id}/analysis/",
        "GET /api/workflow-instances/{id}/transitions/"}
    found = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                shape = (answer.get("content") or {}).get("application/json", {}).get("schema")
                if code.startswith("2") and shape is not None and "$ref" not in shape \
                        and not shape.get("properties") and shape.get("type") != "array":
                    found.add(f"{method.upper()} {path}")
    assert found == free_form
