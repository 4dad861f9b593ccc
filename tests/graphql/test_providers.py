"""Providers over GraphQL: the documents' ConfigureProvider and GetProviders as written, keys write-only,
health from the live circuit state (the Redis health store the gateway writes), tenant isolation."""

from __future__ import annotations

import asyncio

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import redis as cb_redis
from apps.gateway.health import BreakerConfig, RedisHealthStore
from apps.providers.models import ModelEntry, Provider, ProviderCredential
from tests.billing.factories import usage_record

from .conftest import codes

pytestmark = pytest.mark.django_db

CONFIGURE = """mutation ConfigureProvider {
  configureLlmProvider(input: {
    providerType: "openai"
    name: "OpenAI"
    baseUrl: "https://api.openai.com/v1"
    models: [
      {
        id: "gpt-4o"
        name: "GPT-4o"
        maxTokens: 16384
        contextWindow: 128000
        costPerInputToken: 0.000005
        costPerOutputToken: 0.000015
        supportsStreaming: true
        supportsFunctionCalling: true
        capabilities: ["text_generation", "vision", "multimodal"]
      }
    ]
  }) {
    id
    name
    models {
      id
      name
      costPerInputToken
      costPerOutputToken
    }
  }
}"""

GET_PROVIDERS = """query GetProviders {
  llmProviders {
    id
    providerType
    name
    healthStatus {
      isHealthy
      errorRate
      averageLatencyMs
    }
    models {
      id
      name
      contextWindow
      costPerInputToken
      costPerOutputToken
      supportsStreaming
      capabilities
    }
  }
}"""


def test_configure_provider_as_the_documents_write_it(tenant_a):
    tenant, gql = tenant_a
    provider = gql(CONFIGURE)["configureLlmProvider"]
    assert provider["name"] == "OpenAI"
    # Its own entries first (at its own prices), then the shared catalogue of its type it also serves.
    assert provider["models"][0] == {"id": "gpt-4o", "name": "gpt-4o", "costPerInputToken": 0.000005,
                                     "costPerOutputToken": 0.000015}
    assert [m["id"] for m in provider["models"]].count("gpt-4o") == 1
    row = Provider.objects.get(pk=provider["id"])
    assert (row.tenant_id, row.slug, row.type, row.base_url) == (tenant.pk, "openai", "openai",
                                                                 "https://api.openai.com/v1")
    entry = ModelEntry.objects.get(provider=row, model_id="gpt-4o")
    assert (entry.max_output_tokens, entry.context_window, entry.supports_vision, entry.supports_tools) == (
        16384, 128000, True, True)
    again = gql(CONFIGURE.replace("0.000015", "0.00002"))["configureLlmProvider"]
    assert again["id"] == provider["id"] and again["models"][0]["costPerOutputToken"] == 0.00002
    assert ModelEntry.objects.filter(provider=row).count() == 1

    listed = gql(GET_PROVIDERS)["llmProviders"]
    mine = next(p for p in listed if p["id"] == provider["id"])
    assert mine["providerType"] == "openai" and mine["healthStatus"] == {
        "isHealthy": True, "errorRate": 0.0, "averageLatencyMs": None}
    assert mine["models"][0]["capabilities"] == ["streaming", "tools", "vision"]


def test_the_api_key_is_write_only_and_encrypted(tenant_a):
    _, gql = tenant_a
    secret = "sk-live-do-not-leak-1234567890"
    created = gql(f'mutation {{ configureLlmProvider(input: {{providerType: "anthropic", name: "Claude", '
                  f'apiKey: "{secret}"}}) {{ id hasApiKey }} }}')["configureLlmProvider"]
    assert created["hasApiKey"] is True
    credential = ProviderCredential.objects.get(provider_id=created["id"])
    assert secret not in credential.encrypted_key and credential.secret() == secret
    body = gql.post("{ llmProviders { id slug name baseUrl hasApiKey } }").content.decode()
    assert secret not in body and "sk-live" not in body
    rotated = "sk-live-rotated-0987654321"
    gql(f'mutation {{ configureLlmProvider(input: {{providerType: "anthropic", name: "Claude", '
        f'apiKey: "{rotated}"}}) {{ id }} }}')
    assert ProviderCredential.objects.get(provider_id=created["id"]).secret() == rotated


