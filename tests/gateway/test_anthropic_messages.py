"""The official Anthropic SDK against a real gateway process: /v1/messages and /v1/messages/count_tokens, to
an Anthropic upstream (pass-through), an OpenAI one and a Gemini one (translation), and to Anthropic through
the translation path (a mixed candidate list)."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from apps.billing.ingest import ingest_once
from apps.billing.models import Budget, UsageRecord
from apps.gateway.anthropic_ingress.requests import to_chat
from apps.gateway.prompt_tokens import count_request
from apps.providers.models import ModelEntry
from tests.celery_worker import wait_until
from tests.conftest import committed
from tests.gateway.conftest import PROTOCOLS
from tests.strategies import PNG_DATA_URL

pytestmark = pytest.mark.django_db

# (id, protocol, extra body): an Anthropic model with an OpenAI fallback is translated, not passed through.
BY_NAME = {p.name: p for p in PROTOCOLS}
ROUTES = [
    ("anthropic", BY_NAME["anthropic"], {}),
    ("anthropic-translated", BY_NAME["anthropic"], {"models": ["openai/gpt-4o"]}),
    ("openai", BY_NAME["openai"], {}),
    ("gemini", BY_NAME["gemini"], {}),
]
PNG_BASE64 = PNG_DATA_URL.partition(",")[2]
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}


@pytest.fixture(params=ROUTES, ids=[r[0] for r in ROUTES])
def route(request):
    name, protocol, extra = request.param
    return protocol, extra


def claude(gw, key: str = "a", **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.server.url, api_key=gw.keys[key], max_retries=0, timeout=30, **kwargs)


def ask(gw, route, text="hello gateway", *, client=None, **kwargs):
    protocol, extra = route
    kwargs.setdefault("max_tokens", 100)
    kwargs.setdefault("extra_body", extra or None)
    return (client or claude(gw)).messages.create(model=protocol.model, messages=[{"role": "user", "content": text}],
                                                  **kwargs)


def passthrough(route) -> bool:
    return route[0].name == "anthropic" and not route[1]


def test_plain_message(gw, route):
    protocol, extra = route
    raw = claude(gw).messages.with_raw_response.create(
        model=protocol.model, max_tokens=100, system="Be brief.", extra_headers={"anthropic-beta": "fake-beta-1"},
        messages=[{"role": "user", "content": "hello gateway"}], extra_body=extra or None)
    message = raw.parse()
    assert message._request_id == raw.headers["x-cb-request-id"]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == f"[{protocol.tag}] You said: hello gateway"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2 + 3, 5)
    assert raw.headers["x-cb-provider"] == f"a-{protocol.name}"
    assert raw.headers["x-cb-request-id"].startswith("req_") and raw.headers["x-cb-route"].startswith("strategy=")
    received = gw.fakes[protocol.name].requests[-1]
    assert gw.keys["a"] not in json.dumps(received["headers"])
    if passthrough(route):  # the client's body, nearly as sent, and its beta header
        assert received["json"]["system"] == "Be brief." and received["json"]["max_tokens"] == 100
        assert received["headers"]["anthropic-beta"] == "fake-beta-1"
    else:
        assert "anthropic-beta" not in received["headers"]


def test_system_blocks_and_metadata(gw, route):
    protocol, extra = route
    message = claude(gw).messages.create(
        model=protocol.model, max_tokens=100, metadata={"user_id": "user-42"},
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.",
                                                        "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "two system blocks"}]}],
        extra_body=extra or None)
    assert message.content[0].text.endswith("You said: two system blocks")
    sent = gw.fakes[protocol.name].requests[-1]["json"]
    assert "Be brief." in json.dumps(sent) and "Be kind." in json.dumps(sent)  # both blocks reached the model
    if passthrough(route):
        assert sent["system"][1]["cache_control"] == {"type": "ephemeral"}
        assert sent["metadata"] == {"user_id": "user-42"}
    elif protocol.name == "openai":
        assert sent["user"] == "user-42"


def test_stream_helper(gw, route):
    protocol, extra = route
    with claude(gw).messages.stream(model=protocol.model, max_tokens=100, extra_body=extra or None,
                                    messages=[{"role": "user", "content": "stream me please"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"[{protocol.tag}] You said: stream me please"
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 6)
    # Anthropic's own events relayed (its message id), or ours translated (the request id in it)
    assert final.id.startswith("msg_fake") == passthrough(route)


def test_structured_output_is_translated(gw, route):
    protocol, extra = route
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}
    output_config = {"format": {"type": "json_schema", "schema": schema}}
    message = ask(gw, route, "json please", extra_body={"output_config": output_config, **extra})
    if passthrough(route):  # Anthropic enforces it itself (the fake does not model it): it must arrive intact
        assert gw.fakes["anthropic"].requests[-1]["json"]["output_config"] == output_config
    else:
        assert json.loads(message.content[0].text)["echo"] == "json please"


def test_stream_raw_events(gw, route):
    events = list(ask(gw, route, "raw events", stream=True))  # the SDK drops `ping`
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert all(e.delta.type == "text_delta" for e in events if e.type == "content_block_delta")
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 5
    assert events[0].message.usage.input_tokens > 0  # the upstream's count, or our estimate until message_delta
    with httpx.stream("POST", f"{gw.server.url}/v1/messages", timeout=30, headers={"x-api-key": gw.keys["a"]},
                      json={"model": route[0].model, "max_tokens": 50, "stream": True, **route[1],
                            "messages": [{"role": "user", "content": "raw events"}]}) as response:
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-cb-provider"] == f"a-{route[0].name}"
    assert response.headers["request-id"] == response.headers["x-cb-request-id"]
    assert names[:3] == ["message_start", "ping", "content_block_start"] and names[-1] == "message_stop"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("extra", [{}, {"models": ["openai/gpt-4o"]}], ids=["passthrough", "translated"])
def test_anthropic_cache_usage(gw, extra, stream):
    """The fake reports 5 cache-read and 3 cache-write tokens: Anthropic's usage keeps them apart from
    input_tokens, and the ledger has them."""
    request = {"model": "claude-3-haiku", "max_tokens": 50, "extra_body": extra or None,
               "messages": [{"role": "user", "content": "please remember these many cached words here !cache"}]}
    if stream:
        with claude(gw).messages.stream(**request) as events:
            usage = events.get_final_message().usage
            request_id = events.response.headers["x-cb-request-id"]
    else:
        raw = claude(gw).messages.with_raw_response.create(**request)
        usage, request_id = raw.parse().usage, raw.headers["x-cb-request-id"]
    # the brain's 9 prompt tokens: 1 read fresh, 5 from the cache, 3 written to it
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (1, 5, 3)
    row = committed(ledger_row, request_id)
    assert (row.prompt_tokens, row.cached_tokens, row.cache_write_tokens) == (9, 5, 3)


def test_tool_use_round_trip(gw, route):
    protocol, extra = route
    client = claude(gw)
    messages = [{"role": "user", "content": "Paris"}]
    first = client.messages.create(model=protocol.model, max_tokens=100, messages=messages, tools=[WEATHER],
                                   tool_choice={"type": "auto"}, extra_body=extra or None)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"query": "Paris"} and call.id
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "sunny, 21C"}]}]
    second = client.messages.create(model=protocol.model, max_tokens=100, messages=messages, tools=[WEATHER],
                                    extra_body=extra or None)
    assert second.content[0].text == "Tool said: sunny, 21C" and second.stop_reason == "end_turn"


def test_streamed_tool_use(gw, route):
    protocol, extra = route
    with claude(gw).messages.stream(model=protocol.model, max_tokens=100, tools=[WEATHER],
                                    messages=[{"role": "user", "content": "Oslo"}], extra_body=extra or None) as s:
        final = s.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"query": "Oslo"}
    assert final.stop_reason == "tool_use"


def test_images(gw, route):
    protocol, extra = route
    content = [{"type": "text", "text": "look"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}}]
    if protocol.name != "gemini":  # Gemini takes no image URLs
        content.append({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}})
    message = claude(gw).messages.create(model=protocol.vision_model or protocol.model, max_tokens=100,
                                         messages=[{"role": "user", "content": content}], extra_body=extra or None)
    count = len(content) - 1
    assert message.content[0].text.endswith(f"You said: look (saw {count} image{'s' if count > 1 else ''})")


def test_stop_reasons(gw, route):
    protocol, _ = route
    short = ask(gw, route, "one two three four", max_tokens=2)
    assert short.stop_reason == "max_tokens" and short.content[0].text == f"[{protocol.tag}] You"
    stopped = ask(gw, route, "stop here please", stop_sequences=["here"])
    assert stopped.content[0].text == f"[{protocol.tag}] You said: stop "
    if passthrough(route):  # Anthropic says which sequence stopped it; OpenAI's protocol cannot
        assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "here")
    else:
        assert (stopped.stop_reason, stopped.stop_sequence) == ("end_turn", None)
    with claude(gw).messages.stream(model=protocol.model, max_tokens=100, stop_sequences=["here"],
                                    extra_body=route[1] or None,
                                    messages=[{"role": "user", "content": "stop here please"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == stopped.stop_reason and final.stop_sequence == stopped.stop_sequence


def test_bad_requests_are_anthropic_errors(gw, route):
    protocol, extra = route
    with pytest.raises(anthropic.BadRequestError) as info:
        ask(gw, route, extra_body={"temperature": 1.5, **extra})
    assert info.value.status_code == 400
    assert info.value.body == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "temperature: Input should be a number "
                                                                     "between 0 and 1"}}
    missing = httpx.post(f"{gw.server.url}/v1/messages", headers={"x-api-key": gw.keys["a"]},
                         json={"model": protocol.model, "messages": [{"role": "user", "content": "hi"}]})
    assert missing.status_code == 400
    assert missing.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    with pytest.raises(anthropic.NotFoundError) as info:
        claude(gw).messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error"


def test_authentication(gw):
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic.Anthropic(base_url=gw.server.url, api_key="cb-not-a-key", max_retries=0).messages.create(
            model="claude-3-haiku", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "authentication_error"
    # `Authorization: Bearer` works as well as `x-api-key`; anthropic-version is accepted
    bearer = anthropic.Anthropic(base_url=gw.server.url, auth_token=gw.keys["a"], max_retries=0)
    reply = bearer.messages.create(model="claude-3-haiku", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert reply.content[0].text == "[anthropic] You said: x"


def test_upstream_errors(gw, route):
    with pytest.raises(anthropic.InternalServerError) as info:
        ask(gw, route, "!status 500")
    assert info.value.status_code == 502 and info.value.body["error"]["type"] == "api_error"
    with pytest.raises(anthropic.RateLimitError) as info:
        ask(gw, route, "!status 429 retry-after=1")
    assert info.value.body["error"]["type"] == "rate_limit_error" and info.value.response.headers["retry-after"]

    def recovered():  # the deployment is rate limited for that second; the next tests need it
        try:
            return ask(gw, route, "again")
        except anthropic.RateLimitError:
            return None

    assert wait_until(recovered, timeout=5, interval=0.2)


def test_stream_error_after_first_byte_is_an_error_event(gw, route):
    fake = gw.fakes[route[0].name]
    fake.hostile = True  # echoes our credential into the error: it must not reach the client
    try:
        with httpx.stream("POST", f"{gw.server.url}/v1/messages", timeout=30,
                          headers={"x-api-key": gw.keys["a"], "anthropic-version": "2023-06-01"},
                          json={"model": route[0].model, "max_tokens": 100, "stream": True, **route[1],
                                "messages": [{"role": "user", "content": "one two three !error-after 2"}]}) as r:
            body = r.read().decode()
    finally:
        fake.hostile = False
    assert r.status_code == 200
    assert "event: content_block_delta" in body and body.rstrip().split("\n\n")[-1].startswith("event: error")
    error = json.loads(body.rstrip().split("\n\n")[-1].split("data: ", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] in ("api_error", "overloaded_error")
    assert fake.api_key not in body


def test_upstream_4xx_never_echoes_the_provider_key(gw, route):
    fake = gw.fakes[route[0].name]
    fake.hostile = True
    try:
        with pytest.raises(anthropic.BadRequestError) as info:
            ask(gw, route, "!status 400")
    finally:
        fake.hostile = False
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert fake.api_key not in info.value.response.text


def test_count_tokens(gw):
    client = claude(gw)
    messages = [{"role": "user", "content": "count these four words"}]
    # Anthropic's own count (the fake counts words: system 2 + message 4 + 1)
    raw = client.messages.with_raw_response.count_tokens(model="claude-3-haiku", system="Be brief.",
                                                         messages=messages)
    assert raw.parse().input_tokens == 7 and raw.headers["x-cb-token-count"] == "upstream"
    assert gw.fakes["anthropic"].requests[-1]["path"] == "/v1/messages/count_tokens"
    # the gateway's tokenizer for an OpenAI model: the same count /v1/chat/completions budgets with
    raw = client.messages.with_raw_response.count_tokens(model="openai/gpt-4o", system="Be brief.",
                                                         messages=messages, tools=[WEATHER])
    counted = raw.parse().input_tokens
    assert raw.headers["x-cb-token-count"] == "estimated" and raw.headers["x-cb-provider"] == "a-openai"
    assert counted == count_request(to_chat({"model": "gpt-4o", "system": "Be brief.", "messages": messages,
                                             "tools": [WEATHER]}))
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="openai/gpt-4o", messages=[{"role": "system", "content": "x"}])


# ---- the ledger and budgets -------------------------------------------------------------------------------------
def ledger_row(request_id: str):
    def found():
        while ingest_once():
            pass
        return UsageRecord.objects.filter(request_id=request_id).first()

    return wait_until(found, timeout=10)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_ledger_records_the_messages_ingress(gw, route, stream):
    protocol, extra = route
    raw = claude(gw).messages.with_raw_response.create(
        model=protocol.model, max_tokens=100, messages=[{"role": "user", "content": "bill me"}],
        extra_body=extra or None, stream=stream)
    if stream:
        events = list(raw.parse())
        output = events[-2].usage.output_tokens
    else:
        output = raw.parse().usage.output_tokens
    row = committed(ledger_row, raw.headers["x-cb-request-id"])
    assert row is not None and row.endpoint == "messages" and row.status == 200 and row.streamed == stream
    assert (row.prompt_tokens, row.completion_tokens) == (3, output) and output == 5
    entry = ModelEntry.objects.get(provider__isnull=True, provider_type=protocol.name, model_id=row.model_served)
    expected = row.prompt_tokens * entry.input_price + row.completion_tokens * entry.output_price
    assert abs(row.cost - expected) < Decimal("1e-9")
    assert row.cost > 0 and row.provider == f"a-{protocol.name}"


def test_a_budget_refuses_in_anthropic_shape(gw):
    budget = committed(lambda: Budget.objects.create(tenant=gw.tenants["a"], limit=Decimal("0.0000001"),
                                                     period="monthly", action="block"))
    try:
        with pytest.raises(anthropic.RateLimitError) as info:
            for _ in range(50):  # until the gateway's snapshot has the budget
                ask(gw, (BY_NAME["anthropic"], {}), "over budget")
        assert info.value.body["error"]["type"] == "rate_limit_error"
        assert "budget" in info.value.body["error"]["message"].lower()
    finally:
        committed(budget.delete)


def test_hosted_tools_need_an_anthropic_model(gw):
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    messages = [{"role": "user", "content": "search"}]
    with pytest.raises(anthropic.BadRequestError) as info:
        claude(gw).messages.create(model="openai/gpt-4o", max_tokens=10, tools=[web_search], messages=messages)
    assert "web_search" in info.value.body["error"]["message"]
    calls = len(gw.fakes["openai"].requests)
    # to Anthropic they go as sent (this fake models no hosted tools and refuses them, as the API does bad ones)
    with pytest.raises(anthropic.BadRequestError):
        claude(gw).messages.create(model="claude-3-haiku", max_tokens=10, tools=[web_search], messages=messages)
    assert gw.fakes["anthropic"].requests[-1]["json"]["tools"] == [web_search]
    assert len(gw.fakes["openai"].requests) == calls


def test_a_claude_code_shaped_request(gw, route):
    """What Claude Code sends: the beta endpoint (`?beta=true`) with betas, cached system blocks, thinking, a
    long metadata.user_id, tools with JSON-schema keywords, and thinking blocks in the history."""
    protocol, extra = route
    tool = {**WEATHER, "input_schema": {**WEATHER["input_schema"], "$schema": "http://json-schema.org/draft-07/schema#",
                                        "additionalProperties": False}}
    history = [{"role": "user", "content": [{"type": "text", "text": "Rome", "cache_control": {"type": "ephemeral"}}]}]
    first = claude(gw).beta.messages.create(
        model=protocol.model, max_tokens=2048, betas=["interleaved-thinking-2025-05-14"],
        system=[{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "enabled", "budget_tokens": 1024}, metadata={"user_id": "user_" + "ab" * 60},
        tools=[tool], messages=history, extra_body=extra or None)
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.input == {"query": "Rome"}
    received = gw.fakes[protocol.name].requests[-1]
    if passthrough(route):
        assert received["json"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert received["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    else:
        assert "thinking" not in json.dumps(received["json"])
    history += [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"}, call.model_dump(exclude_none=True)]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                              "content": [{"type": "text", "text": "warm"}]}]}]
    if passthrough(route):  # the fake, like Anthropic without the beta, takes no thinking blocks back
        history[1]["content"] = history[1]["content"][1:]
    second = claude(gw).beta.messages.create(model=protocol.model, max_tokens=2048, tools=[tool], messages=history,
                                             extra_body=extra or None)
    assert second.content[0].text == "Tool said: warm"


def test_deep_nesting_anywhere_is_refused_before_it_is_sent(gw):
    nested: dict = {}
    for _ in range(300):  # orjson reads it, but could not write it upstream
        nested = {"n": nested}
    response = httpx.post(f"{gw.server.url}/v1/messages", headers={"x-api-key": gw.keys["a"]}, timeout=30,
                          json={"model": "claude-3-haiku", "max_tokens": 10, "context_management": nested,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "context_management" in response.json()["error"]["message"]
