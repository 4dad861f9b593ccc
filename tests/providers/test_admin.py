"""The admin through Django's test client: pages load, secrets are typed once and never shown."""

import re

import pytest
from django.urls import reverse

from apps.core.crypto import mask
from apps.providers.env_sync import providers_sync_from_env
from apps.providers.models import ModelEntry, Provider, ProviderCredential
from apps.tenants.models import ApiKey
from apps.tenants.selectors import api_key_from_secret
from cbplatform.env import Env, env_providers
from tests.providers import factories as provider_factories
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db

PROVIDER_SECRET = "sk-admin-typed-secret-ABCDEFGH-9876"


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_every_changelist_and_add_page_loads(admin_client, catalogue):
    tenant = tenant_factories.tenant()
    provider = provider_factories.provider(tenant)
    provider_factories.credential(provider)
    tenant_factories.api_key(tenant)
    for model in ("tenants/tenant", "tenants/membership", "tenants/apikey", "providers/provider",
                  "providers/providercredential", "providers/modelentry"):
        for suffix in ("", "add/"):
            response = admin_client.get(f"/admin/{model}/{suffix}")
            assert response.status_code == 200, (model, suffix)
    response = admin_client.get("/admin/providers/modelentry/?q=claude-3-haiku")
    assert b"claude-3-haiku-20240307" in response.content


def test_new_api_key_is_shown_once_on_the_confirmation_page(admin_client):
    tenant = tenant_factories.tenant()
    response = admin_client.post(reverse("admin:tenants_apikey_add"), {
        "tenant": tenant.pk, "name": "from-admin", "scopes": ["inference", "admin"], "user_label": "",
        "project_label": "", "expires_at_0": "", "expires_at_1": "",
    })
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(rb'id="new-api-key"[^>]*>(cb-[^<]+)<', response.content).group(1).decode()
    key = api_key_from_secret(secret)
    assert key is not None and key.name == "from-admin" and sorted(key.scopes) == ["admin", "inference"]
    for url in (reverse("admin:tenants_apikey_changelist"), reverse("admin:tenants_apikey_change", args=[key.pk])):
        page = admin_client.get(url).content.decode()
        assert secret not in page
        assert key.hint in page


def test_revoke_action(admin_client):
    key, secret = tenant_factories.api_key(tenant_factories.tenant())
    admin_client.post(reverse("admin:tenants_apikey_changelist"),
                      {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None and api_key_from_secret(secret) is None


def test_credential_secret_is_typed_once_encrypted_and_never_displayed(admin_client):
    provider = provider_factories.provider(tenant_factories.tenant())
    response = admin_client.post(reverse("admin:providers_providercredential_add"), {
        "provider": provider.pk, "name": "primary", "enabled": "on", "api_key": PROVIDER_SECRET,
    })
    assert response.status_code == 302, response.content[:2000]
    credential = ProviderCredential.objects.get(provider=provider)
    assert credential.secret() == PROVIDER_SECRET
    assert PROVIDER_SECRET not in credential.encrypted_key
    for url in (reverse("admin:providers_providercredential_changelist"),
                reverse("admin:providers_providercredential_change", args=[credential.pk]),
                reverse("admin:providers_provider_change", args=[provider.pk])):
        page = admin_client.get(url).content.decode()
        assert PROVIDER_SECRET not in page
        assert "…9876" in page

    # Blank keeps the key; a new value rotates it.
    change = reverse("admin:providers_providercredential_change", args=[credential.pk])
    admin_client.post(change, {"name": "primary", "enabled": "on", "api_key": ""})
    credential.refresh_from_db()
    assert credential.secret() == PROVIDER_SECRET and credential.rotated_at is None
    admin_client.post(change, {"name": "primary", "enabled": "on", "api_key": "sk-rotated-key-0000"})
    credential.refresh_from_db()
    assert credential.secret() == "sk-rotated-key-0000" and credential.rotated_at is not None


def test_credential_add_without_key_is_an_error(admin_client):
    provider = provider_factories.provider(tenant_factories.tenant())
    response = admin_client.post(reverse("admin:providers_providercredential_add"),
                                 {"provider": provider.pk, "name": "x", "enabled": "on", "api_key": ""})
    assert response.status_code == 200
    assert b"Enter the provider" in response.content
    assert not ProviderCredential.objects.exists()


def test_reencrypt_action_moves_credentials_to_the_primary_key(admin_client, settings):
    from cryptography.fernet import Fernet

    from apps.core import crypto

    provider = provider_factories.provider(tenant_factories.tenant())
    credential = provider_factories.credential(provider, api_key_value=PROVIDER_SECRET)
    old = settings.ENCRYPTION_KEYS[0]
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    crypto.reset_cache()
    try:
        admin_client.post(reverse("admin:providers_providercredential_changelist"),
                          {"action": "reencrypt", "_selected_action": [credential.pk]})
        settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]
        crypto.reset_cache()
        credential.refresh_from_db()
        assert credential.secret() == PROVIDER_SECRET
    finally:
        crypto.reset_cache()


def test_environment_provider_appears_masked_and_read_only(admin_client, settings):
    secret = "sk-env-configured-openai-key-5555"
    settings.ENV_PROVIDERS = env_providers(Env({"OPENAI_API_KEY": secret}))
    providers_sync_from_env()
    provider = Provider.objects.get(slug="env-openai")
    assert provider.is_global and provider.source == "env"

    page = admin_client.get(reverse("admin:providers_provider_changelist")).content.decode()
    assert "OpenAI (environment)" in page and mask(secret) in page and secret not in page
    detail = admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk])).content.decode()
    assert secret not in detail
    assert 'name="base_url"' not in detail  # read-only view, no editable inputs

    credential = provider.credentials.get()
    assert credential.encrypted_key == "" and credential.secret() == secret  # from the environment
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM providers_providercredential")
        assert not any(secret in str(v) for row in cursor.fetchall() for v in row)

    # Removed from the environment: kept for history, no longer enabled.
    settings.ENV_PROVIDERS = []
    providers_sync_from_env()
    provider.refresh_from_db()
    assert provider.enabled is False


def test_catalogue_is_seeded_with_the_names_users_rely_on(catalogue):
    names = set(ModelEntry.objects.values_list("model_id", flat=True))
    for name in ("gpt-4", "gpt-4o", "gpt-3.5-turbo", "claude-3-haiku-20240307", "claude-3-5-sonnet-20241022",
                 "gemini-pro", "gemini-1.5-pro", "gemini-1.5-flash", "text-embedding-3-small", "llama3.2",
                 "gpt-4.1", "o3-mini", "gemini-2.0-flash", "claude-sonnet-4-20250514"):
        assert name in names, name
    haiku = ModelEntry.objects.get(model_id="claude-3-haiku-20240307")
    assert "claude-3-haiku" in haiku.aliases
    for alias in ("claude-3-sonnet", "claude-3-opus", "claude-3-5-sonnet"):
        assert ModelEntry.objects.filter(aliases__contains=[alias]).exists(), alias
    from decimal import Decimal

    gpt4o = ModelEntry.objects.get(model_id="gpt-4o", provider_type="openai")
    assert gpt4o.input_price == Decimal("0.0000025") and gpt4o.output_price == Decimal("0.00001")
    assert gpt4o.supports_tools and gpt4o.supports_vision
    assert ModelEntry.objects.get(model_id="llama3.2").input_price == 0


def test_api_key_model_has_no_plaintext_column():
    assert {f.name for f in ApiKey._meta.get_fields()} >= {"key_hash", "hint"}
    assert "secret" not in {f.name for f in ApiKey._meta.get_fields()}
