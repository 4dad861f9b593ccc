"""Tenant virtual models and the model route table through the management API and the admin."""

import pytest
from rest_framework.test import APIClient

from apps.providers.models import ModelRoute, VirtualModel
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db


def api(tenant, scopes=("admin",)):
    _, secret = tenant_factories.api_key(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_virtual_model_crud_and_isolation():
    a, b = tenant_factories.tenant("vm-a"), tenant_factories.tenant("vm-b")
    client_a, client_b = api(a), api(b)
    body = {"name": "team-chat", "strategy": "cost_optimized", "candidates": ["gpt-4o-mini", "claude-3-haiku"],
            "constraints": {"max_cost_per_1k_tokens": 0.01}}
    created = client_a.post("/api/virtual-models/", body, format="json")
    assert created.status_code == 201, created.json()
    vm = created.json()
    assert vm["owner"] == "tenant" and vm["candidates"] == ["gpt-4o-mini", "claude-3-haiku"]
    assert VirtualModel.objects.get(pk=vm["id"]).tenant == a
    assert client_b.get(f"/api/virtual-models/{vm['id']}/").status_code == 404
    assert client_b.post("/api/virtual-models/", body, format="json").status_code == 201  # same name, own tenant
    duplicate = client_a.post("/api/virtual-models/", body, format="json")
    assert duplicate.status_code == 400 and list(duplicate.json()) == ["name"]  # duplicate in tenant, on the field
    patched = client_a.patch(f"/api/virtual-models/{vm['id']}/", {"strategy": "performance_first"}, format="json")
    assert patched.status_code == 200 and patched.json()["strategy"] == "performance_first"
    assert client_a.delete(f"/api/virtual-models/{vm['id']}/").status_code == 204


@pytest.mark.parametrize(("payload", "field"), [
    ({"name": "x/y", "strategy": "balanced"}, "name"),
    ({"name": "ok", "strategy": "fastest-ever"}, "strategy"),
    ({"name": "ok", "candidates": "gpt-4o"}, "candidates"),
    ({"name": "ok", "constraints": {"max_cost_per_1k_tokens": -1}}, "constraints"),
    ({"name": "ok", "constraints": {"no_such_option": 1}}, "constraints"),
])
def test_virtual_model_validation(payload, field):
    response = api(tenant_factories.tenant()).post("/api/virtual-models/", payload, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_lists_of_names_refuse_empty_names_and_the_schema_says_so():
    client = api(tenant_factories.tenant())
    for path, body, field in (("/api/virtual-models/", {"name": "ok", "candidates": ["gpt-4o", ""]}, "candidates"),
                              ("/api/routes/", {"model": "m", "primary": "openai", "fallbacks": [""]}, "fallbacks")):
        response = client.post(path, body, format="json")
        assert response.status_code == 400 and list(response.json()) == [field], response.json()
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert schema["VirtualModelRequest"]["properties"]["candidates"]["items"] == {"type": "string", "minLength": 1}
    assert schema["ModelRouteRequest"]["properties"]["fallbacks"]["items"] == {"type": "string", "minLength": 1}


def test_global_virtual_models_are_read_only_for_tenants():
    tenant = tenant_factories.tenant()
    shared = VirtualModel.objects.create(name="company-default", strategy="balanced")
    client = api(tenant)
    listed = {v["name"]: v for v in client.get("/api/virtual-models/").json()["results"]}
    assert listed["company-default"]["owner"] == "global"
    assert client.patch(f"/api/virtual-models/{shared.pk}/", {"strategy": "cost_optimized"},
                        format="json").status_code == 403
    assert client.delete(f"/api/virtual-models/{shared.pk}/").status_code == 403


def test_model_routes():
    tenant = tenant_factories.tenant()
    client = api(tenant)
    created = client.post("/api/routes/", {"model": "gpt-4", "primary": "openai", "fallbacks": ["azure"],
                                            "cost_limit_per_1k": 0.03}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["cost_limit_per_1k"] == 0.03  # a JSON number back, as the schema says
    for method, url in (("post", "/api/routes/"), ("patch", f"/api/routes/{created.json()['id']}/")):
        as_string = getattr(client, method)(url, {"model": "gpt-5", "primary": "openai", "cost_limit_per_1k": "0.03"},
                                            format="json")
        assert as_string.status_code == 400 and as_string.json() == {"cost_limit_per_1k": ["Must be a number."]}
    route = ModelRoute.objects.get(pk=created.json()["id"])
    assert route.as_route() == {"primary": "openai", "fallback": ["azure"], "cost_limit": 0.03}
    bad = client.post("/api/routes/", {"model": "gpt-4o", "primary": "openai", "fallbacks": "azure"}, format="json")
    assert bad.status_code == 400 and "fallbacks" in bad.json()
    assert api(tenant_factories.tenant()).get(f"/api/routes/{route.pk}/").status_code == 404


def test_admin_pages(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    VirtualModel.objects.create(name="company-default", strategy="balanced", candidates=["gpt-4o"])
    ModelRoute.objects.create(model="gpt-4", primary="openai", fallbacks=["azure"])
    for path in ("/admin/providers/virtualmodel/", "/admin/providers/virtualmodel/add/",
                 "/admin/providers/modelroute/", "/admin/providers/modelroute/add/"):
        assert client.get(path).status_code == 200, path
    response = client.post("/admin/providers/virtualmodel/add/", {
        "name": "from-admin", "strategy": "task_specific", "candidates": '["gpt-4o"]',
        "constraints": '{"task_type": "coding"}', "enabled": "on", "description": ""})
    assert response.status_code == 302, response.content[:2000]
    assert VirtualModel.objects.get(name="from-admin").constraints == {"task_type": "coding"}
