"""The management REST API as its users call it: API keys with the admin scope, and admin sessions."""

import pytest
from rest_framework.test import APIClient

from apps.providers.models import Provider, ProviderCredential
from apps.tenants.models import Membership
from apps.tenants.selectors import api_key_from_secret
from tests.providers import factories as provider_factories
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db

SECRET = "sk-tenant-own-provider-key-7777"



@pytest.fixture
def tenant_a():
    return tenant_factories.admin_api("tenant-a")


@pytest.fixture
def tenant_b():
    return tenant_factories.admin_api("tenant-b")


def test_unauthenticated_and_wrong_keys_are_refused():
    assert APIClient().get("/api/keys/").status_code in (401, 403)
    response = tenant_factories.api_client("cb-not-a-real-key").get("/api/keys/")
    assert response.status_code == 401
    assert "Invalid" in response.json()["detail"]
    _, inference_only = tenant_factories.api_key(tenant_factories.tenant())
    assert tenant_factories.api_client(inference_only).get("/api/keys/").status_code == 403


def test_api_key_lifecycle(tenant_a):
    tenant, client = tenant_a
    response = client.post("/api/keys/", {"name": "ci", "scopes": ["inference"], "project_label": "web"},
                           format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["key"].startswith("cb-") and created["hint"] == f"cb-…{created['key'][-4:]}"
    assert "no-store" in response["Cache-Control"]
    assert api_key_from_secret(created["key"]).project_label == "web"

    listed = client.get("/api/keys/").json()["results"]
    assert {k["name"] for k in listed} == {"test", "ci"}
    assert all("key" not in k for k in listed)
    assert created["key"] not in str(client.get(f"/api/keys/{created['id']}/").json())

    patched = client.patch(f"/api/keys/{created['id']}/", {"scopes": ["inference", "read"]}, format="json")
    assert patched.status_code == 200 and patched.json()["scopes"] == ["inference", "read"]

    assert client.delete(f"/api/keys/{created['id']}/").status_code == 204
    assert client.get(f"/api/keys/{created['id']}/").json()["status"] == "revoked"
    assert api_key_from_secret(created["key"]) is None


def test_key_validation_errors_are_field_errors(tenant_a):
    _, client = tenant_a
    response = client.post("/api/keys/", {"name": "", "scopes": ["root"], "expires_at": "soon"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"name", "scopes", "expires_at"}
    assert client.post("/api/keys/", "not json", content_type="application/json").status_code == 400


def test_cross_tenant_objects_look_missing(tenant_a, tenant_b):
    a, client_a = tenant_a
    b, client_b = tenant_b
    b_key, _ = tenant_factories.api_key(b)
    b_provider = provider_factories.provider(b)
    b_credential = provider_factories.credential(b_provider)
    for url in (f"/api/keys/{b_key.pk}/", f"/api/providers/{b_provider.pk}/", f"/api/credentials/{b_credential.pk}/"):
        response = client_a.get(url)
        missing = client_a.get(url.rsplit("/", 2)[0] + "/999999/")
        assert response.status_code == 404
        assert response.json() == missing.json()
        assert client_a.delete(url).status_code == 404
        assert client_a.patch(url, {"name": "pwned"}, format="json").status_code == 404
    assert client_a.post(f"/api/keys/{b_key.pk}/revoke/").status_code == 404
    b_key.refresh_from_db()
    assert b_key.revoked_at is None
    # Nor can A attach a credential to B's provider.
    response = client_a.post("/api/credentials/", {"provider": b_provider.pk, "api_key": "sk-x"}, format="json")
    assert response.status_code == 400 and "provider" in response.json()
    assert [t["slug"] for t in client_a.get("/api/tenants/").json()["results"]] == ["tenant-a"]
    assert client_a.get("/api/tenants/tenant-b/").status_code == 404


def test_provider_and_credential_crud_never_returns_the_secret(tenant_a):
    _, client = tenant_a
    response = client.post("/api/providers/", {"slug": "my-openai", "name": "Mine", "type": "openai_compatible",
                                                "base_url": "https://llm.example.com/v1/"}, format="json")
    assert response.status_code == 201, response.json()
    provider = response.json()
    assert provider["base_url"] == "https://llm.example.com/v1" and provider["owner"] == "tenant"

    response = client.post("/api/credentials/",
                           {"provider": provider["id"], "name": "k1", "api_key": SECRET}, format="json")
    assert response.status_code == 201, response.json()
    credential = response.json()
    assert "api_key" not in credential and credential["hint"] == "sk-…7777"
    assert SECRET not in str(client.get("/api/credentials/").json())
    assert ProviderCredential.objects.get(pk=credential["id"]).secret() == SECRET
    assert client.get(f"/api/providers/{provider['id']}/").json()["key_hints"] == ["sk-…7777"]

    rotated = client.patch(f"/api/credentials/{credential['id']}/", {"api_key": "sk-new-rotated-key-0001"},
                           format="json")
    assert rotated.status_code == 200
    assert rotated.json()["hint"] == "sk-…0001" and rotated.json()["rotated_at"]

    assert client.delete(f"/api/providers/{provider['id']}/").status_code == 204
    assert not ProviderCredential.objects.filter(pk=credential["id"]).exists()


@pytest.mark.parametrize(("payload", "field"), [
    ({"slug": "x", "name": "x", "type": "azure"}, "base_url"),
    ({"slug": "x", "name": "x", "type": "openai", "base_url": "ftp://example.com"}, "base_url"),
    ({"slug": "x", "name": "x", "type": "openai", "base_url": "https://user:pw@example.com"}, "base_url"),
    ({"slug": "x", "name": "x", "type": "teleport"}, "type"),
    ({"slug": "not a slug", "name": "x", "type": "openai"}, "slug"),
    ({"slug": "x", "name": "x", "type": "openai", "options": [1, 2]}, "options"),
    ({"slug": "x", "name": "x", "type": "openai", "priority": "high"}, "priority"),
])
def test_invalid_provider_input_is_a_400_with_field_errors(tenant_a, payload, field):
    _, client = tenant_a
    response = client.post("/api/providers/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_private_base_urls_refused_when_not_allowed(tenant_a, settings):
    settings.ALLOW_PRIVATE_UPSTREAMS = False
    _, client = tenant_a
    for url in ("http://127.0.0.1:8080/v1", "http://169.254.169.254/latest", "http://localhost:11434"):
        response = client.post("/api/providers/", {"slug": "p", "name": "p", "type": "ollama", "base_url": url},
                               format="json")
        assert response.status_code == 400 and "base_url" in response.json(), url


def test_duplicate_slug_is_a_400(tenant_a, tenant_b):
    _, client_a = tenant_a
    _, client_b = tenant_b
    body = {"slug": "same", "name": "x", "type": "openai"}
    assert client_a.post("/api/providers/", body, format="json").status_code == 201
    duplicate = client_a.post("/api/providers/", body, format="json")
    # The API's uniqueness rule: a 400 naming the submitted field (not the tenant, not a non-field error).
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["slug"], duplicate.json()
    assert client_b.post("/api/providers/", body, format="json").status_code == 201  # per tenant


def test_a_duplicate_the_database_catches_is_the_same_400(tenant_a, monkeypatch):
    """Two writers at once both pass full_clean; the loser hits the unique constraint: the same 400 on the field,
    not a 500 (simulated by skipping the constraint check full_clean does)."""
    _, client = tenant_a
    body = {"slug": "raced", "name": "x", "type": "openai"}
    assert client.post("/api/providers/", body, format="json").status_code == 201
    monkeypatch.setattr(Provider, "validate_constraints", lambda self, exclude=None: None)
    lost = client.post("/api/providers/", body, format="json")
    assert lost.status_code == 400 and list(lost.json()) == ["slug"], lost.json()
    assert "already exists" in lost.json()["slug"][0]
    assert Provider.objects.filter(slug="raced").count() == 1


def test_global_providers_are_visible_but_read_only(tenant_a):
    _, client = tenant_a
    global_provider = provider_factories.provider(None, slug="shared-openai")
    listed = {p["slug"]: p for p in client.get("/api/providers/").json()["results"]}
    assert listed["shared-openai"]["owner"] == "global"
    assert client.patch(f"/api/providers/{global_provider.pk}/", {"name": "mine"}, format="json").status_code == 403
    assert client.delete(f"/api/providers/{global_provider.pk}/").status_code == 403
    response = client.post("/api/credentials/", {"provider": global_provider.pk, "api_key": "sk-x"}, format="json")
    assert response.status_code == 400
    assert Provider.objects.get(pk=global_provider.pk).name == "shared-openai"


def test_catalogue_read_for_all_write_for_staff(tenant_a, client, django_user_model, catalogue):
    _, api = tenant_a
    response = api.get("/api/models/?limit=500")
    assert response.status_code == 200
    assert "gpt-4o" in {m["model_id"] for m in response.json()["results"]}
    body = {"model_id": "my-model", "provider_type": "openai", "input_price": 0.000001, "output_price": 0.000002}
    assert api.post("/api/models/", body, format="json").status_code == 403

    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    session = APIClient()
    session.force_login(staff)
    created = session.post("/api/models/", body, format="json")
    assert created.status_code == 201, created.json()
    # Prices are JSON numbers both ways, exactly as sent (the schema says number; a string is refused).
    assert (created.json()["input_price"], created.json()["output_price"]) == (0.000001, 0.000002)
    as_string = session.post("/api/models/", {**body, "model_id": "m3", "input_price": "0.000001"}, format="json")
    assert as_string.status_code == 400 and as_string.json() == {"input_price": ["Must be a number."]}
    bad = session.post("/api/models/", {**body, "model_id": "m2", "aliases": "not-a-list"}, format="json")
    assert bad.status_code == 400 and "aliases" in bad.json()


def test_session_users_act_by_role(client, django_user_model):
    tenant = tenant_factories.tenant("acme")
    other = tenant_factories.tenant("other")
    viewer = tenant_factories.user(tenant_obj=tenant, role=Membership.Role.VIEWER)
    admin = tenant_factories.user(tenant_obj=tenant, role=Membership.Role.ADMIN)
    session = APIClient()
    session.force_login(viewer)
    assert session.get("/api/keys/").status_code == 200
    assert session.post("/api/keys/", {"name": "x"}, format="json").status_code == 403
    session.force_login(admin)
    assert session.post("/api/keys/", {"name": "x"}, format="json").status_code == 201
    assert session.get("/api/keys/", HTTP_X_CB_TENANT="other").status_code == 404
    assert other.api_keys.count() == 0


def test_openapi_schema_and_docs():
    client = APIClient()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/keys/", "/api/providers/", "/api/credentials/", "/api/models/", "/api/tenants/"):
        assert path in text
    assert client.get("/api/docs/").status_code == 200
