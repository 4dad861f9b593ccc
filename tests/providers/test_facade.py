"""The providers facade: what the gateway's snapshot is composed from."""

import pytest

from apps.providers import facade
from apps.providers.env_sync import providers_sync_from_env
from apps.providers.models import ModelEntry, ModelRoute, ProviderCredential, VirtualModel
from cbplatform.env import Env, env_providers
from tests.providers import factories as provider_factories
from tests.tenants import factories as tenant_factories

pytestmark = pytest.mark.django_db


def test_providers_carry_their_decrypted_keys_and_skip_unreadable_ones():
    provider = provider_factories.provider(tenant_factories.tenant(), base_url="https://llm.example.com/v1/")
    good = provider_factories.credential(provider, api_key_value="sk-good-key-0001")
    bad = provider_factories.credential(provider, api_key_value="sk-bad-key-0002")
    ProviderCredential.objects.filter(pk=bad.pk).update(encrypted_key="not-a-fernet-token")
    info = next(p for p in facade.provider_infos() if p.id == provider.id)
    assert info.keys == [(good.pk, "sk-good-key-0001")] and info.base_url == "https://llm.example.com/v1"
    assert info.tenant_id == provider.tenant_id and info.type == "openai" and info.usable


def test_env_mirrored_providers_count_only_where_the_environment_sets_them(settings):
    settings.ENV_PROVIDERS = env_providers(Env({"OPENAI_API_KEY": "sk-env-key-1234"}))
    settings.SIMULATED_PROVIDER = True
    providers_sync_from_env()
    slugs = {p.slug: p for p in facade.provider_infos()}
    assert slugs["env-openai"].keys[0][1] == "sk-env-key-1234" and "simulated" in slugs

    settings.ENV_PROVIDERS = []  # another process, without the variable (the row stays enabled)
    settings.SIMULATED_PROVIDER = False
    slugs = {p.slug for p in facade.provider_infos()}
    assert "env-openai" not in slugs and "simulated" not in slugs


def test_catalogue_virtual_models_and_routes_map_by_field():
    tenant = tenant_factories.tenant()
    ModelEntry.objects.create(model_id="facade-model", provider_type="openai", aliases=["fm"], tags=["cheap"],
                              input_price="0.000001", output_price="0.000002", supports_tools=True)
    ModelEntry.objects.create(model_id="facade-off", provider_type="openai", enabled=False)
    VirtualModel.objects.create(tenant=tenant, name="team", strategy="cost_optimized", candidates=["facade-model"],
                                constraints={"max_latency_ms": 900})
    ModelRoute.objects.create(model="facade-model", primary="openai", fallbacks=["azure"], cost_limit_per_1k="0.5")

    models = {m.model_id: m for m in facade.model_infos()}
    entry = models["facade-model"]
    assert "facade-off" not in models
    assert entry.aliases == ("fm",) and entry.tags == ("cheap",) and "tools" in entry.capabilities
    assert str(entry.input_price) == "0.000001000000" and entry.upstream_name == "facade-model"
    virtual = facade.virtual_model_infos()[(tenant.id, "team")]
    assert virtual.candidates == ("facade-model",) and virtual.constraints == {"max_latency_ms": 900}
    assert facade.route_tables()[None]["facade-model"] == {"primary": "openai", "fallback": ["azure"],
                                                           "cost_limit": 0.5}
