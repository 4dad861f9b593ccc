"""The Azure OpenAI adapter against a fake Azure OpenAI resource, over real HTTP through the gateway's Upstream."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings

from apps.providers.adapters.azure import AzureAdapter, AzureStream
from apps.providers.adapters.base import Target, UpstreamError, UpstreamRequest
from tests.fakes.azure import FakeAzure, normalize
from tests.fakes.base import brain
from tests.providers.adapters import harness
from tests.providers.adapters.harness import finishes, run, streamed_text
from tests.strategies import PNG_DATA_URL, canonical, expected_conversation, openai_requests

ADAPTER = AzureAdapter()
DEPLOYMENTS = {"gpt-4o": "gpt-4o-prod", "text-embedding-3-small": "embed-prod"}
TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the web",
                                           "parameters": {"type": "object",
                                                          "properties": {"query": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def FAKE():  # noqa: N802 - the conftest fixture `fake` calls it like a class
    return FakeAzure(deployments={"gpt-4o-prod", "embed-prod", "gpt-4o-mini"})


def target_for(server: FakeAzure, model: str = "gpt-4o", api_key: str | None = None, **options) -> Target:
    options = {"deployments": DEPLOYMENTS, **options}
    return Target("azure-main", "azure", server.url, api_key or server.api_key, model, options)


def chat(target: Target, body: dict, timeout: float = 10.0) -> dict:
    return harness.chat(ADAPTER, target, body, timeout=timeout)


def stream(target: Target, body: dict, into: list | None = None, timeout: float = 10.0) -> list[dict]:
    return harness.stream(ADAPTER, target, body, into=into, timeout=timeout)


def user(text: str) -> dict:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}


# 1. text, addressing, auth ----------------------------------------------------------------------

def test_text_answer_and_what_azure_received(fake):
    body = {"model": "gpt-4o", "temperature": 0.3, "max_tokens": 100,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]}
    result = chat(target_for(fake), body)

    choice = result["choices"][0]
    assert choice["message"]["content"] == "[azure] You said: hello there"
    assert choice["finish_reason"] == "stop"
    assert result["model"] == "gpt-4o"
    # brain: "Be brief." (2 words) + "hello there" (2 + 1) → 5; answer 5 words
    assert (result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"]) == (5, 5)
    assert result["usage"]["total_tokens"] == 10

    received = fake.requests[-1]
    assert received["path"] == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert received["query"] == {"api-version": "2024-10-21"}
    assert received["headers"]["api-key"] == fake.api_key
    assert "Authorization" not in received["headers"]
    assert received["json"] == {**body, "model": "gpt-4o"}  # OpenAI's body, system message kept in place
    reply = brain(normalize(received["json"]), tag="azure")
    assert (reply.prompt_tokens, reply.completion_tokens) == (5, 5)


def test_model_name_is_the_deployment_without_a_map_and_api_version_option(fake):
    target = Target("azure-main", "azure", fake.url + "/openai", fake.api_key, "gpt-4o-mini",
                    {"api_version": "2024-06-01", "headers": {"x-ms-client-request-id": "req-1"}})
    result = chat(target, user("which deployment"))
    assert result["choices"][0]["message"]["content"] == "[azure] You said: which deployment"
    received = fake.requests[-1]
    assert received["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert received["query"] == {"api-version": "2024-06-01"}
    assert received["headers"]["x-ms-client-request-id"] == "req-1"


def test_unknown_deployment_is_404(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake, model="gpt-5"), user("hi"))
    assert caught.value.status == 404
    assert caught.value.code == "DeploymentNotFound"
    assert caught.value.message.startswith("The API deployment for this resource does not exist.")
    assert fake.requests[-1]["path"] == "/openai/deployments/gpt-5/chat/completions"


def test_fake_requires_api_version(fake):
    request = ADAPTER.chat_request(user("hi"), target_for(fake), stream=False)
    request = UpstreamRequest(request.method, request.url.split("?")[0], request.headers, request.body)
    with pytest.raises(UpstreamError) as caught:
        run(lambda upstream: upstream.fetch(ADAPTER, request))
    assert caught.value.status == 400
    assert caught.value.code == "MissingApiVersionParameter"
    assert "api-version" in caught.value.message


def test_fake_refuses_bearer_auth_without_api_key_header(fake):
    request = ADAPTER.chat_request(user("hi"), target_for(fake), stream=False)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {fake.api_key}"}
    with pytest.raises(UpstreamError) as caught:
        run(lambda upstream: upstream.fetch(ADAPTER, UpstreamRequest("POST", request.url, headers, request.body)))
    assert caught.value.code == "upstream_auth_error"
    assert caught.value.upstream_status == 401


# 2. streaming -----------------------------------------------------------------------------------

def test_streaming_text_without_filter_annotations(fake):
    chunks = stream(target_for(fake), user("stream me a few words"))

    assert streamed_text(chunks) == "[azure] You said: stream me a few words"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[0]["choices"][0]["delta"]["content"] == ""
    assert finishes(chunks) == ["stop"]
    # Azure's prompt_filter_results event (id "", object "") was dropped
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 6
    assert chunks[-1]["usage"]["completion_tokens"] == 8
    assert chunks[-1]["usage"]["total_tokens"] == 14
    assert sum(1 for c in chunks if c.get("usage")) == 1  # the others say `"usage": null`, as Azure does
    sent = fake.requests[-1]["json"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_translator_drops_annotations_and_keeps_filter_verdicts():
    translator = AzureStream()
    annotation = {"id": "", "object": "", "created": 0, "model": "", "usage": None,
                  "choices": [{"index": 0, "finish_reason": None, "content_filter_results": {},
                               "content_filter_offsets": {"check_offset": 4, "start_offset": 0, "end_offset": 4}}]}
    verdict = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
               "choices": [{"index": 0, "finish_reason": "content_filter"}]}
    out = translator.feed(b"data: " + orjson.dumps(annotation) + b"\n\ndata: " + orjson.dumps(verdict)
                          + b"\n\ndata: [DONE]\n\n")
    assert out == [{**verdict, "choices": [{"index": 0, "finish_reason": "content_filter", "delta": {}}]}]
    assert translator.close() == []


def test_translator_raises_when_done_never_comes():
    translator = AzureStream()
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
             "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    assert len(translator.feed(b"data: " + orjson.dumps(chunk) + b"\n\n")) == 1
    with pytest.raises(UpstreamError) as caught:
        translator.close()
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, "upstream_stream_truncated", True)


# 3. tools ---------------------------------------------------------------------------------------

def _tool_round_trip_body(call: dict) -> dict:
    return {"model": "gpt-4o", "tools": TOOLS, "messages": [
        {"role": "user", "content": "weather in Oslo"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}]}


def test_tool_round_trip(fake):
    target = target_for(fake)
    first = chat(target, {**user("weather in Oslo"), "tools": TOOLS})
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "search"
    assert orjson.loads(call["function"]["arguments"]) == {"query": "weather in Oslo"}
    assert fake.requests[-1]["json"]["tools"] == TOOLS

    second = chat(target, _tool_round_trip_body(call))
    assert second["choices"][0]["message"]["content"] == "Tool said: sunny, 21C"
    assert fake.requests[-1]["json"]["messages"][2] == {"role": "tool", "tool_call_id": call["id"],
                                                        "content": "sunny, 21C"}


def test_tool_round_trip_streaming(fake):
    target = target_for(fake)
    chunks = stream(target, {**user("weather in Oslo"), "tools": TOOLS})
    deltas = [d for c in chunks if c["choices"] for d in c["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas[0]["index"] == 0 and deltas[0]["type"] == "function" and deltas[0]["id"]
    assert deltas[0]["function"] == {"name": "search", "arguments": ""}
    arguments = "".join(d["function"]["arguments"] for d in deltas)
    assert len(deltas) > 2  # really fragmented
    assert orjson.loads(arguments) == {"query": "weather in Oslo"}
    assert finishes(chunks) == ["tool_calls"]

    call = {"id": deltas[0]["id"], "type": "function", "function": {"name": "search", "arguments": arguments}}
    answer = stream(target, _tool_round_trip_body(call))
    assert streamed_text(answer) == "Tool said: sunny, 21C"


# 4. vision --------------------------------------------------------------------------------------

def test_vision_data_and_https_urls_pass_through(fake):
    parts = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]
    result = chat(target_for(fake), {"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]})
    assert result["choices"][0]["message"]["content"] == "[azure] You said: what is this (saw 1 image)"
    assert fake.requests[-1]["json"]["messages"][0]["content"][1] == {"type": "image_url",
                                                                      "image_url": {"url": PNG_DATA_URL}}

    # Azure OpenAI fetches web images itself, as OpenAI does: nothing to translate
    web_image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
    result = chat(target_for(fake), {"model": "gpt-4o", "messages": [{"role": "user", "content": [parts[0],
                                                                                                   web_image]}]})
    assert result["choices"][0]["message"]["content"].endswith("(saw 1 image)")
    assert fake.requests[-1]["json"]["messages"][0]["content"][1] == web_image


# 5. JSON mode -----------------------------------------------------------------------------------

def test_json_mode(fake):
    result = chat(target_for(fake), {**user("give me json"), "response_format": {"type": "json_object"}})
    assert orjson.loads(result["choices"][0]["message"]["content"]) == {"echo": "give me json", "provider": "azure"}
    assert fake.requests[-1]["json"]["response_format"] == {"type": "json_object"}

    chunks = stream(target_for(fake), {**user("streamed json"), "response_format": {"type": "json_object"}})
    assert orjson.loads(streamed_text(chunks))["echo"] == "streamed json"


# 6. length --------------------------------------------------------------------------------------

def test_max_tokens_reaching_the_limit(fake):
    result = chat(target_for(fake), {**user("a long question indeed"), "max_tokens": 3})
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["choices"][0]["message"]["content"] == "[azure] You said:"

    chunks = stream(target_for(fake), {**user("a long question indeed"), "max_completion_tokens": 2})
    assert finishes(chunks) == ["length"]
    assert streamed_text(chunks) == "[azure] You"


# 7. errors --------------------------------------------------------------------------------------

def test_provider_400_passes_through_with_its_message(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), user("!status 400"))
    assert caught.value.status == 400
    assert caught.value.message == "fake openai error 400"


def test_wrong_key(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake, api_key="wrong-azure-secret"), user("hi"))
    assert caught.value.status == 502
    assert caught.value.code == "upstream_auth_error"
    assert "wrong-azure-secret" not in caught.value.message
    assert "Access denied due to invalid subscription key" in caught.value.message


def test_rate_limit_with_retry_after(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), user("!status 429 retry-after=2"))
    assert caught.value.status == 429
    assert caught.value.retryable
    assert caught.value.retry_after == 2.0


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_become_502(fake, status):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), user(f"!status {status}"))
    assert caught.value.status == 502
    assert caught.value.retryable
    assert caught.value.upstream_status == status


def test_hang_times_out(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), user("!hang 5"), timeout=0.5)
    assert caught.value.status == 504


def test_reset_connection(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), user("!reset"))
    assert caught.value.status == 502
    assert caught.value.retryable


def test_error_event_mid_stream(fake):
    chunks: list[dict] = []
    with pytest.raises(UpstreamError) as caught:
        stream(target_for(fake), user("!error-after 2 please"), into=chunks)
    assert caught.value.status == 502
    assert caught.value.message == "stream broke"
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:]] == ["[azure]", " You"]


def test_stream_dying_is_not_a_silent_truncation(fake):
    chunks: list[dict] = []
    with pytest.raises(UpstreamError) as caught:
        stream(target_for(fake), user("!die-after 2 please"), into=chunks)
    assert caught.value.status == 502
    assert caught.value.retryable
    assert not finishes(chunks)


def test_content_filter(fake):
    result = chat(target_for(fake), user("!filter this"))
    assert result["choices"][0]["finish_reason"] == "content_filter"
    chunks = stream(target_for(fake), user("!filter this"))
    assert finishes(chunks) == ["content_filter"]


# 8. property ------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(body=openai_requests())
def test_translation_keeps_the_conversation(body):
    target = Target("azure-main", "azure", "https://res.openai.azure.com", "k", "m", {"deployments": {"m": "d"}})
    sent = orjson.loads(ADAPTER.chat_request(body, target, stream=False).body)
    assert canonical(normalize(sent)) == canonical(expected_conversation(body))


# 9. embeddings and legacy completions -----------------------------------------------------------

def test_embeddings_for_a_string_and_a_list(fake):
    target = target_for(fake, model="text-embedding-3-small")
    one = run(lambda upstream: upstream.embeddings(ADAPTER, target, {"model": "x", "input": "hello world"}))
    assert one["object"] == "list"
    assert [d["index"] for d in one["data"]] == [0]
    assert len(one["data"][0]["embedding"]) == 8
    assert one["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    received = fake.requests[-1]
    assert received["path"] == "/openai/deployments/embed-prod/embeddings"
    assert received["query"] == {"api-version": "2024-10-21"}
    assert "Authorization" not in received["headers"]
    assert received["json"] == {"model": "text-embedding-3-small", "input": "hello world"}

    many = run(lambda upstream: upstream.embeddings(ADAPTER, target, {"model": "x", "input": ["a b", "hello world"]}))
    assert [d["index"] for d in many["data"]] == [0, 1]
    assert many["data"][1]["embedding"] == one["data"][0]["embedding"]
    assert many["usage"]["prompt_tokens"] == 4


def test_legacy_completions_use_the_deployment_path(fake):
    request = ADAPTER.completions_request({"model": "gpt-4o", "prompt": "once upon"}, target_for(fake), stream=False)
    payload = run(lambda upstream: upstream.fetch(ADAPTER, request))
    assert orjson.loads(payload)["choices"][0]["text"] == " [azure] completed: once upon"
    assert fake.requests[-1]["path"] == "/openai/deployments/gpt-4o-prod/completions"
