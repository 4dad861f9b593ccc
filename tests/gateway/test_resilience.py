"""Routing and resilience against real server processes sharing Postgres and Redis, through the SDK.

Two OpenAI-protocol fakes stand for two deployments of gpt-4o: `primary` (priority 1) and `secondary`.
A fake's `forced` directives make it misbehave for every request (down, rate limited, hanging).
"""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess, reseed_catalogue
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db

SYNC = 0.6  # a process sees another's health changes within one cache tick (0.25 s); allow a margin
SERVER_ENV = {"CIRCUIT_FAILURE_THRESHOLD": "3", "CIRCUIT_MIN_REQUESTS": "1000", "CIRCUIT_COOLDOWN_SECONDS": "1",
              "REQUEST_TIMEOUT_SECONDS": "3", "RETRY_BACKOFF_BASE_SECONDS": "0.01", "ROUTE_LOG": "all"}


@pytest.fixture(scope="module")
def env(django_db_setup, django_db_blocker):
    from apps.providers import services
    from apps.tenants.models import Tenant
    from tests import factories

    primary, secondary = FakeOpenAI().start(), FakeOpenAI().start()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="rs-tenant").delete()
        from apps.providers.models import ModelEntry

        if not ModelEntry.objects.filter(provider__isnull=True).exists():
            reseed_catalogue()
        tenant = factories.tenant("rs-tenant", default_routing_strategy="failover_chain")
        _, key = factories.api_key(tenant)
        providers = {}
        for slug, fake, priority in (("primary", primary, 1), ("secondary", secondary, 2)):
            provider = services.provider_create(tenant=tenant, slug=slug, name=slug.title(), type="openai",
                                                base_url=f"{fake.url}/v1", priority=priority,
                                                options={"timeout_seconds": 0.7})
            services.credential_create(tenant=tenant, provider=provider, api_key=fake.api_key)
            providers[slug] = provider
    servers = [ServerProcess(env=SERVER_ENV).start(), ServerProcess(env=SERVER_ENV).start()]
    yield {"key": key, "servers": servers, "primary": primary, "secondary": secondary, "tenant": tenant,
           "providers": providers}
    for server in servers:
        server.stop()
    primary.stop()
    secondary.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="rs-tenant").delete()


@pytest.fixture(autouse=True)
def _healthy(env):
    env["primary"].forced = env["secondary"].forced = ""
    time.sleep(SYNC)  # Redis was just flushed for this test: let every server's health cache catch up
    yield
    env["primary"].forced = env["secondary"].forced = ""


def client(env, server=0) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{env['servers'][server].url}/v1", api_key=env["key"], max_retries=0)


def ask(env, server=0, text="hello", **kwargs):
    raw = client(env, server).chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "gpt-4o"), messages=[{"role": "user", "content": text}], **kwargs)
    return raw, raw.parse()


def metric(server: ServerProcess, name: str, **labels) -> float | None:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_route_headers_and_provider_field(env):
    raw, completion = ask(env)
    assert raw.headers["x-cb-provider"] == "primary"
    assert raw.headers["x-cb-route"] == "strategy=failover_chain; attempts=1"
    assert 0 <= float(raw.headers["x-cb-overhead-ms"]) < 1000
    assert completion.model_extra["provider"] == "Primary"


def test_failover_then_the_circuit_opens_for_every_process(env):
    env["primary"].forced = "!status 500"
    for _ in range(3):
        raw, completion = ask(env, server=0)
        assert raw.headers["x-cb-provider"] == "secondary"
        assert raw.headers["x-cb-route"].endswith("attempts=2")
    calls = len(env["primary"].requests)
    time.sleep(SYNC)
    raw, _ = ask(env, server=1)  # the other process skips the open circuit without calling it
    assert raw.headers["x-cb-provider"] == "secondary" and raw.headers["x-cb-route"].endswith("attempts=1")
    assert len(env["primary"].requests) == calls
    deployment = f"{env['providers']['primary'].pk}:"
    states = {s.labels["deployment"]: s.value for f in text_string_to_metric_families(
        httpx.get(f"{env['servers'][1].url}/metrics", timeout=10).text) for s in f.samples
        if s.name == "cb_circuit_state"}
    assert any(dep.startswith(deployment) and value == 2 for dep, value in states.items()), states

    # Half-open after the cool-down: exactly one trial goes to primary; its success closes the circuit.
    env["primary"].forced = ""
    time.sleep(1.2)
    raw, _ = ask(env, server=1)
    assert raw.headers["x-cb-provider"] == "primary"
    assert len(env["primary"].requests) == calls + 1
    raw, _ = ask(env, server=0)
    assert raw.headers["x-cb-provider"] == "primary"


