"""One real server (uvicorn via `manage.py serve`, Redis channel layer) for these tests, two tenants
with keys, the document_review workflow, and helpers to write events as other processes would."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.conftest import ServerProcess, committed

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="session")
def world(django_db_setup, django_db_blocker):
    from apps.realtime.relay_loop import drain
    from apps.tenants.models import Tenant
    from apps.workflows import services
    from tests import factories
    from tests.fakes.openai import FakeOpenAI
    from tests.workflows.nets import DOCUMENT_REVIEW, PARALLEL_REVIEW

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug__startswith="rt-").delete()
        tenant, key, secret = factories.tenant_on_fake_openai(f"rt-a-{RUN}", fake, provider_slug="rt-openai",
                                                              scopes=["inference", "read"])
        other = factories.tenant(f"rt-b-{RUN}")
        _, other_secret = factories.api_key(other, scopes=["inference", "read"])
        services.workflow_save(tenant, definition=DOCUMENT_REVIEW)
        services.workflow_save(other, definition=DOCUMENT_REVIEW)
        services.workflow_save(tenant, definition=PARALLEL_REVIEW)  # tenant A's only
        drain()  # published now, while the database is open to this fixture (not live in a test later)
    server = ServerProcess(env={"REALTIME_RELAY_SWEEP_SECONDS": "0.5"}).start()
    yield {"fake": fake, "tenant": tenant, "secret": secret, "other": other, "other_secret": other_secret,
           "server": server}
    server.stop()
    fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug__startswith="rt-").delete()


@pytest.fixture
def unblocked(django_db_blocker):
    with django_db_blocker.unblock():
        yield


def ws_url(server, path="/graphql") -> str:
    return server.graphql_url.replace("http://", "ws://") + path


def new_instance(tenant, **data):
    """An instance of document_review with one token in `draft`, committed (other processes see it)."""
    from apps.workflows import services
    from apps.workflows.models import Token

    def create():
        instance = services.instance_create(tenant, workflow_id="document_review", data=data or {"t": 1}, actor="t")
        return instance, Token.objects.get(instance=instance)

    return committed(create)


def fire(tenant, token, transition):
    from apps.workflows import services

    return committed(services.transition_fire, tenant, token_id=token.id, transition_id=transition, actor="t")


def record(tenant, instance, token, type_, **data):
    from apps.workflows import outbox

    return committed(outbox.event_record, tenant.pk, workflow="document_review", type=type_,
                     instance_id=instance.id, token_id=token.id, data=data)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def take(iterator, n, timeout=15.0):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        out.append(await asyncio.wait_for(anext(iterator), max(0.1, deadline - time.monotonic())))
    return out
