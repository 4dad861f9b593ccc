"""Gateway behaviour that does not depend on the protocol: auth, validation, resolution, isolation, streams."""

from __future__ import annotations

import json
import time
import urllib.request

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, committed

pytestmark = pytest.mark.django_db


def raw_post(url: str, data: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    response = httpx.post(url, content=data, headers={"Content-Type": "application/json", **(headers or {})},
                          timeout=30)
    return response.status_code, dict(response.headers), response.json()


def ask(client, model="gpt-4o", text="hi", **kwargs):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


@pytest.mark.parametrize(("key", "status", "code"), [
    (None, 401, "missing_api_key"), ("cb-not-a-key", 401, "invalid_api_key"), ("a-revoked", 401, "api_key_revoked"),
    ("a-expired", 401, "api_key_expired"), ("a-admin-only", 403, "insufficient_scope"),
])
def test_key_errors(gw, key, status, code):
    secret = gw.keys.get(key, key)
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    got, _, body = raw_post(f"{gw.server.url}/v1/chat/completions",
                            b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}', headers)
    assert got == status and body["error"]["code"] == code
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_sdk_auth_error_type(gw):
    client = openai.OpenAI(base_url=f"{gw.server.url}/v1", api_key="cb-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        ask(client)
    assert "cb-wrong" not in info.value.message  # masked


@pytest.mark.parametrize(("header",), [("api-key",), ("x-api-key",)])
def test_alternative_key_headers(gw, header):
    status, headers, body = raw_post(f"{gw.server.url}/v1/chat/completions",
                                     b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}',
                                     {header: gw.keys["a"]})
    assert status == 200 and headers["x-cb-provider"] == "a-openai"


@pytest.mark.parametrize(("payload", "param", "code"), [
    (b"{not json", None, "invalid_json"),
    (b"[1, 2]", None, "invalid_json"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "missing_required_parameter"),
    (b'{"model": "gpt-4o"}', "messages", "missing_required_parameter"),
    (b'{"model": "gpt-4o", "messages": []}', "messages", "empty_array"),
    (b'{"model": "gpt-4o", "messages": "hi"}', "messages", "invalid_type"),
    (b'{"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role", "invalid_value"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]}', "messages[0].content", "invalid_type"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature",
     "invalid_type"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": 9}', "temperature",
     "invalid_value"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "n": 0}', "n", "invalid_value"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream",
     "invalid_type"),
    (b'{"model": "gpt-4o", "messages": [{"role": "tool", "content": "x"}]}', "messages[0].tool_call_id",
     "missing_required_parameter"),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}',
     "tools[0]", "invalid_value"),
    (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model", "invalid_type"),
])
def test_bad_requests_are_400s_with_the_param(gw, payload, param, code):
    status, _, body = raw_post(f"{gw.server.url}/v1/chat/completions", payload,
                               {"Authorization": f"Bearer {gw.keys['a']}"})
    assert status == 400, body
    assert body["error"]["param"] == param and body["error"]["code"] == code
    assert body["error"]["type"] == "invalid_request_error"


def test_oversized_body_is_413(gw):
    big = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 70000}]}).encode()
    status, _, body = raw_post(f"{gw.server.url}/v1/chat/completions", big, {"Authorization": f"Bearer {gw.keys['a']}"})
    assert status == 413 and body["error"]["code"] == "request_too_large"


def test_unknown_model_and_unknown_route(gw):
    with pytest.raises(openai.NotFoundError) as info:
        ask(gw.client(), model="gpt-9-ultra")
    assert info.value.body["code"] == "model_not_found"
    status, _, body = raw_post(f"{gw.server.url}/v1/teleport", b"{}", {"Authorization": f"Bearer {gw.keys['a']}"})
    assert status == 404 and body["error"]["code"] == "unknown_url"
    response = httpx.get(f"{gw.server.url}/v1/chat/completions", timeout=10)
    assert response.status_code == 405


def test_embedding_model_is_not_a_chat_model(gw):
    with pytest.raises(openai.BadRequestError) as info:
        ask(gw.client(), model="text-embedding-3-small")
    assert info.value.body["code"] == "model_not_supported"


