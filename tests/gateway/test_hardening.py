"""Hardening of /v1 against hostile upstreams and hostile input, through a real server and real HTTP.

- Credentials we send upstream never come back: a hostile fake echoes the headers it received (and every key
  it has seen, URL-encoded and as Basic auth) into error bodies and in-stream errors.
- Control characters in a model name, and nesting too deep to encode, are a 400 before anything is sent.
- A stream cut or stalled upstream is recorded in the ledger as the failure it was, with its partial usage.
- Browsers may read every header we send (CORS exposes them), on /v1 and on /api.
"""

from __future__ import annotations

import base64
import time
from urllib.parse import quote

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess, reseed_catalogue
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db

# Keys with characters that encode differently (/, +, =), so URL-encoded and base64 forms are distinct.
KEY_A1 = "sk-hostile/A1+first=key_0001"
KEY_A2 = "sk-hostile/A2+second=key_0002"
KEY_B = "sk-hostile/B1+other=key_0003"
KEY_C1, KEY_C2 = "sk-hostile/C1+third=key_0004", "sk-hostile/C2+third=key_0005"
KEY_ANTHROPIC, KEY_GEMINI = "sk-ant-hostile/D1+claude=key_0006", "AIza-hostile/E1+gemini=key_0007"
ALL_KEYS = (KEY_A1, KEY_A2, KEY_B, KEY_C1, KEY_C2, KEY_ANTHROPIC, KEY_GEMINI)
# Other protocols' credential headers (x-api-key, x-goog-api-key): provider slug, model.
OTHER_PROTOCOLS = {"anthropic": ("h-anthropic", "h-anthropic/claude-3-haiku"),
                   "gemini": ("h-gemini", "h-gemini/gemini-1.5-flash")}
EXPOSED = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
           "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
           "x-cb-request-id", "x-cb-provider", "x-cb-model", "x-cb-route", "x-cb-overhead-ms", "retry-after")


def leaks(text: str) -> list[str]:
    """Every form of a configured key found in `text`."""
    found = []
    for key in ALL_KEYS:
        for form in (key, quote(key, safe=""), base64.b64encode(f"proxy-user:{key}".encode()).decode(),
                     key.split("/", 1)[1]):
            if form in text:
                found.append(form)
    return found


@pytest.fixture(scope="module")
def env(django_db_setup, django_db_blocker):
    from apps.providers import services
    from apps.tenants.models import Tenant
    from tests import factories

    echo, other, third = FakeOpenAI(), FakeOpenAI(), FakeOpenAI()
    echo.api_key, echo.api_key_alternatives, other.api_key = KEY_A1, {KEY_A2}, KEY_B
    third.api_key, third.api_key_alternatives = KEY_C1, {KEY_C2}
    echo.start(), other.start(), third.start()
    echo.hostile = other.hostile = third.hostile = True
    # As if another gateway process had sent `third`'s second key: this one has not, yet must scrub it.
    third.seen_keys.append(KEY_C2)
    anthropic, gemini = FakeAnthropic(), FakeGemini()
    anthropic.api_key, gemini.api_key = KEY_ANTHROPIC, KEY_GEMINI
    anthropic.start(), gemini.start()
    anthropic.hostile = gemini.hostile = True
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="hd-tenant").delete()
        from apps.providers.models import ModelEntry

        if not ModelEntry.objects.filter(provider__isnull=True).exists():
            reseed_catalogue()
        tenant = factories.tenant("hd-tenant", default_routing_strategy="failover_chain")
        _, key = factories.api_key(tenant)
        for slug, fake, priority, keys in (("echo", echo, 1, (KEY_A1, KEY_A2)), ("other", other, 2, (KEY_B,)),
                                           ("third", third, 3, (KEY_C1, KEY_C2))):
            provider = services.provider_create(tenant=tenant, slug=slug, name=slug.title(), type="openai",
                                                base_url=f"{fake.url}/v1", priority=priority,
                                                options={"timeout_seconds": 1.5})
            for secret in keys:
                services.credential_create(tenant=tenant, provider=provider, api_key=secret)
        for kind, fake, secret in (("anthropic", anthropic, KEY_ANTHROPIC), ("gemini", gemini, KEY_GEMINI)):
            provider = services.provider_create(tenant=tenant, slug=OTHER_PROTOCOLS[kind][0], name=kind, type=kind,
                                                base_url=fake.url, priority=50)
            services.credential_create(tenant=tenant, provider=provider, api_key=secret)
    server = ServerProcess(env={"CIRCUIT_FAILURE_THRESHOLD": "1000", "CIRCUIT_MIN_REQUESTS": "1000",
                                "RETRY_BACKOFF_BASE_SECONDS": "0", "REQUEST_TIMEOUT_SECONDS": "5",
                                "ROUTE_LOG": "all", "LOG_LEVEL": "INFO"}).start()
    yield {"server": server, "key": key, "echo": echo, "other": other, "third": third}
    server.stop()
    for fake in (echo, other, third, anthropic, gemini):
        fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="hd-tenant").delete()


