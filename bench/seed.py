"""`python -m bench.seed <upstream root url>`: the bench tenants, inference keys, providers and credentials.

Runs under the production settings bench.database sets up. Rows are made through the same services
the admin and API use, after deleting the previous run's rows (deleting a tenant cascades), and the
keys' secrets are printed once as JSON for the load generators.

Two tenants:
- `bench`: one `openai` provider on the fake upstream; requests name `gpt-4o`, which this one deployment
  serves (the direct-model case, and the gateway target of every other case).
- `bench-routed`: three `openai` providers, each serving `gpt-4o` (so three deployments), two on the fake
  upstream's plain path and one on `/flaky-50/v1`, which fails half the requests with HTTP 500; and a
  tenant virtual model named `auto` whose only candidate is `gpt-4o`, so `"model": "auto"` routes over
  exactly those three deployments with `auto`'s strategy (balanced). The failing one has the lowest
  priority number, i.e. it is the preferred one whenever health does not decide: the worst case.
  They are a tenant of their own because a second `openai` provider of `bench` would also serve `bench`'s
  `gpt-4o` and turn the direct-model case into a routed one (any `openai` provider serves the catalogue's
  `openai` models).
"""

from __future__ import annotations

import sys

import django
import orjson

TENANT_SLUG = "bench"
ROUTED_TENANT_SLUG = "bench-routed"
MODEL = "gpt-4o"  # in the seeded catalogue, served by any `openai`-type provider
ROUTED_MODEL = "auto"  # the bench-routed tenant's virtual model over its three deployments
UPSTREAM_KEY = "sk-bench-upstream-key"
FLAKY_PERCENT = 50
# (slug, path on the fake upstream, failure percent, priority): the failing one first in preference order.
ROUTED_PROVIDERS = (
    ("bench-route-flaky", f"/flaky-{FLAKY_PERCENT}/v1", FLAKY_PERCENT, 10),
    ("bench-route-a", "/v1", 0, 100),
    ("bench-route-b", "/v1", 0, 100),
)


def main(upstream_root: str) -> dict:
    django.setup()
    from apps.providers import services as provider_services
    from apps.providers.models import VirtualModel
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant

    Tenant.objects.filter(slug__in=(TENANT_SLUG, ROUTED_TENANT_SLUG)).delete()

    tenant = tenant_services.tenant_create(slug=TENANT_SLUG, name="Benchmark")
    _, secret = tenant_services.api_key_create(tenant=tenant, name="bench", scopes=["inference"])
    provider = provider_services.provider_create(tenant=tenant, slug="bench-openai", name="Bench fake OpenAI",
                                                 type="openai", base_url=f"{upstream_root}/v1")
    provider_services.credential_create(tenant=tenant, provider=provider, api_key=UPSTREAM_KEY, name="bench")

    routed = tenant_services.tenant_create(slug=ROUTED_TENANT_SLUG, name="Benchmark, routed case")
    _, routed_secret = tenant_services.api_key_create(tenant=routed, name="bench-routed", scopes=["inference"])
    deployments = []
    for slug, path, percent, priority in ROUTED_PROVIDERS:
        provider = provider_services.provider_create(tenant=routed, slug=slug, name=f"Bench fake OpenAI {slug}",
                                                     type="openai", base_url=upstream_root + path, priority=priority)
        credential = provider_services.credential_create(tenant=routed, provider=provider, api_key=UPSTREAM_KEY,
                                                         name="bench")
        # The gateway's deployment id: provider × credential × model (apps.gateway.planning.deployment_id).
        deployments.append({"provider": slug, "deployment": f"{provider.id}:{credential.id}:{MODEL}",
                            "fail_percent": percent})
    provider_services.tenant_config_save(
        tenant=routed, instance=VirtualModel(name=ROUTED_MODEL, strategy="balanced", candidates=[MODEL],
                                             description="bench: auto over three deployments of gpt-4o"))
    return {"api_key": secret, "model": MODEL,
            "routed": {"api_key": routed_secret, "model": ROUTED_MODEL, "deployments": deployments}}


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(main(sys.argv[1])).decode() + "\n")
