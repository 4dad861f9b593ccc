"""The management API: definitions in JSON and YAML, versions, analysis, export; instances, firing, tokens;
400/404/409 with messages; tenant isolation of every endpoint."""

from __future__ import annotations

import copy
import uuid

import pytest
import yaml

from tests import factories

from .nets import DOCUMENT_REVIEW, PARALLEL_REVIEW

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    tenant, client = factories.admin_api(f"wf-{uuid.uuid4().hex[:8]}")
    client.tenant = tenant
    return client


def post(client, url, body=None, **kwargs):
    return client.post(url, body if body is not None else {}, format="json", **kwargs)


def test_definitions_json_and_yaml_versions_analysis_export(api):
    created = post(api, "/api/workflows/", DOCUMENT_REVIEW)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["id"] == "document_review" and body["version"] == 1 and body["sound"] is True
    assert body["places"] == DOCUMENT_REVIEW["places"]
    assert body["transitions"][0] == {"id": "submit", "name": "", "from_places": ["draft"],
                                      "to_place": "pending_review", "to_places": ["pending_review"]}
    again = post(api, "/api/workflows/", DOCUMENT_REVIEW)
    assert again.status_code == 200 and again.json()["version_created"] is False
    text = yaml.safe_dump(PARALLEL_REVIEW)
    from_yaml = api.post("/api/workflows/", text, content_type="application/yaml")
    assert from_yaml.status_code == 201, from_yaml.json()
    assert [w["id"] for w in api.get("/api/workflows/").json()["results"]] == ["document_review", "parallel_review"]

    changed = copy.deepcopy(DOCUMENT_REVIEW)
    changed["name"] = "Document review v2"
    updated = api.put("/api/workflows/document_review/", changed, format="json")
    assert updated.status_code == 200 and updated.json()["version"] == 2
    versions = api.get("/api/workflows/document_review/versions/").json()["results"]
    assert [v["number"] for v in versions] == [2, 1]
    analysis = api.get("/api/workflows/document_review/analysis/").json()
    assert analysis["sound"] is True and analysis["findings"] == [] and analysis["version"] == 2
    exported = api.get("/api/workflows/parallel_review/export/?format=yaml")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/yaml")
    reloaded = yaml.safe_load(exported.content)
    assert reloaded["transitions"][0]["outputs"] == ["legal", "technical"]
    as_json = api.get("/api/workflows/parallel_review/export/?format=json").json()
    assert as_json == reloaded
    # The export loads back as the same definition: no new version.
    assert post(api, "/api/workflows/", as_json).json()["version_created"] is False
    assert api.get("/api/workflows/document_review/export/?version=1").json()["name"] == "Document review"
    assert api.get("/api/workflows/document_review/export/?version=9").status_code == 404
    source = api.get("/api/workflows/document_review/export/?form=source&version=1").json()
    assert source == DOCUMENT_REVIEW  # as it was submitted, in the original's shape

    mismatched = api.put("/api/workflows/document_review/", PARALLEL_REVIEW, format="json")
    assert mismatched.status_code == 400 and mismatched.json()["param"] == "id"
    assert api.delete("/api/workflows/parallel_review/").status_code == 204
    assert api.get("/api/workflows/parallel_review/").status_code == 404


def test_bad_definitions_are_400s_listing_every_problem(api):
    bad = post(api, "/api/workflows/", {"id": "bad", "places": ["a", "a", "b"], "initial_place": "a",
                                        "transitions": [{"id": "t", "from_places": ["a"], "to_plcae": "b"},
                                                        {"id": "u", "inputs": [{"place": "a", "weight": 0}]}]})
    assert bad.status_code == 400
    body = bad.json()
    assert body["code"] == "invalid_definition"
    assert "Duplicate place id 'a'." in body["problems"]
    assert "Unknown field 'to_plcae' in transition 't'." in body["problems"]
    assert any("weight 0" in p for p in body["problems"])
    assert post(api, "/api/workflows/", [1, 2]).status_code == 400
    broken_yaml = api.post("/api/workflows/", "places: [a\n", content_type="application/yaml")
    assert broken_yaml.status_code == 400 and "YAML" in broken_yaml.json()["detail"]
    unsound = {"id": "unsound", "places": ["s", "a", "b", "c", "end"], "initial_place": "s", "final_places": ["end"],
               "transitions": [{"id": "split", "from_places": ["s"], "to_places": ["a", "b"]},
                               {"id": "left", "from_places": ["a"], "to_place": "c"},
                               {"id": "right", "from_places": ["b"], "to_place": "end"},
                               {"id": "join", "from_places": ["c", "b"], "to_place": "end"}]}
    strict = post(api, "/api/workflows/?strict=true", unsound)
    assert strict.status_code == 400 and strict.json()["analysis"]["sound"] is False
    assert any("path: split" in p for p in strict.json()["problems"])
    assert post(api, "/api/workflows/", unsound).json()["sound"] is False


