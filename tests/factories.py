"""One import for tests that need rows of several apps: the per-app factories, re-exported.

Tests of one app import that app's factories (`tests.tenants.factories`, `tests.providers.factories`)."""

from tests.providers.factories import credential, provider, tenant_on_fake_openai
from tests.tenants.factories import admin_api, api_client, api_key, tenant, user

__all__ = ["admin_api", "api_client", "api_key", "credential", "provider", "tenant", "tenant_on_fake_openai", "user"]