def test_model_name_forms(gw):
    client = gw.client()
    by_prefix = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert by_prefix.headers["x-cb-provider"] == "a-openai"
    assert gw.fakes["openai"].requests[-1]["json"]["model"] == "gpt-4o"
    by_slug = client.chat.completions.with_raw_response.create(
        model="a-openai/some-new-model", messages=[{"role": "user", "content": "x"}])
    assert by_slug.headers["x-cb-provider"] == "a-openai"
    assert gw.fakes["openai"].requests[-1]["json"]["model"] == "some-new-model"  # passthrough
    assert by_slug.parse().model == "some-new-model"


def test_alias_resolves_to_the_dated_name(gw):
    if "anthropic" not in gw.fakes:
        pytest.skip("anthropic fake not available")
    ask(gw.client(), model="anthropic/claude-3-haiku")
    assert gw.fakes["anthropic"].requests[-1]["json"]["model"] == "claude-3-haiku-20240307"


def test_models_list_is_per_tenant(gw):
    a = {m.id: m for m in gw.client("a").models.list()}
    assert "gpt-4o" in a and "auto" in a and "cb:cost-optimal" in a
    assert a["gpt-4o"].model_extra["provider"] == "openai"
    assert a["gpt-4o"].model_extra["context_window"] == 128000
    assert a["gpt-4o"].model_extra["cost_per_input_token"] == pytest.approx(2.5e-06)
    assert "tools" in a["gpt-4o"].model_extra["capabilities"]
    assert a["auto"].model_extra["virtual"] is True
    b = {m.id for m in gw.client("b").models.list()}
    assert "gpt-4o" not in b  # tenant B has no OpenAI provider of its own
    assert "simulated-echo" in b  # the global simulated provider is reachable by everyone
    assert gw.client("a").models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        gw.client("b").models.retrieve("gpt-4o")


def test_tenant_b_cannot_use_tenant_a_providers(gw):
    with pytest.raises(openai.NotFoundError):
        ask(gw.client("b"), model="gpt-4o")
    with pytest.raises(openai.NotFoundError):
        ask(gw.client("b"), model="a-openai/gpt-4o")


def test_auto_picks_a_reachable_model(gw):
    raw = gw.client("b").chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello"}])
    assert raw.headers["x-cb-provider"] == "simulated"
    assert raw.parse().choices[0].message.content == "Simulated reply: hello"


def test_legacy_completions(gw):
    client = gw.client()
    completion = client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="say this")
    assert completion.choices[0].text.strip() == "[openai] completed: say this"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="openai/gpt-3.5-turbo-instruct", prompt="again", stream=True) if c.choices)
    assert "completed: again" in streamed


def test_client_disconnect_cancels_the_upstream_stream(gw):
    fake = gw.fakes["openai"]
    before = fake.cancelled_streams
    body = json.dumps({"model": "gpt-4o", "stream": True,
                       "messages": [{"role": "user", "content": " ".join(["word"] * 40) + " !slow 0.1"}]})
    with httpx.stream("POST", f"{gw.server.url}/v1/chat/completions", content=body, timeout=30,
                      headers={"Authorization": f"Bearer {gw.keys['a']}", "Content-Type": "application/json"}) as r:
        lines = r.iter_lines()
        seen = [next(lines) for _ in range(6)]
    assert any(line.startswith("data: ") for line in seen)
    deadline = time.monotonic() + 5
    while fake.cancelled_streams == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.cancelled_streams == before + 1
    assert fake.active_streams == 0


