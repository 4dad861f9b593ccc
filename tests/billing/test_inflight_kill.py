"""Requests in flight when their web process is SIGKILLed are still billed: the gateway writes an in-flight
marker before the first upstream attempt, and `billing.reconcile_inflight` turns the dead process's markers
into flagged, estimated ledger records. End to end: a real server, a hanging fake upstream, a real kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from decimal import Decimal

import httpx
import pytest

from apps.billing.ingest import ingest_once
from apps.billing.ledger_stream import INFLIGHT_LOST
from apps.billing.models import UsageRecord
from apps.billing.tasks import reconcile_inflight
from tests import factories
from tests.billing import factories as billing_factories
from tests.conftest import reseed_catalogue
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)

IN_FLIGHT = 12


def kill_tree(pid: int) -> None:
    """SIGKILL the server and every process it started (uvicorn's workers), as an OOM killer or a node loss would."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in [pid, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@pytest.fixture
def hanging_upstream():
    fake = FakeOpenAI().start()
    fake.forced = "!hang 30"
    yield fake
    fake.stop()


def test_requests_in_flight_when_the_process_is_killed_are_billed(server_factory, hanging_upstream, settings):
    reseed_catalogue()
    tenant, key, secret = factories.tenant_on_fake_openai("inflight-kill", hanging_upstream, provider_slug="oai")
    billing_factories.budget(tenant, limit=Decimal(100))  # the marker carries the budget's worst-case reservation
    server = server_factory(workers=1)
    url = f"{server.url}/v1/chat/completions"
    failures: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            httpx.post(url, headers={"authorization": f"Bearer {secret}"}, timeout=60, json={
                "model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": f"request {i}"}]})
        except httpx.HTTPError as exc:  # the server dies under us: expected
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(hanging_upstream.requests) < IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(hanging_upstream.requests) == IN_FLIGHT  # every one reached the upstream
    kill_tree(server.proc.pid)
    server.proc.wait(10)
    for thread in threads:
        thread.join(10)
    assert len(failures) == IN_FLIGHT

    while ingest_once():
        pass
    assert not UsageRecord.objects.filter(tenant=tenant).exists()
    settings.LEDGER_INFLIGHT_GRACE_SECONDS = 0.5
    time.sleep(0.6)
    assert reconcile_inflight.apply().get() == IN_FLIGHT
    records = UsageRecord.objects.filter(tenant=tenant)
    assert records.count() == IN_FLIGHT
    for record in records:
        assert record.usage_estimated and record.error_type == INFLIGHT_LOST
        assert record.api_key_id == key.id and record.model_requested == "gpt-4o"
        # gpt-4o at list price: at least the 100-token output cap at $10 / 1M
        assert record.cost >= Decimal(100) * Decimal("0.00001")
