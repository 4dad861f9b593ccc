from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from tests import factories
from tests.celery_worker import Worker

TEST_MODULES = ["apps.functions.builtins", "tests.functions.callables"]
WORKER_ENV = {"FUNCTIONS_PYTHON_MODULES": "tests.functions.callables", "FUNCTIONS_SCHEDULE_SWEEP_SECONDS": "1",
              "WORKFLOW_DUE_SWEEP_SECONDS": "60"}


@pytest.fixture(autouse=True)
def _test_callables_allowed(monkeypatch):
    monkeypatch.setattr(settings, "FUNCTIONS_PYTHON_MODULES", TEST_MODULES)


@pytest.fixture(scope="session")
def fn_worker(django_db_setup, tmp_path_factory):
    """One real Celery worker (with beat) for the functions tests, started once."""
    worker = Worker(tmp_path_factory.mktemp("fn-worker"), WORKER_ENV)
    yield worker
    worker.stop()


@pytest.fixture
def api(transactional_db):
    """An admin API key's client of a fresh tenant (`api.tenant`)."""
    tenant, client = factories.admin_api(f"fn-{uuid.uuid4().hex[:8]}")
    client.tenant = tenant
    return client


def python_function(client, callable_name: str, **fields) -> dict:
    body = {"name": fields.pop("name", f"{callable_name}-{uuid.uuid4().hex[:6]}"), "runtime": "python",
            "config": {"callable": callable_name}, **fields}
    response = client.post("/api/functions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def execution(execution_id):
    from apps.functions.models import FunctionExecution

    return FunctionExecution.objects.get(pk=execution_id)


def finished(execution_id):
    """The execution once it finished (else a falsy value for `wait_until`)."""
    row = execution(execution_id)
    return row if row.finished else None
