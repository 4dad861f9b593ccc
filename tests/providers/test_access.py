"""Access by id: another tenant's row and a missing one are the same 404 on every endpoint family; global rows
are readable and staff's to change (one rule, apps.core.access)."""

import pytest

from apps.core.errors import NotFound, PermissionDenied
from apps.providers.access import (
    credential_access_by_id,
    model_route_access_by_id,
    provider_access_by_id,
    virtual_model_access_by_id,
)
from apps.providers.models import ModelRoute, VirtualModel
from apps.tenants.access import api_key_access_by_id, tenant_access_by_id
from tests.providers import factories as provider_factories
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned():
    """Rows of tenant B, one per endpoint family, by URL prefix."""
    b = tenant_factories.tenant("access-b")
    provider = provider_factories.provider(b)
    key, _ = tenant_factories.api_key(b)
    return b, {
        "/api/providers/": provider.pk,
        "/api/credentials/": provider_factories.credential(provider).pk,
        "/api/keys/": key.pk,
        "/api/virtual-models/": VirtualModel.objects.create(tenant=b, name="b-only").pk,
        "/api/routes/": ModelRoute.objects.create(tenant=b, model="gpt-4", primary="openai").pk,
    }


def test_every_family_answers_foreign_and_missing_alike(owned):
    _, rows = owned
    _, client_a = tenant_factories.admin_api("access-a")
    for prefix, pk in rows.items():
        for method, args in (("get", ()), ("patch", ({"name": "pwned"},)), ("delete", ())):
            call = getattr(client_a, method)
            foreign = call(f"{prefix}{pk}/", *args, format="json")
            missing = call(f"{prefix}999999/", *args, format="json")
            malformed = call(f"{prefix}not-an-id/", *args, format="json")
            assert foreign.status_code == missing.status_code == malformed.status_code == 404, (prefix, method)
            assert foreign.json() == missing.json() == malformed.json()


def test_owner_reaches_its_rows(owned):
    b, rows = owned
    _, secret = tenant_factories.api_key(b, scopes=["admin"])
    client_b = tenant_factories.api_client(secret)
    for prefix, pk in rows.items():
        assert client_b.get(f"{prefix}{pk}/").status_code == 200, prefix


def test_helpers_apply_the_one_rule(owned):
    b, rows = owned
    a = tenant_factories.tenant("access-c")
    shared = provider_factories.provider(None)
    global_vm = VirtualModel.objects.create(name="shared-vm")
    for helper, pk in ((provider_access_by_id, rows["/api/providers/"]),
                       (credential_access_by_id, rows["/api/credentials/"]),
                       (api_key_access_by_id, rows["/api/keys/"]),
                       (virtual_model_access_by_id, rows["/api/virtual-models/"]),
                       (model_route_access_by_id, rows["/api/routes/"])):
        assert helper(b, pk, for_write=True).pk == pk
        with pytest.raises(NotFound):
            helper(a, pk)
    assert provider_access_by_id(a, shared.pk).pk == shared.pk  # global: readable
    with pytest.raises(PermissionDenied):
        provider_access_by_id(a, shared.pk, for_write=True)
    assert provider_access_by_id(a, shared.pk, for_write=True, staff=True).pk == shared.pk
    with pytest.raises(PermissionDenied):
        virtual_model_access_by_id(a, global_vm.pk, for_write=True)
    shared_credential = provider_factories.credential(shared)
    with pytest.raises(NotFound):  # global providers' keys are the operator's, not even readable
        credential_access_by_id(a, shared_credential.pk)
    assert tenant_access_by_id(b, b.pk) == b
    with pytest.raises(NotFound):
        tenant_access_by_id(a, b.pk)


def test_global_rows_answer_403_to_tenant_writes():
    _, client = tenant_factories.admin_api("access-d")
    shared = provider_factories.provider(None)
    response = client.patch(f"/api/providers/{shared.pk}/", {"name": "mine"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "global_object"
    assert client.get(f"/api/providers/{shared.pk}/").status_code == 200
