"""Agents run through a real Celery worker (one per module) against a fake OpenAI upstream over real HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests import factories
from tests.celery_worker import Worker, wait_until
from tests.fakes.openai import FakeOpenAI


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def agent_worker(django_db_setup, tmp_path_factory):
    """One real worker for the module's tests (a worker per test would cost seconds each)."""
    worker = Worker(tmp_path_factory.mktemp("agents-worker"))
    assert wait_until(lambda: " ready." in worker.output(), 120), worker.output()[-3000:]
    yield worker
    worker.stop()


@pytest.fixture
def world(transactional_db, catalogue, fake, agent_worker):
    """A fresh tenant whose own OpenAI provider is the fake, an admin API client for it, and another tenant."""
    suffix = uuid.uuid4().hex[:6]
    tenant, _, _ = factories.tenant_on_fake_openai(f"ag-{suffix}", fake, provider_slug=f"fk-{suffix}")
    _, admin_secret = factories.api_key(tenant, scopes=["admin"])
    other, other_api = factories.admin_api(f"ag-other-{suffix}")
    yield {"tenant": tenant, "api": factories.api_client(admin_secret), "other": other, "other_api": other_api,
           "fake": fake, "worker": agent_worker}
    agent_worker.wait_idle()  # a run's last writes land before the tables are truncated


def events_of(execution_id) -> list:
    from apps.workflows.models import WorkflowEvent

    return list(WorkflowEvent.objects.filter(data__execution_id=str(execution_id)).order_by("id"))


def execution(execution_id):
    from apps.agents.models import AgentExecution

    return AgentExecution.objects.get(pk=execution_id)


def finished(execution_id, timeout=60.0):
    from apps.agents.models import FINISHED

    return wait_until(lambda: execution(execution_id).status in FINISHED and execution(execution_id), timeout)


__all__ = ["events_of", "execution", "finished"]
