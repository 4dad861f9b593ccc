"""The usage ledger end to end: a real server appends to the Redis stream, a real Celery worker (with its
beat schedule) writes Postgres; killing either with SIGKILL loses no record."""

from __future__ import annotations

import signal
import time
from decimal import Decimal

import httpx
import pytest

from tests.celery_worker import Worker
from tests.conftest import ServerProcess
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def setup(django_db_setup, django_db_blocker):
    from apps.tenants.models import Tenant
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        tenant, key, secret = factories.tenant_on_fake_openai("ledger-t", fake, provider_slug="l-openai",
                                                              user_label="alice", project_label="apollo")
    yield {"fake": fake, "secret": secret, "key": key, "tenant": tenant}
    fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="ledger-t").delete()


def chat(server, secret, text="hi", **extra):
    return httpx.post(f"{server.url}/v1/chat/completions", timeout=30, headers={"Authorization": f"Bearer {secret}"},
                      json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra})


def wait_for_rows(request_ids, timeout=30):
    from apps.billing.models import UsageRecord

    deadline = time.monotonic() + timeout
    while True:
        rows = {r.request_id: r for r in UsageRecord.objects.filter(request_id__in=list(request_ids))}
        if len(rows) == len(request_ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_every_request_is_recorded_with_exact_cost(setup, tmp_path):
    from apps.billing.models import UsageRecord

    server = ServerProcess().start()
    worker = Worker(tmp_path)
    try:
        ok = chat(server, setup["secret"])
        streamed = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                              headers={"Authorization": f"Bearer {setup['secret']}"},
                              json={"model": "gpt-4o", "stream": True, "user": "bob",
                                    "metadata": {"workflow_id": "wf-1"},
                                    "messages": [{"role": "user", "content": "stream it"}]})
        failed = chat(server, setup["secret"], "!status 500")
        unknown = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                             headers={"Authorization": f"Bearer {setup['secret']}"},
                             json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
        bad_key = chat(server, "cb-wrong")
        labelled = chat(server, setup["secret"], "with budget labels",
                        circuit_breaker={"budget_tracking": {"user_id": "carol", "project_id": "gemini"}})
        responses = [ok, streamed, failed, unknown, bad_key, labelled]
        assert [r.status_code for r in responses] == [200, 200, 502, 404, 401, 200]
        ids = [r.headers["x-cb-request-id"] for r in responses]
        rows = wait_for_rows(ids)
        assert len(rows) == 6, f"only {len(rows)} of 6 records arrived"

        first = rows[ids[0]]
        # brain: prompt = 1 word + 1, completion "[openai] You said: hi" = 4 words; gpt-4o $2.50 / $10 per 1M
        assert (first.prompt_tokens, first.completion_tokens) == (2, 4)
        assert first.cost == Decimal("0.000045")
        assert first.tenant_id == setup["tenant"].pk and first.api_key_id == setup["key"].pk
        assert (first.user_label, first.project_label) == ("alice", "apollo")
        assert (first.model_requested, first.model_served, first.provider) == ("gpt-4o", "gpt-4o", "l-openai")
        assert first.status == 200 and not first.streamed and first.attempts == 1 and first.latency_ms > 0

        stream_row = rows[ids[1]]
        assert stream_row.streamed and stream_row.ttft_ms is not None and stream_row.user_label == "bob"
        assert stream_row.workflow_id == "wf-1" and stream_row.completion_tokens == 5
        assert not stream_row.usage_estimated  # asked upstream for usage although the client did not

        assert rows[ids[2]].status == 502 and rows[ids[2]].error_type and rows[ids[2]].cost == 0
        assert rows[ids[3]].status == 404 and rows[ids[3]].error_type == "model_not_found"
        assert rows[ids[4]].status == 401 and rows[ids[4]].tenant_id is None
        assert (rows[ids[5]].user_label, rows[ids[5]].project_label) == ("carol", "gemini")
        assert UsageRecord.objects.filter(request_id__in=ids).count() == 6  # once each
        setup["key"].refresh_from_db()
        assert setup["key"].last_used_at is not None  # kept by the ingester, not the hot path
    finally:
        worker.stop()
        server.stop()