def test_cors_preflight(gw):
    response = httpx.options(f"{gw.server.url}/v1/chat/completions", timeout=10,
                             headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"


def test_failover_to_the_next_provider_and_keys_round_robin(gw, django_db_blocker):
    from apps.providers import services
    from apps.providers.models import Provider, ProviderCredential

    fake = gw.fakes["openai"]

    def configure():
        broken = services.provider_create(tenant=gw.tenants["a"], slug="a-broken", name="broken", type="openai",
                                          base_url="http://127.0.0.1:9/v1", priority=1)
        services.credential_create(tenant=gw.tenants["a"], provider=broken, api_key="sk-broken")
        second = Provider.objects.get(slug="a-openai", tenant=gw.tenants["a"])
        services.credential_create(tenant=gw.tenants["a"], provider=second, api_key=fake.api_key + "-2")

    fake.api_key_alternatives = {fake.api_key + "-2"}
    committed(configure)
    try:
        # The snapshot reloads when the version key moves. The second key was written after the broken
        # provider, so once it shows up upstream, every answer below has failed over past `a-broken`.
        seen: set[str] = set()
        deadline = time.monotonic() + 10
        while seen != {f"Bearer {fake.api_key}", f"Bearer {fake.api_key}-2"}:
            assert time.monotonic() < deadline, f"keys seen: {seen}"
            raw = gw.client().chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "failover"}])
            assert raw.headers["x-cb-provider"] == "a-openai"
            seen.add(fake.requests[-1]["headers"]["Authorization"])
        recent = [fake.requests[-1]["headers"]["Authorization"]]
        for _ in range(3):
            raw = gw.client().chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "failover"}])
            assert raw.headers["x-cb-provider"] == "a-openai"  # the unreachable provider was skipped
            recent.append(fake.requests[-1]["headers"]["Authorization"])
        assert recent[0] != recent[1] and recent[1] != recent[2]  # round-robin alternates keys
    finally:
        committed(lambda: (Provider.objects.filter(slug="a-broken").delete(),
                           ProviderCredential.objects.filter(provider__slug="a-openai", hint__endswith="y-2").delete()))
        del fake.api_key_alternatives


def test_config_changes_through_the_admin_reach_the_running_server(gw):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.providers.models import Provider

    with pytest.raises(openai.NotFoundError):
        ask(gw.client("b"), model="gpt-4o")

    def through_admin():
        user = get_user_model().objects.create_superuser("gw-admin", "gw@example.com", "pw")
        client = Client()
        client.force_login(user)
        response = client.post("/admin/providers/provider/add/", {
            "tenant": gw.tenants["b"].pk, "slug": "b-openai", "name": "B's OpenAI", "type": "openai",
            "base_url": gw.fakes["openai"].url + "/v1", "enabled": "on", "priority": "100", "options": "{}",
            "credentials-TOTAL_FORMS": "0", "credentials-INITIAL_FORMS": "0"})
        assert response.status_code == 302, response.content[:3000]
        provider = Provider.objects.get(slug="b-openai")
        response = client.post("/admin/providers/providercredential/add/", {
            "provider": provider.pk, "name": "k", "enabled": "on", "api_key": gw.fakes["openai"].api_key})
        assert response.status_code == 302
        user.delete()

    committed(through_admin)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                completion = ask(gw.client("b"), model="gpt-4o", text="now reachable")
                break
            except openai.NotFoundError:
                assert time.monotonic() < deadline, "the admin change did not reach the running server"
                time.sleep(0.2)
        assert completion.choices[0].message.content == "[openai] You said: now reachable"
    finally:
        committed(lambda: Provider.objects.filter(slug="b-openai").delete())


def test_streaming_can_be_disabled(gw):
    server = ServerProcess(env={"OPENAI_ENABLE_STREAMING": "false"}).start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=gw.keys["a"], max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            ask(client, stream=True)
        assert info.value.body["code"] == "streaming_disabled"
        assert ask(client).choices[0].message.content == "[openai] You said: hi"
    finally:
        server.stop()


def test_no_traceback_or_key_in_any_error(gw):
    payloads = (b"\xff\xfe", b'{"model": {"$gt": 1}, "messages": null}', b'{"model": "gpt-4o", "messages": [null]}')
    for payload in payloads:
        status, _, body = raw_post(f"{gw.server.url}/v1/chat/completions", payload,
                                   {"Authorization": f"Bearer {gw.keys['a']}"})
        assert status == 400
        assert "Traceback" not in json.dumps(body)
    assert "Traceback" not in gw.server.output()
    assert gw.fakes["openai"].api_key not in gw.server.output()


def test_urllib_client_gets_json_errors(gw):
    request = urllib.request.Request(f"{gw.server.url}/v1/models")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401 and json.loads(info.value.read())["error"]["code"] == "missing_api_key"