@pytest.fixture(autouse=True)
def _reset(env):
    env["echo"].forced = env["other"].forced = env["third"].forced = ""
    time.sleep(0.6)  # Redis was flushed for this test: let the server's health cache forget earlier failures
    yield
    env["echo"].forced = env["other"].forced = env["third"].forced = ""


def post(env, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{env['server'].url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {env['key']}", **kwargs.pop("headers", {})}, **kwargs)


def chat_body(text: str, model: str = "echo/gpt-4o", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


# ---- 1. provider keys never reach clients or logs -------------------------------------------------------------
@pytest.mark.parametrize(("upstream", "expected"), [(400, 400), (404, 404), (429, 429), (401, 502), (403, 502),
                                                    (500, 502)])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream-before-first-byte"])
def test_echoed_credentials_are_scrubbed_from_error_responses(env, upstream, expected, stream):
    for _ in range(2):  # round-robin: both of the provider's keys are sent (and seen by the fake) at least once
        response = post(env, chat_body(f"!status {upstream}", stream=stream))
        assert response.status_code == expected, response.text
        assert leaks(response.text) == [], response.text
        if response.json()["error"]["code"] != "upstream_rate_limited":  # (ours, once the keys are rate limited)
            assert "[redacted]" in response.text  # the upstream did echo them: the scrub is what kept them out
    assert set(env["echo"].seen_keys) >= {KEY_A1, KEY_A2}


def test_echoed_credentials_are_scrubbed_from_in_stream_error_events(env):
    post(env, chat_body("warm up both keys")), post(env, chat_body("warm up both keys"))
    with httpx.stream("POST", f"{env['server'].url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {env['key']}"},
                      json=chat_body("one two three four !error-after 2", stream=True)) as response:
        text = response.read().decode()
    assert response.status_code == 200
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = orjson.loads(events[-2])["error"]
    assert "stream broke" in error["message"] and "[redacted]" in error["message"]
    assert leaks(text) == [], text


@pytest.mark.parametrize("kind", sorted(OTHER_PROTOCOLS))
def test_other_protocols_credential_headers_are_scrubbed_too(env, kind):
    model = OTHER_PROTOCOLS[kind][1]
    for text, stream in (("!status 400", False), ("!status 401", False), ("!status 500", False),
                         ("one two three four !error-after 2", True)):
        response = post(env, chat_body(text, model=model, stream=stream))
        assert response.status_code in (200, 400, 502), response.text
        assert "[redacted]" in response.text and leaks(response.text) == [], response.text


def test_every_configured_credential_of_the_provider_is_scrubbed_even_one_never_sent(env):
    response = post(env, chat_body("!status 400", model="third/gpt-4o"))
    assert response.status_code == 400
    assert response.text.count("[redacted]") >= 2 and leaks(response.text) == [], response.text


def test_first_failure_of_a_fallback_chain_is_scrubbed(env):
    env["echo"].forced = "!status 500"
    env["other"].forced = env["third"].forced = "!status 503"
    post(env, chat_body("hello", model="other/gpt-4o"))  # `other` sees its key, so both fakes echo a key
    response = post(env, chat_body("hello", model="gpt-4o"))
    assert response.status_code == 502
    assert "fake openai error 500" in response.json()["error"]["message"]  # the first failure, from `echo`
    assert "[redacted]" in response.text and leaks(response.text) == []


def test_embeddings_and_legacy_completions_errors_are_scrubbed(env):
    env["echo"].forced = "!status 500"
    for path, body in (("completions", {"model": "echo/gpt-3.5-turbo-instruct", "prompt": "hi"}),
                       ("chat/completions", chat_body("x"))):
        response = httpx.post(f"{env['server'].url}/v1/{path}", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {env['key']}"})
        assert leaks(response.text) == [], response.text


def test_route_log_and_server_log_hold_no_credential(env):
    env["echo"].forced = "!status 401"
    for _ in range(3):
        post(env, chat_body("log me"))
    output = env["server"].output()
    assert "route" in output  # ROUTE_LOG=all: the route log is in this output
    assert leaks(output) == []


# ---- 4. control characters in a model name ---------------------------------------------------------------------
@pytest.mark.parametrize("model", ["echo/gpt-4o-mini\n", "echo/gpt-4o\r\nx-evil: 1", "echo/gpt\x00-4o",
                                   "echo/gpt-4o\x7f"])
def test_control_characters_in_the_model_name_are_a_400_before_anything_is_sent(env, model):
    sent = len(env["echo"].requests)
    for stream in (False, True):
        response = post(env, chat_body("hi", model=model, stream=stream))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "model" and error["type"] == "invalid_request_error"
    assert len(env["echo"].requests) == sent


def test_responder_never_emits_an_invalid_header_value():
    import asyncio

    from apps.gateway.http import Responder

    sent = []

    async def send(message):
        sent.append(message)

    respond = Responder(send, cors=True)
    respond.add_header("x-cb-model", "gpt-4o\r\nset-cookie: x=1\x00\x7f")
    respond.add_header("x-cb-provider", "café ✓")
    respond.add_header("bad name\n", "value")
    asyncio.run(respond.json(200, b"{}"))
    for name, value in sent[0]["headers"]:
        assert all(32 <= b < 127 or b == 9 or b >= 160 for b in value), (name, value)
        assert b"\n" not in name and b" " not in name
    headers = dict(sent[0]["headers"])
    assert headers[b"x-cb-model"].startswith(b"gpt-4o") and b"bad name\n" not in headers


# ---- 5. nesting and size limits at validation ---------------------------------------------------------------------
def nested(depth: int):
    value: dict = {"leaf": "x"}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("field", "value"), [
    ("metadata", {"deep": nested(300)}),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": nested(300)}}]),
    ("response_format", {"type": "json_schema", "json_schema": nested(300)}),
])
def test_deep_nesting_is_a_400_naming_the_field(env, field, value):
    sent = len(env["echo"].requests)
    response = post(env, {**chat_body("hi"), field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and error["code"] == "too_deeply_nested"
    assert len(env["echo"].requests) == sent


def test_oversized_metadata_is_a_400(env):
    too_many = post(env, {**chat_body("hi"), "metadata": {f"k{i}": "v" for i in range(65)}})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "metadata"
    too_long = post(env, {**chat_body("hi"), "metadata": {"note": "x" * 5000}})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "metadata.note"
    fine = post(env, {**chat_body("hi"), "metadata": {"workflow_id": "wf-1", "deep": nested(10)}})
    assert fine.status_code == 200, fine.text


# ---- 9. streams cut or stalled upstream are failures in the ledger --------------------------------------------
def ledger_rows(request_ids: list[str]) -> dict:
    from apps.billing.ingest import ingest_once
    from apps.billing.models import UsageRecord

    while ingest_once():
        pass
    return {r.request_id: r for r in UsageRecord.objects.filter(request_id__in=request_ids)}


def stream_text(env, text: str) -> httpx.Response:
    with httpx.stream("POST", f"{env['server'].url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {env['key']}"},
                      json=chat_body(text, stream=True)) as response:
        response.read()
    return response


def test_cut_and_stalled_streams_are_recorded_as_failures_with_partial_usage(env):
    cut = stream_text(env, "one two three four five six !die-after 3")
    stalled = stream_text(env, "one two three four five six !slow 3")
    fine = stream_text(env, "one two three")
    for response, code in ((cut, "upstream_connection_error"), (stalled, "upstream_timeout")):
        assert response.status_code == 200  # the headers went out before the upstream failed
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]" and orjson.loads(events[-2])["error"]["code"] == code
    ids = [r.headers["x-cb-request-id"] for r in (cut, stalled, fine)]
    rows = ledger_rows(ids)
    assert len(rows) == 3
    cut_row, stalled_row, fine_row = (rows[i] for i in ids)
    assert (cut_row.status, cut_row.error_type) == (502, "upstream_connection_error")
    assert (stalled_row.status, stalled_row.error_type) == (504, "upstream_timeout")
    assert (fine_row.status, fine_row.error_type) == (200, "")
    for row in (cut_row, stalled_row):
        assert row.streamed and row.usage_estimated
        assert row.completion_tokens > 0 and row.prompt_tokens > 0  # what was relayed before the failure


# ---- 14. CORS exposes every header we send --------------------------------------------------------------------
def test_cors_exposes_every_header_we_send_on_v1(env):
    response = post(env, chat_body("hi"), headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert set(EXPOSED) <= exposed
    sent = {name for name in response.headers if name.startswith(("x-cb-", "x-ratelimit-"))}
    assert sent <= exposed, sent - exposed
    # A request without Origin (an SDK, a server) is no browser's: no CORS headers on its answer.
    plain = post(env, chat_body("hi"))
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    assert "access-control-expose-headers" not in plain.headers
    refused = httpx.post(f"{env['server'].url}/v1/chat/completions", json=chat_body("hi"), timeout=30,
                         headers={"Origin": "https://app.example", "Authorization": "Bearer cb-wrong"})
    assert set(EXPOSED) <= {h.strip() for h in refused.headers["access-control-expose-headers"].split(",")}


def test_cors_exposes_the_same_headers_on_the_management_api(env):
    response = httpx.get(f"{env['server'].url}/api/providers/", timeout=30,
                         headers={"Origin": "https://app.example", "Authorization": f"Bearer {env['key']}"})
    assert response.headers.get("access-control-allow-origin") in ("*", "https://app.example")
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert set(EXPOSED) <= exposed