def test_a_failed_trial_reopens_the_circuit(env):
    env["primary"].forced = "!status 503"
    for _ in range(3):
        ask(env)
    time.sleep(1.2 + SYNC)
    calls = len(env["primary"].requests)
    raw, _ = ask(env, server=1)  # the trial fails and the request still succeeds on secondary
    assert raw.headers["x-cb-provider"] == "secondary" and len(env["primary"].requests) == calls + 1
    time.sleep(SYNC)
    raw, _ = ask(env, server=0)  # open again: not called
    assert len(env["primary"].requests) == calls + 1


def test_rate_limit_is_shared_and_respected(env):
    env["primary"].forced = "!status 429 retry-after=2"
    raw, _ = ask(env, server=0)
    assert raw.headers["x-cb-provider"] == "secondary"
    calls = len(env["primary"].requests)
    env["primary"].forced = ""
    time.sleep(SYNC)
    raw, _ = ask(env, server=1)  # still inside Retry-After: skipped by the other process too
    assert raw.headers["x-cb-provider"] == "secondary" and len(env["primary"].requests) == calls
    time.sleep(2.1 - SYNC + 0.3)
    raw, _ = ask(env, server=1)
    assert raw.headers["x-cb-provider"] == "primary"


def test_a_hanging_deployment_times_out_and_fails_over(env):
    env["primary"].forced = "!hang 5"
    started = time.monotonic()
    raw, completion = ask(env)
    assert raw.headers["x-cb-provider"] == "secondary"
    assert time.monotonic() - started < 2.5  # the 0.7 s attempt cap left time for the fallback
    assert completion.choices[0].message.content == "[openai] You said: hello"


def test_a_reset_connection_fails_over(env):
    env["primary"].forced = "!reset"
    raw, _ = ask(env)
    assert raw.headers["x-cb-provider"] == "secondary"


def test_streams_fail_over_before_the_first_byte_only(env):
    env["primary"].forced = "!status 500"
    stream = client(env).chat.completions.create(model="gpt-4o", stream=True,
                                                 messages=[{"role": "user", "content": "stream please"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
        "[openai] You said: stream please"
    env["primary"].forced = ""
    # Once bytes flowed, a dying stream is reported in-band, not retried elsewhere.
    calls = len(env["secondary"].requests)
    with pytest.raises(openai.APIError):
        list(client(env).chat.completions.create(model="gpt-4o", stream=True, messages=[
            {"role": "user", "content": "a b c d e f !error-after 3"}]))
    assert len(env["secondary"].requests) == calls


def test_another_key_of_the_same_deployment_first(env, django_db_blocker):
    from apps.providers import services
    from tests.conftest import committed

    def add_bad_key():
        provider = env["providers"]["primary"]
        provider.refresh_from_db()
        return services.credential_create(tenant=env["tenant"], provider=provider, api_key="sk-revoked-upstream")

    bad = committed(add_bad_key)
    try:
        deadline = time.monotonic() + 5
        seen = set()
        while len(seen) < 2 and time.monotonic() < deadline:  # until the snapshot has both keys
            raw, _ = ask(env)
            assert raw.headers["x-cb-provider"] == "primary"  # the bad key is retried on the good one
            seen.add(env["primary"].requests[-1]["headers"]["Authorization"])
            if raw.headers["x-cb-route"].endswith("attempts=2"):
                seen.add("Bearer sk-revoked-upstream")
        assert "Bearer sk-revoked-upstream" in seen
    finally:
        committed(bad.delete)


def test_constraints_and_options(env):
    c = client(env)
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                  extra_body={"circuit_breaker": {"max_cost_per_1k_tokens": 0.0001}})
    body = info.value.body
    assert body["code"] == "no_candidate_meets_constraints"
    assert body["param"] == "circuit_breaker.max_cost_per_1k_tokens"
    assert "primary/gpt-4o" in body["message"] and "secondary/gpt-4o" in body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                  extra_body={"circuit_breaker": {"routing_strategy": "vibes"}})
    assert info.value.body["param"] == "circuit_breaker.routing_strategy"
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                  extra_body={"circuit_breaker": {"colour": "blue"}})
    assert info.value.body["code"] == "invalid_routing_option"


def test_openrouter_fields(env):
    raw, completion = ask(env, extra_body={"provider": {"order": ["secondary"]}})
    assert raw.headers["x-cb-provider"] == "secondary"
    raw, _ = ask(env, extra_body={"provider": {"ignore": ["primary"]}})
    assert raw.headers["x-cb-provider"] == "secondary"
    raw, _ = ask(env, extra_body={"provider": {"only": ["primary"]}})
    assert raw.headers["x-cb-provider"] == "primary"
    # `models`: tried in order — an unknown first name is skipped only if it is a fallback, so use a real chain
    raw, _ = ask(env, model="gpt-4o", extra_body={"models": ["gpt-4o-mini"], "route": "fallback"})
    assert raw.headers["x-cb-model"] == "gpt-4o"
    env["primary"].forced = env["secondary"].forced = "!status 500"
    with pytest.raises(openai.InternalServerError):
        ask(env, extra_body={"provider": {"allow_fallbacks": False}})
    assert len([r for r in env["secondary"].requests[-1:]]) == 1
    env["primary"].forced = env["secondary"].forced = ""
    with pytest.raises(openai.BadRequestError) as info:
        ask(env, extra_body={"provider": {"max_price": {"prompt": 0.5}}})
    assert info.value.body["param"].startswith("provider.max_price")
    raw, _ = ask(env, model="gpt-4o:floor")
    assert raw.headers["x-cb-route"].startswith("strategy=cost_optimized")


