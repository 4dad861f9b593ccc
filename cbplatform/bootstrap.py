"""Start-up work of `manage.py serve` (listed in settings.STARTUP_HOOKS): migrate the embedded default, mirror
environment providers, and on first start create a demo tenant, admin user and API key, ready to curl, and
load the example workflows, functions and agents into it.

It lives in the composition root because it reaches across apps (providers, tenants); core's `serve` only
calls the configured hooks."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from apps.agents.selectors import agent_list
from apps.agents.services import examples_load as agents_examples_load
from apps.functions.selectors import function_list
from apps.functions.services import examples_load as function_examples_load
from apps.providers.env_sync import providers_sync_from_env
from apps.tenants.models import ApiKey, Membership, Tenant
from apps.tenants.services import api_key_create, membership_set, tenant_create
from apps.workflows.selectors import workflow_list
from apps.workflows.services import examples_load

logger = logging.getLogger(__name__)
DEMO_SLUG = "demo"


@transaction.atomic
def demo_setup() -> dict:
    """Idempotent. Returns what was created now (a new key's secret only the first time)."""
    created: dict = {}
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        tenant = tenant_create(slug=DEMO_SLUG, name="Demo")
        created["tenant"] = tenant.slug
    User = get_user_model()
    if not User.objects.exists():
        user = User.objects.create_superuser("admin", "admin@example.com", settings.DEMO_ADMIN_PASSWORD)
        membership_set(tenant=tenant, user=user, role=Membership.Role.OWNER)
        created["admin"] = ("admin", settings.DEMO_ADMIN_PASSWORD)
    if not ApiKey.objects.filter(tenant=tenant).exists():
        _, secret = api_key_create(tenant=tenant, name="demo", scopes=["inference", "admin"])
        created["api_key"] = secret
    if not workflow_list(tenant=tenant).exists():  # the examples, so a new user has a workflow to run
        created["workflows"] = [w.slug for w in examples_load(tenant=tenant)]
    # The example functions (triggers on the example workflows); by name, so others' examples do not stop them.
    if "workflows" in created or not function_list(tenant=tenant).exists():
        created["functions"] = [f.name for f in function_examples_load(tenant=tenant)]
    if not agent_list(tenant=tenant).exists():  # the content pipeline's agents, bound to its workflow
        created["agents"] = agents_examples_load(tenant=tenant)
    return created


def startup_setup(*, migrate: bool) -> dict:
    """A start-up hook: returns what it created, for `serve` to announce."""
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    providers_sync_from_env()
    return demo_setup() if settings.AUTO_SETUP else {}
