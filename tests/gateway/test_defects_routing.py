"""Issue 8's routing and pricing defects, through a real server and the OpenAI SDK.

- a hung primary must leave time for `circuit_breaker.fallback_models` on default attempt settings (#6);
- dated and versioned names price as their catalogued family; a name nothing prices is refused for a tenant
  with a budget instead of running free (#3).
"""

from __future__ import annotations

import time
from decimal import Decimal

import openai
import pytest

from apps.billing.ingest import ingest_once
from apps.billing.models import UsageRecord
from tests.conftest import ServerProcess, reseed_catalogue
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db

DEADLINE = 6.0


@pytest.fixture(scope="module")
def env(django_db_setup, django_db_blocker):
    from apps.billing import services as billing
    from apps.providers import services
    from apps.providers.models import ModelEntry
    from apps.tenants.models import Tenant
    from tests import factories

    hung, anthropic, upstream = FakeOpenAI().start(), FakeAnthropic().start(), FakeOpenAI().start()
    hung.forced = "!hang 30"
    slugs = ("rf-fallback", "rf-budget", "rf-free")
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug__in=slugs).delete()
        if not ModelEntry.objects.filter(provider__isnull=True).exists():
            reseed_catalogue()
        keys = {}
        for slug in slugs:
            tenant = factories.tenant(slug, default_routing_strategy="failover_chain")
            keys[slug] = factories.api_key(tenant)[1]
            if slug == "rf-fallback":
                # No per-provider timeout: the defaults alone must leave the fallback time to answer.
                for name, fake, ptype, priority in (("hung", hung, "openai", 1), ("claude", anthropic, "anthropic", 2)):
                    provider = services.provider_create(tenant=tenant, slug=f"{slug}-{name}", name=name, type=ptype,
                                                        base_url=fake.url + ("/v1" if ptype == "openai" else ""),
                                                        priority=priority)
                    services.credential_create(tenant=tenant, provider=provider, api_key=fake.api_key)
            else:
                provider = services.provider_create(tenant=tenant, slug=f"{slug}-oai", name="oai", type="openai",
                                                    base_url=f"{upstream.url}/v1")
                services.credential_create(tenant=tenant, provider=provider, api_key=upstream.api_key)
            if slug == "rf-budget":
                billing.budget_create(tenant=tenant, limit=Decimal(10), period="monthly", action="block")
    server = ServerProcess(env={"REQUEST_TIMEOUT_SECONDS": str(DEADLINE)}).start()
    yield {"server": server, "keys": keys, "hung": hung, "upstream": upstream}
    server.stop()
    for fake in (hung, anthropic, upstream):
        fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug__in=slugs).delete()


def client(env, slug: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{env['server'].url}/v1", api_key=env["keys"][slug], max_retries=0,
                         timeout=30)


def recorded(request_id: str) -> UsageRecord:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        while ingest_once():
            pass
        found = UsageRecord.objects.filter(request_id=request_id).first()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no ledger record for {request_id}")


def test_a_hung_primary_fails_over_to_the_fallback_within_the_deadline(env):
    began = time.monotonic()
    raw = client(env, "rf-fallback").chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "hello"}],
        extra_body={"circuit_breaker": {"fallback_models": ["claude-3-haiku"]}})
    elapsed = time.monotonic() - began
    reply = raw.parse()
    assert reply.choices[0].message.content.startswith("[anthropic]")
    assert raw.headers["x-cb-provider"] == "rf-fallback-claude"
    assert elapsed < DEADLINE - 1, elapsed  # the primary got half the deadline, not all of it
    assert len(env["hung"].requests) >= 1


def test_a_dated_model_name_is_billed_at_its_family_price(env):
    raw = client(env, "rf-budget").chat.completions.with_raw_response.create(
        model="openai/gpt-4o-2024-08-06", messages=[{"role": "user", "content": "price me"}])
    reply = raw.parse()
    assert env["upstream"].requests[-1]["json"]["model"] == "gpt-4o-2024-08-06"  # sent as named
    record = recorded(raw.headers["x-cb-request-id"])
    assert record.cost > 0
    assert record.cost == (Decimal(reply.usage.prompt_tokens) * Decimal("0.0000025")
                           + Decimal(reply.usage.completion_tokens) * Decimal("0.00001"))


def test_a_bare_dated_name_resolves_to_its_family(env):
    raw = client(env, "rf-budget").chat.completions.with_raw_response.create(
        model="gpt-4o-mini-2024-07-18", messages=[{"role": "user", "content": "hi"}])
    raw.parse()
    assert env["upstream"].requests[-1]["json"]["model"] == "gpt-4o-mini-2024-07-18"
    assert recorded(raw.headers["x-cb-request-id"]).cost > 0


def test_an_unpriced_model_is_refused_for_a_tenant_with_a_budget(env):
    with pytest.raises(openai.BadRequestError) as caught:
        client(env, "rf-budget").chat.completions.create(
            model="openai/acme-unknown-model", messages=[{"role": "user", "content": "free?"}])
    error = caught.value
    assert error.status_code == 400 and error.code == "model_not_priced"
    assert "acme-unknown-model" in error.message and "DEFAULT_PRICE_PER_1K_INPUT" in error.message


def test_an_unpriced_model_still_serves_a_tenant_without_a_budget(env):
    reply = client(env, "rf-free").chat.completions.create(
        model="openai/acme-unknown-model", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content.startswith("[openai]")