def test_capabilities_decide_where_a_request_can_go(env):
    with pytest.raises(openai.BadRequestError) as info:  # o1-mini has no tools
        ask(env, model="o1-mini", tools=[{"type": "function", "function": {"name": "f"}}])
    assert info.value.body["code"] == "no_candidate_meets_constraints" and "tools" in info.value.body["message"]
    raw, _ = ask(env, model="o1-mini")  # without tools it is fine
    assert raw.headers["x-cb-model"] == "o1-mini"


def test_tenant_virtual_model_routes_by_its_strategy(env):
    from apps.providers.models import VirtualModel
    from tests.conftest import committed

    committed(lambda: VirtualModel.objects.create(
        tenant=env["tenant"], name="team-chat", strategy="cost_optimized", candidates=["gpt-4o", "o1-mini"]))
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                raw, _ = ask(env, model="team-chat")
                break
            except openai.NotFoundError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert raw.headers["x-cb-model"] == "o1-mini"  # the cheaper of the two
        assert raw.headers["x-cb-route"].startswith("strategy=cost_optimized")
        # a tools request cannot go to o1-mini, so it goes to gpt-4o
        raw, _ = ask(env, model="team-chat", tools=[{"type": "function", "function": {"name": "f"}}])
        assert raw.headers["x-cb-model"] == "gpt-4o"
        listed = {m.id: m for m in client(env).models.list()}
        assert listed["team-chat"].model_extra["routing_strategy"] == "cost_optimized"
    finally:
        committed(lambda: VirtualModel.objects.filter(name="team-chat").delete())


def test_performance_first_learns_from_live_latency(env):
    env["primary"].forced = "!hang 0.25"
    for _ in range(4):  # both get measured: primary is slow
        ask(env, extra_body={"circuit_breaker": {"routing_strategy": "failover_chain"}})
        ask(env, extra_body={"provider": {"order": ["secondary"]}})
    chosen = [ask(env, extra_body={"circuit_breaker": {"routing_strategy": "performance_first"}})[0]
              .headers["x-cb-provider"] for _ in range(10)]
    assert chosen.count("secondary") >= 8  # probes aside, the fast one wins


def test_metrics_count_requests_and_attempts(env):
    server = env["servers"][0]
    before = metric(server, "cb_requests_total", endpoint="chat.completions", provider="primary",
                    status="200") or 0
    ask(env)
    ask(env)
    after = metric(server, "cb_requests_total", endpoint="chat.completions", provider="primary", status="200")
    assert after == before + 2
    assert (metric(server, "cb_upstream_attempts_total", provider="primary", outcome="ok") or 0) >= 2
    assert metric(server, "cb_tokens_total", provider="primary", kind="prompt") >= 4


def test_health_lists_global_providers_only(env):
    report = httpx.get(f"{env['servers'][0].url}/health", timeout=10).json()
    assert "primary" not in report["providers"] and "secondary" not in report["providers"]
    assert report["providers"]["simulated"]["type"] == "simulated"


def test_route_log_is_structured_json(env):
    raw, _ = ask(env, extra_body={"circuit_breaker": {"budget_tracking": {"user_id": "u-1", "project_id": "p-9"}}})
    request_id = raw.headers["x-cb-request-id"]

    def logged():  # the line is written after the response, so it may lag the answer a little
        return [line for line in env["servers"][0].output().splitlines()
                if '"event":"route"' in line and request_id in line]

    deadline = time.monotonic() + 10
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = logged()
    assert lines, "no route log line for the request"
    decision = json.loads(lines[-1][lines[-1].index("{"):])
    assert decision["budget"] == {"user_id": "u-1", "project_id": "p-9"}
    assert decision["provider"] == "primary" and decision["attempts"][0]["outcome"] == "ok"
    assert env["primary"].api_key not in env["servers"][0].output()


def test_concurrency_limit_answers_503(env):
    import threading

    server = ServerProcess(env={**SERVER_ENV, "MAX_CONCURRENT_REQUESTS": "1"}).start()
    env["primary"].forced = "!hang 0.5"
    try:
        slow = threading.Thread(target=lambda: httpx.post(
            f"{server.url}/v1/chat/completions", timeout=10, headers={"Authorization": f"Bearer {env['key']}"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}))
        slow.start()
        time.sleep(0.2)
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=10,
                              headers={"Authorization": f"Bearer {env['key']}"},
                              json={"model": "gpt-4o", "messages": [{"role": "user", "content": "y"}]})
        assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
        slow.join()
    finally:
        server.stop()
