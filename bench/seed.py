"""`python -m bench.seed <upstream base url>`: the bench tenant, inference key, provider and credential.

Runs under the production settings bench.database sets up. Rows are made through the same services
the admin and API use, after deleting the previous run's rows (deleting the tenant cascades), and the
key's secret is printed once as JSON for the load generators.
"""

from __future__ import annotations

import sys

import django
import orjson

TENANT_SLUG = "bench"
MODEL = "gpt-4o"  # in the seeded catalogue, served by any `openai`-type provider
UPSTREAM_KEY = "sk-bench-upstream-key"


def main(upstream_url: str) -> dict:
    django.setup()
    from apps.providers import services as provider_services
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant

    Tenant.objects.filter(slug=TENANT_SLUG).delete()
    tenant = tenant_services.tenant_create(slug=TENANT_SLUG, name="Benchmark")
    _, secret = tenant_services.api_key_create(tenant=tenant, name="bench", scopes=["inference"])
    provider = provider_services.provider_create(tenant=tenant, slug="bench-openai", name="Bench fake OpenAI",
                                                 type="openai", base_url=upstream_url)
    provider_services.credential_create(tenant=tenant, provider=provider, api_key=UPSTREAM_KEY, name="bench")
    return {"api_key": secret, "model": MODEL}


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(main(sys.argv[1])).decode() + "\n")