def test_bad_input_changes_nothing(tenant_a):
    tenant, gql = tenant_a
    _, errors = gql.errors('mutation { configureLlmProvider(input: {providerType: "nope", name: "X"}) { id } }')
    assert codes(errors) == ["VALIDATION_ERROR"] and errors[0]["extensions"]["param"] == "providerType"
    # The provider is valid, its model is not: the whole mutation is undone.
    _, errors = gql.errors('mutation { configureLlmProvider(input: {providerType: "openai", name: "Half", '
                           'models: [{id: "m", capabilities: ["telepathy"]}]}) { id } }')
    assert codes(errors) == ["VALIDATION_ERROR"] and "telepathy" in errors[0]["message"]
    _, errors = gql.errors('mutation { configureLlmProvider(input: {providerType: "openai", name: "Local", '
                           'baseUrl: "ftp://example.com/v1"}) { id } }')
    assert codes(errors) == ["VALIDATION_ERROR"] and errors[0]["extensions"]["param"] == "base_url"
    assert not Provider.objects.filter(tenant=tenant).exists()


def test_health_comes_from_the_live_circuit_state(tenant_a):
    tenant, gql = tenant_a
    provider_id = int(gql(CONFIGURE)["configureLlmProvider"]["id"])

    async def fail(times: int):
        client = cb_redis.async_client()
        store = RedisHealthStore(client, BreakerConfig.from_settings())
        for _ in range(times):
            await store.record_failure(f"{provider_id}:0:gpt-4o", latency_ms=40.0)
        await store.record_success(f"{provider_id}:1:gpt-4o", latency_ms=20.0)
        await client.aclose()

    asyncio.run(fail(6))
    usage_record(tenant, cost="0", provider="openai", status=502, error_type="upstream_error")
    health = gql("""query($id: ID!) { llmProvider(id: $id) { healthStatus { isHealthy circuitState errorRate
                  requests averageLatencyMs consecutiveFailures deploymentsMeasured lastCheck lastError
                  lastErrorAt } } }""", {"id": provider_id})["llmProvider"]["healthStatus"]
    assert health["isHealthy"] is False and health["circuitState"] == "open"
    assert (health["requests"], health["consecutiveFailures"], health["deploymentsMeasured"]) == (7, 6, 2)
    assert health["errorRate"] == pytest.approx(6 / 7)
    assert 20 <= health["averageLatencyMs"] <= 40
    assert health["lastError"] == "upstream_error 502" and health["lastErrorAt"] and health["lastCheck"]


def test_providers_list_without_a_query_per_provider(tenant_a):
    _, gql = tenant_a
    query = "{ llmProviders { id hasApiKey models { id } healthStatus { isHealthy } } }"

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            gql(query)
        return len(queries)

    gql('mutation { configureLlmProvider(input: {providerType: "openai", name: "p0", apiKey: "sk-0000000000"}) '
        '{ id } }')
    few = count()
    for n in range(1, 5):
        gql(f'mutation {{ configureLlmProvider(input: {{providerType: "openai", name: "p{n}", '
            f'apiKey: "sk-000000000{n}", models: [{{id: "m{n}"}}]}}) {{ id }} }}')
    assert count() == few


def test_another_tenants_provider_is_not_found(tenant_a, tenant_b):
    _, gql_a = tenant_a
    _, gql_b = tenant_b
    provider = gql_a(CONFIGURE)["configureLlmProvider"]
    data, errors = gql_b.errors("query($id: ID!) { llmProvider(id: $id) { id } }", {"id": provider["id"]})
    assert codes(errors) == ["NOT_FOUND"] and data == {"llmProvider": None}
    _, errors = gql_b.errors('mutation($id: ID!) { configureLlmProvider(input: {id: $id, providerType: "openai", '
                             'name: "taken"}) { id } }', {"id": provider["id"]})
    assert codes(errors) == ["NOT_FOUND"]
    assert provider["id"] not in {p["id"] for p in gql_b("{ llmProviders { id } }")["llmProviders"]}
    assert not {m["id"] for m in gql_b('{ models(providerType: "openai", first: 100) { id providerId } }')["models"]
                if m["providerId"] == provider["id"]}
    assert Provider.objects.get(pk=provider["id"]).name == "OpenAI"