def test_a_client_leaving_mid_stream_is_billed_for_what_it_consumed(setup, tmp_path):
    server = ServerProcess().start()
    worker = Worker(tmp_path)
    try:
        body = {"model": "gpt-4o", "stream": True,
                "messages": [{"role": "user", "content": " ".join(["word"] * 30) + " !slow 0.05"}]}
        with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {setup['secret']}"}) as response:
            request_id = response.headers["x-cb-request-id"]
            lines = response.iter_lines()
            for _ in range(8):
                next(lines)
        row = wait_for_rows([request_id])[request_id]
        assert row.status == 499 and row.streamed and row.usage_estimated
        assert row.prompt_tokens > 30 and 0 < row.completion_tokens < 30
        assert row.cost > 0
    finally:
        worker.stop()
        server.stop()


def test_a_stream_without_upstream_usage_is_counted_with_the_tokenizer(setup, tmp_path):
    server = ServerProcess().start()
    worker = Worker(tmp_path)
    try:
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                              headers={"Authorization": f"Bearer {setup['secret']}"},
                              json={"model": "gpt-4o", "stream": True,
                                    "messages": [{"role": "user", "content": "count these words !no-usage"}]})
        assert response.status_code == 200 and '"usage"' not in response.text
        request_id = response.headers["x-cb-request-id"]
        row = wait_for_rows([request_id])[request_id]
        assert row.status == 200 and row.usage_estimated
        # "[openai] You said: count these words !no-usage" in o200k_base
        from apps.gateway.prompt_tokens import count_text

        assert row.completion_tokens == count_text("[openai] You said: count these words !no-usage")
        assert row.prompt_tokens > 0 and row.cost > 0
    finally:
        worker.stop()
        server.stop()


def test_sigkill_of_the_web_process_loses_no_answered_request(setup, tmp_path):
    server = ServerProcess().start()
    ids = [chat(server, setup["secret"], f"req {i}").headers["x-cb-request-id"] for i in range(25)]
    server.proc.send_signal(signal.SIGKILL)  # right after the last answer
    server.proc.wait(10)
    worker = Worker(tmp_path)
    try:
        assert len(wait_for_rows(ids)) == 25
    finally:
        worker.stop()


def test_sigkill_of_a_worker_mid_batch_loses_nothing_and_duplicates_nothing(setup, tmp_path):
    import redis
    from django.conf import settings

    from apps.billing.ingest import ensure_group
    from apps.billing.ledger_stream import GROUP, STREAM
    from apps.billing.models import UsageRecord

    server = ServerProcess().start()
    try:
        ids = [chat(server, setup["secret"], f"batch {i}").headers["x-cb-request-id"] for i in range(30)]
    finally:
        server.stop()
    # A worker that read entries and died before acknowledging them …
    client = redis.Redis.from_url(settings.REDIS_URL)
    ensure_group(client)
    taken = client.xreadgroup(GROUP, "dead-worker", {STREAM: ">"}, count=10)
    assert len(taken[0][1]) == 10
    # … and a real worker killed with SIGKILL while running.
    victim = Worker(tmp_path, env={"USAGE_CLAIM_IDLE_SECONDS": "1"})
    time.sleep(1.5)
    victim.kill()
    survivor = Worker(tmp_path, env={"USAGE_CLAIM_IDLE_SECONDS": "1"})
    try:
        rows = wait_for_rows(ids)
        assert len(rows) == 30
        assert UsageRecord.objects.filter(request_id__in=ids).count() == 30
        deadline = time.monotonic() + 10
        while client.xlen(STREAM) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.xlen(STREAM) == 0  # acknowledged and deleted once written
    finally:
        survivor.stop()
        client.close()
