"""Request logs: off by default, on per tenant or per key, carried with the usage entry to the ingester, redacted,
truncated, deleted after the tenant's retention, and read through /api/request-logs/ by their own tenant only.
A real gateway process and a fake OpenAI upstream; the ingester runs in the test (as the worker would)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from tests.conftest import ServerProcess, committed
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def setup(django_db_setup, django_db_blocker):
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        on, on_key, on_secret = factories.tenant_on_fake_openai("rl-on", fake, provider_slug="rl-on-openai")
        on.request_logging, on.request_log_retention_days = True, 7
        on.request_log_redact = ["ssn", "request.metadata.email"]
        on.save()
        off, _, off_secret = factories.tenant_on_fake_openai("rl-off", fake, provider_slug="rl-off-openai")
        logged_key, logged_secret = factories.api_key(off, name="logged", limits={"request_logging": True})
        readers = {tenant.slug: factories.api_key(tenant, name="reader", scopes=["read"])[1] for tenant in (on, off)}
    server = ServerProcess().start()
    yield {"server": server, "fake": fake, "secrets": {"on": on_secret, "off": off_secret, "off-logged": logged_secret},
           "readers": readers, "tenants": {"on": on, "off": off}, "keys": {"on": on_key, "off-logged": logged_key}}
    server.stop()
    fake.stop()
    with django_db_blocker.unblock():
        from apps.tenants.models import Tenant

        Tenant.objects.filter(slug__in=["rl-on", "rl-off"]).delete()


def chat(setup, who: str, text: str, **extra) -> httpx.Response:
    response = httpx.post(f"{setup['server'].url}/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {setup['secrets'][who]}"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra})
    assert response.status_code == 200, response.text
    return response


def ingest() -> None:
    """Committed (its own connection), as the worker's would be, so the server's API sees the rows."""
    from apps.billing.ingest import ingest_once

    def drain():
        while ingest_once():
            pass

    committed(drain)


def log_of(response: httpx.Response):
    from apps.billing.models import RequestLog, UsageRecord

    ingest()
    request_id = response.headers["x-cb-request-id"]
    assert UsageRecord.objects.filter(request_id=request_id).exists()
    return RequestLog.objects.filter(usage_id=request_id).first()


def api(setup, reader: str, path: str) -> httpx.Response:
    return httpx.get(f"{setup['server'].url}/api/request-logs/{path}", timeout=30,
                     headers={"Authorization": f"Bearer {setup['readers'][reader]}"})


def test_off_by_default(setup):
    assert log_of(chat(setup, "off", "nothing kept")) is None


def test_on_per_tenant_with_redaction(setup):
    import orjson

    response = chat(setup, "on", "keep me", metadata={"api_key": "sk-live-123", "ssn": "123-45-6789",
                                                      "email": "a@b.c", "topic": "tests"})
    log = log_of(response)
    request = orjson.loads(log.request_body)
    assert request["messages"] == [{"role": "user", "content": "keep me"}]
    assert request["metadata"] == {"api_key": "[REDACTED]", "ssn": "[REDACTED]", "email": "[REDACTED]",
                                   "topic": "tests"}
    answer = orjson.loads(log.response_body)
    assert answer["choices"][0]["message"]["content"] == "[openai] You said: keep me"
    assert answer["usage"]["cost"] == float(log.usage.cost)
    assert not log.truncated and log.tenant_id == setup["tenants"]["on"].id
    assert log.expires_at - log.created_at == timedelta(days=7)
    for secret in ("sk-live-123", "123-45-6789", "a@b.c"):
        assert secret not in log.request_body


def test_on_per_key_only(setup):
    assert log_of(chat(setup, "off-logged", "this key keeps logs")) is not None
    assert log_of(chat(setup, "off", "this one does not")) is None


def test_streams_are_logged_with_what_was_relayed(setup):
    with httpx.stream("POST", f"{setup['server'].url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {setup['secrets']['on']}"},
                      json={"model": "gpt-4o-mini", "stream": True,
                            "messages": [{"role": "user", "content": "stream log"}]}) as response:
        response.read()
    log = log_of(response)
    assert '"content":"[openai] You said: stream log"' in log.response_body
    assert '"streamed":true' in log.response_body


def test_bodies_are_truncated_with_a_marker(setup, settings):
    settings.REQUEST_LOG_MAX_BYTES = 300
    log = log_of(chat(setup, "on", "é" * 400))  # two bytes a character: the cut must not split one
    assert log.truncated
    kept, marker = log.request_body.split("…[truncated ")
    assert len(kept.encode()) <= 300 and marker.endswith(" bytes]")
    assert kept.encode().decode() == kept


def test_the_provider_key_is_scrubbed_from_logged_answers(setup):
    fake = setup["fake"]
    log = log_of(chat(setup, "on", f"echo {fake.api_key} back"))  # the fake repeats the prompt
    assert fake.api_key not in log.response_body and fake.api_key not in log.request_body


def test_retention_deletes_expired_logs_and_keeps_usage(setup):
    from apps.billing.models import RequestLog, UsageRecord
    from apps.billing.request_logs import purge_expired
    from apps.billing.tasks import purge_request_logs

    log = log_of(chat(setup, "on", "short lived"))
    assert purge_expired(now=timezone.now() + timedelta(days=6)) == 0
    assert RequestLog.objects.filter(pk=log.pk).exists()
    RequestLog.objects.filter(pk=log.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_request_logs() >= 1  # the beat task
    assert not RequestLog.objects.filter(pk=log.pk).exists()
    assert UsageRecord.objects.filter(request_id=log.pk).exists()


def test_api_is_tenant_scoped_read_only_and_filterable(setup):
    mine = chat(setup, "on", "api visible").headers["x-cb-request-id"]
    theirs = chat(setup, "off-logged", "not yours").headers["x-cb-request-id"]
    ingest()
    listed = api(setup, "rl-on", "?limit=100")
    assert listed.status_code == 200, listed.text
    ids = [row["request_id"] for row in listed.json()["results"]]
    assert mine in ids and theirs not in ids
    one = api(setup, "rl-on", f"{mine}/").json()
    assert one["request"]["messages"][0]["content"] == "api visible"
    assert one["response"]["choices"][0]["message"]["content"] == "[openai] You said: api visible"
    assert one["usage"]["model_served"] == "gpt-4o-mini" and one["usage"]["status"] == 200
    foreign, missing = api(setup, "rl-on", f"{theirs}/"), api(setup, "rl-on", "req_missing/")
    assert foreign.status_code == missing.status_code == 404 and foreign.json() == missing.json()
    assert api(setup, "rl-off", f"{theirs}/").status_code == 200
    by_key = api(setup, "rl-off", f"?api_key_id={setup['keys']['off-logged'].id}").json()["results"]
    assert theirs in [row["request_id"] for row in by_key]
    assert api(setup, "rl-on", "?model=no-such-model").json()["results"] == []
    assert api(setup, "rl-on", "?status=abc").status_code == 400
    assert api(setup, "rl-on", "?since=yesterday").status_code == 400
    written = httpx.delete(f"{setup['server'].url}/api/request-logs/{mine}/", timeout=30,
                           headers={"Authorization": f"Bearer {setup['readers']['rl-on']}"})
    assert written.status_code in (403, 405)


def test_tenant_and_key_flags_through_the_api(setup):
    from apps.tenants.models import ApiKey
    from tests import factories

    admin_secret = committed(factories.api_key, setup["tenants"]["off"], name="admin", scopes=["admin"])[1]
    headers = {"Authorization": f"Bearer {admin_secret}"}
    created = httpx.post(f"{setup['server'].url}/api/keys/", timeout=30, headers=headers,
                         json={"name": "via-api", "request_logging": True})
    assert created.status_code == 201, created.text
    assert created.json()["request_logging"] is True
    assert ApiKey.objects.get(pk=created.json()["id"]).request_logging
    setup["secrets"]["via-api"] = created.json()["key"]
    assert log_of(chat(setup, "via-api", "a key made through the API")) is not None
    tenant = httpx.get(f"{setup['server'].url}/api/tenants/rl-off/", timeout=30,
                       headers=headers).json()
    assert tenant["request_logging"] is False and tenant["request_log_retention_days"] == 30