def test_nul_characters_in_a_definition_are_a_400_not_a_500(api):
    """The document is read by the net parser, not a serializer field: PostgreSQL's refusal of U+0000 in text
    becomes the API's 400 (apps.core.api.exception_handler), and nothing is saved."""
    refused = post(api, "/api/workflows/", {**DOCUMENT_REVIEW, "description": "a\u0000b"})
    assert refused.status_code == 400
    assert refused.json() == {"non_field_errors": ["Text may not contain NUL characters."]}
    assert api.get("/api/workflows/document_review/").status_code == 404


def test_instances_transitions_fire_and_cancel(api):
    post(api, "/api/workflows/", DOCUMENT_REVIEW)
    created = post(api, "/api/workflow-instances/", {"workflowId": "document_review",
                                                     "initialData": {"title": "My Document"}})
    assert created.status_code == 201, created.json()
    instance = created.json()
    assert instance["status"] == "running" and instance["current_place"] == "draft"
    assert instance["marking"] == {"draft": 1} and instance["tokens"][0]["data"] == {"title": "My Document"}
    token_id = instance["tokens"][0]["id"]
    url = f"/api/workflow-instances/{instance['id']}/"
    listing = {t["id"]: t for t in api.get(url + "transitions/").json()["transitions"]}
    assert listing["submit"]["enabled"] is True and listing["approve"]["enabled"] is False
    assert listing["approve"]["missing"] == {"reviewed": 1}
    fired = post(api, url + "fire/", {"transition_id": "submit"})
    assert fired.status_code == 200, fired.json()
    assert fired.json()["token"]["id"] == token_id and fired.json()["token"]["place"] == "pending_review"
    refused = post(api, url + "fire/", {"transitionId": "approve", "tokenId": token_id})
    assert refused.status_code == 409
    assert refused.json()["code"] == "transition_not_enabled" and refused.json()["explanation"]["reasons"]
    unknown = post(api, url + "fire/", {"transition_id": "nope"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_transition"
    extra = post(api, url + "fire/", {"transition_id": "review", "colour": "red"})
    assert extra.status_code == 400 and extra.json() == {"colour": ["Unknown field."]}
    assert post(api, url + "fire/", {"transition_id": "review", "data": [1]}).status_code == 400
    assert post(api, url + "cancel/", {"reason": "test"}).json()["status"] == "cancelled"
    assert post(api, url + "cancel/").status_code == 409
    events = api.get(url + "events/").json()["results"]
    assert [e["type"] for e in events] == ["instance_created", "token_created", "transition_fired",
                                           "instance_cancelled"]
    after = api.get(url + f"events/?after={events[1]['id']}").json()["results"]
    assert [e["type"] for e in after] == ["transition_fired", "instance_cancelled"]
    assert post(api, "/api/workflow-instances/", {"workflow_id": "missing"}).status_code == 404
    assert post(api, "/api/workflow-instances/", {"workflow_id": "document_review", "data": "x"}).status_code == 400


def test_tokens_create_find_fire_update_history(api):
    post(api, "/api/workflows/", DOCUMENT_REVIEW)
    created = post(api, "/api/tokens/", {"workflow_id": "document_review", "place": "draft",
                                         "data": {"title": "My Document"}})
    assert created.status_code == 201, created.json()
    token = created.json()
    assert token["place"] == "draft" and token["workflow_id"] == "document_review"
    found = api.get("/api/tokens/?workflow_id=document_review&place=draft").json()["results"]
    assert [t["id"] for t in found] == [token["id"]]
    fired = post(api, f"/api/tokens/{token['id']}/fire/", {"transition_id": "submit", "data": {"by": "me"}})
    assert fired.status_code == 200 and fired.json()["token"]["id"] == token["id"]
    assert api.get("/api/tokens/?workflow_id=document_review&place=draft").json()["results"] == []
    patched = api.patch(f"/api/tokens/{token['id']}/", {"data": {"tags": ["x"]}}, format="json")
    assert patched.status_code == 200 and patched.json()["data"] == {"title": "My Document", "by": "me",
                                                                      "tags": ["x"]}
    detail = api.get(f"/api/tokens/{token['id']}/").json()
    assert [h["kind"] for h in detail["history"]] == ["created", "moved", "data_updated"]
    assert detail["history"][1]["transition"] == "submit" and detail["history"][1]["to_place"] == "pending_review"
    assert api.get(f"/api/tokens/{token['id']}/history/").json() == detail["history"]
    assert post(api, "/api/tokens/", {"workflow_id": "document_review", "place": "x"}).status_code == 400
    assert post(api, "/api/tokens/", {"place": "draft"}).status_code == 400


def test_every_endpoint_hides_other_tenants_objects(api):
    post(api, "/api/workflows/", DOCUMENT_REVIEW)
    post(api, "/api/workflows/", PARALLEL_REVIEW)  # only this tenant has it
    instance = post(api, "/api/workflow-instances/", {"workflow_id": "document_review"}).json()
    token_id = instance["tokens"][0]["id"]
    _, other = factories.admin_api(f"wf-other-{uuid.uuid4().hex[:8]}")
    post(other, "/api/workflows/", DOCUMENT_REVIEW)  # the same slug, its own
    missing_instance, missing_token = str(uuid.uuid4()), str(uuid.uuid4())
    reads = ["/api/workflows/{w}/", "/api/workflows/{w}/versions/", "/api/workflows/{w}/analysis/",
             "/api/workflows/{w}/export/", "/api/workflow-instances/{i}/", "/api/workflow-instances/{i}/transitions/",
             "/api/workflow-instances/{i}/events/", "/api/tokens/{t}/", "/api/tokens/{t}/history/"]
    for template in reads:
        foreign = other.get(template.format(w="parallel_review", i=instance["id"], t=token_id))
        missing = other.get(template.format(w="nope", i=missing_instance, t=missing_token))
        assert foreign.status_code == missing.status_code == 404, template
        assert foreign.json()["code"] == missing.json()["code"], template
    writes = [("post", "/api/workflow-instances/{i}/fire/", {"transition_id": "submit"}),
              ("post", "/api/workflow-instances/{i}/cancel/", {}),
              ("post", "/api/tokens/{t}/fire/", {"transition_id": "submit"}),
              ("patch", "/api/tokens/{t}/", {"data": {"x": 1}})]
    for method, template, body in writes:
        for i, t in ((instance["id"], token_id), (missing_instance, missing_token)):
            response = getattr(other, method)(template.format(i=i, t=t), body, format="json")
            assert response.status_code == 404, (template, response.json())
    assert post(other, "/api/tokens/", {"instance_id": instance["id"], "place": "draft"}).status_code == 404
    assert post(other, "/api/workflow-instances/", {"workflow_id": "parallel_review"}).status_code == 404
    assert other.put("/api/workflows/parallel_review/", PARALLEL_REVIEW, format="json").status_code == 404
    assert other.delete("/api/workflows/parallel_review/").status_code == 404
    assert other.get(f"/api/tokens/?instance_id={instance['id']}").status_code == 404
    assert other.get("/api/workflow-instances/").json()["results"] == []
    assert other.get("/api/tokens/").json()["results"] == []
    assert other.get("/api/workflows/document_review/").json()["version"] == 1
    # Nothing changed for the owner.
    assert api.get(f"/api/workflow-instances/{instance['id']}/").json()["marking"] == {"draft": 1}


def test_read_keys_read_and_do_not_write():
    tenant = factories.tenant(f"wf-read-{uuid.uuid4().hex[:6]}")
    _, secret = factories.api_key(tenant, scopes=["read"])
    client = factories.api_client(secret)
    assert client.get("/api/workflows/").status_code == 200
    assert post(client, "/api/workflows/", DOCUMENT_REVIEW).status_code == 403
    assert factories.api_client("cb-nope").get("/api/workflows/").status_code == 401


def test_the_endpoints_are_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ["/api/workflows/", "/api/workflows/{id}/export/", "/api/workflow-instances/{id}/fire/",
                 "/api/tokens/{id}/fire/", "/api/tokens/{id}/history/", "/api/workflow-instances/{id}/transitions/"]:
        assert path in paths, path
