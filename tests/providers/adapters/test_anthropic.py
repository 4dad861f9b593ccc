"""The Anthropic adapter, driven through the gateway's Upstream executor against a fake Messages API."""

from __future__ import annotations

import json

import orjson
import pytest

from apps.providers.adapters.anthropic import JSON_INSTRUCTION, AnthropicAdapter, chat_body
from apps.providers.adapters.base import Target
from tests.fakes.anthropic import FakeAnthropic
from tests.providers.adapters import harness
from tests.providers.adapters.harness import expect_error, finishes, streamed_text
from tests.strategies import PNG_DATA_URL

ADAPTER = AnthropicAdapter()
MODEL = "claude-test-1"
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look things up",
                                           "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                          "required": ["query"]}}},
         {"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}}]


FAKE = FakeAnthropic


def target_for(fake, api_key: str | None = None) -> Target:
    return Target("anthropic-test", "anthropic", fake.url, api_key or fake.api_key, MODEL)


def user(text: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def chat(fake, body: dict, *, timeout: float = 5, api_key: str | None = None) -> dict:
    return harness.chat(ADAPTER, target_for(fake, api_key), body, timeout=timeout)


def stream(fake, body: dict, *, timeout: float = 5, received: list | None = None) -> list[dict]:
    return harness.stream(ADAPTER, target_for(fake), body, into=received, timeout=timeout)


# ---- 1. text ------------------------------------------------------------------------------------

def test_text_answer_and_what_the_fake_received(fake):
    body = {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "developer", "content": "Answer in English."},
                                         {"role": "user", "content": "hello there"}]}
    result = chat(fake, body)
    choice = result["choices"][0]
    assert choice["message"]["content"] == "[anthropic] You said: hello there"
    assert choice["message"]["role"] == "assistant" and "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    # brain: system 5 words + user (2 words + 1); answer 5 words
    assert result["usage"]["prompt_tokens"] == 8
    assert result["usage"]["completion_tokens"] == 5
    assert result["usage"]["total_tokens"] == 13
    assert result["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert result["model"] == MODEL and result["object"] == "chat.completion"
    assert result["id"].startswith("msg_fake")

    received = fake.requests[-1]
    assert received["method"] == "POST" and received["path"] == "/v1/messages"
    assert received["headers"]["x-api-key"] == fake.api_key
    assert received["headers"]["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in received["headers"]
    sent = received["json"]
    assert sent["model"] == MODEL
    assert sent["system"] == "Be brief.\n\nAnswer in English."
    assert sent["max_tokens"] == 4096
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    assert "stream" not in sent


def test_sampling_parameters_are_mapped_and_the_rest_dropped(fake):
    body = {**user("params please"), "temperature": 1.6, "top_p": 0.5, "stop": "END", "user": "user-42",
            "max_tokens": 100, "max_completion_tokens": 50, "n": 1, "seed": 7, "logit_bias": {"1": 2},
            "presence_penalty": 0.1, "frequency_penalty": 0.2, "logprobs": False}
    assert chat(fake, body)["choices"][0]["message"]["content"] == "[anthropic] You said: params please"
    sent = fake.requests[-1]["json"]
    assert sent["temperature"] == 1.0  # Anthropic's range is 0..1
    assert sent["top_p"] == 0.5
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "user-42"}
    assert sent["max_tokens"] == 50  # max_completion_tokens wins
    for dropped in ("n", "seed", "logit_bias", "presence_penalty", "frequency_penalty", "logprobs", "stop", "user"):
        assert dropped not in sent
    assert chat_body({**user("x"), "stop": ["a", " ", "b"]}, target_for(fake), stream=False)["stop_sequences"] == [
        "a", "b"]


def test_cache_tokens_count_as_prompt_tokens(fake):
    system = "You are a helpful assistant answering briefly."
    body = {"model": MODEL, "messages": [{"role": "system", "content": system},
                                         {"role": "user", "content": "!cache hello"}]}
    usage = chat(fake, body)["usage"]
    # brain: 7 system words + (2 + 1); the fake reports 3 uncached + 5 read + 3 written
    assert usage["prompt_tokens"] == 10
    assert usage["prompt_tokens_details"] == {"cached_tokens": 5, "cache_write_tokens": 3}
    assert usage["completion_tokens"] == 5 and usage["total_tokens"] == 15
    final = stream(fake, body)[-1]
    assert final["usage"] == usage


# ---- 2. streaming -------------------------------------------------------------------------------

def test_streaming_text(fake):
    chunks = stream(fake, user("stream this please"))
    assert streamed_text(chunks) == "[anthropic] You said: stream this please"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert finishes(chunks) == ["stop"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and {c["model"] for c in chunks} == {MODEL}
    usage_chunks = [c for c in chunks if "usage" in c]
    assert usage_chunks == [chunks[-1]] and chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 4
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert chunks[-1]["usage"]["total_tokens"] == 10
    sent = fake.requests[-1]["json"]
    assert sent["stream"] is True and sent["max_tokens"] == 4096


# ---- 3. tools -----------------------------------------------------------------------------------

def test_tool_round_trip(fake):
    body = {**user("find cats"), "tools": TOOLS, "parallel_tool_calls": False}
    result = chat(fake, body)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("toolu_")
    assert call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"query": "find cats"}
    sent = fake.requests[-1]["json"]
    assert sent["tools"] == [{"name": "lookup", "description": "Look things up",
                              "input_schema": TOOLS[0]["function"]["parameters"]},
                             {"name": "other", "input_schema": {"type": "object", "properties": {}}}]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}

    follow_up = {"model": MODEL, "tools": TOOLS, "messages": [
        {"role": "user", "content": "find cats"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "42 cats"}]}
    answer = chat(fake, follow_up)["choices"][0]
    assert answer["message"]["content"] == "Tool said: 42 cats" and answer["finish_reason"] == "stop"
    assert fake.requests[-1]["json"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "find cats"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": call["id"], "name": "lookup",
                                           "input": {"query": "find cats"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "42 cats"}]}]

    chunks = stream(fake, follow_up)
    assert streamed_text(chunks) == "Tool said: 42 cats" and finishes(chunks) == ["stop"]


def test_tool_round_trip_streaming(fake):
    chunks = stream(fake, {**user("find dogs"), "tools": TOOLS})
    deltas = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"] and
              c["choices"][0]["delta"].get("tool_calls")]
    first = deltas[0][0]
    assert first["index"] == 0 and first["type"] == "function" and first["id"].startswith("toolu_")
    assert first["function"] == {"name": "lookup", "arguments": ""}
    assert all(d[0]["index"] == 0 and set(d[0]) == {"index", "function"} for d in deltas[1:])
    assert len(deltas) > 2  # the arguments really arrived in fragments
    arguments = "".join(d[0]["function"]["arguments"] for d in deltas)
    assert json.loads(arguments) == {"query": "find dogs"}
    assert finishes(chunks) == ["tool_calls"]
    assert chunks[-1]["usage"]["completion_tokens"] == 12

    follow_up = {"model": MODEL, "tools": TOOLS, "messages": [
        {"role": "user", "content": "find dogs"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": first["id"], "type": "function", "function": {"name": "lookup", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": first["id"], "content": "3 dogs"}]}
    assert streamed_text(stream(fake, follow_up)) == "Tool said: 3 dogs"


def test_consecutive_tool_results_share_one_user_message(fake):
    calls = [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"query": "a"}'}},
             {"id": "call.2", "type": "function", "function": {"name": "other", "arguments": "{}"}}]
    body = {"model": MODEL, "tools": TOOLS, "tool_choice": "none", "messages": [
        {"role": "user", "content": "two lookups"},
        {"role": "assistant", "content": "Looking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "A"},
        {"role": "tool", "tool_call_id": "call.2", "content": "B"},
        {"role": "user", "content": "thanks"}]}
    assert chat(fake, body)["choices"][0]["message"]["content"] == "[anthropic] You said: thanks"
    sent = fake.requests[-1]["json"]
    assert sent["tool_choice"] == {"type": "none"}
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text", "tool_use", "tool_use"]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "A"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "B"},  # made a valid Anthropic id
        {"type": "text", "text": "thanks"}]


@pytest.mark.parametrize(("openai", "anthropic"), [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "other"}}, {"type": "tool", "name": "other"}),
])
def test_tool_choice_mapping(fake, openai, anthropic):
    sent = chat_body({**user("x"), "tools": TOOLS, "tool_choice": openai}, target_for(fake), stream=False)
    assert sent["tool_choice"] == anthropic
    legacy = {**user("x"), "functions": [t["function"] for t in TOOLS],
              "function_call": {"name": "other"} if isinstance(openai, dict) else openai}
    legacy_sent = chat_body(legacy, target_for(fake), stream=False)
    assert legacy_sent["tool_choice"] == anthropic and legacy_sent["tools"] == sent["tools"]
    assert "tool_choice" not in chat_body({**user("x"), "tool_choice": openai}, target_for(fake), stream=False)


def test_legacy_function_call_round_trip(fake):
    body = {"model": MODEL, "functions": [t["function"] for t in TOOLS], "function_call": "none", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": '{"query": "w"}'}},
        {"role": "function", "name": "lookup", "content": "sunny"}]}
    assert chat(fake, body)["choices"][0]["message"]["content"] == "Tool said: sunny"
    sent = fake.requests[-1]["json"]["messages"]
    assert sent[1]["content"][0]["id"] == sent[2]["content"][0]["tool_use_id"]


def test_roles_are_repaired_to_alternate(fake):
    body = {"model": MODEL, "messages": [
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": "one"}, {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "ok"}, {"role": "assistant", "content": "more"},
        {"role": "user", "content": "three"}]}
    assert chat(fake, body)["choices"][0]["message"]["content"] == "[anthropic] You said: three"
    sent = fake.requests[-1]["json"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    assert sent[2]["content"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    assert sent[3]["content"] == [{"type": "text", "text": "ok"}, {"type": "text", "text": "more"}]


# ---- 4. vision ----------------------------------------------------------------------------------

def image_request(url: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]}]}


def test_vision_with_a_data_url(fake):
    result = chat(fake, image_request(PNG_DATA_URL))
    assert result["choices"][0]["message"]["content"] == "[anthropic] You said: what is this (saw 1 image)"
    assert result["usage"]["prompt_tokens"] == 4 + 85
    image = fake.requests[-1]["json"]["messages"][0]["content"][1]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": PNG_DATA_URL.split(",", 1)[1]}}


def test_vision_with_an_https_url(fake):
    result = chat(fake, image_request("https://example.com/cat.png"))
    assert result["choices"][0]["message"]["content"].endswith("(saw 1 image)")
    image = fake.requests[-1]["json"]["messages"][0]["content"][1]
    assert image == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}


def test_unsupported_image_url_is_refused_before_sending(fake):
    before = len(fake.requests)
    error = expect_error(chat, fake, image_request("ftp://example.com/cat.png"))
    assert (error.status, error.type, error.code) == (400, "invalid_request_error", "unsupported_image_url")
    assert "data: URL" in error.message
    assert len(fake.requests) == before


# ---- 5. JSON mode -------------------------------------------------------------------------------

def test_json_mode(fake):
    body = {**user("give json"), "response_format": {"type": "json_object"}}
    content = chat(fake, body)["choices"][0]["message"]["content"]
    assert json.loads(content) == {"echo": "give json", "provider": "anthropic"}
    assert fake.requests[-1]["json"]["system"] == JSON_INSTRUCTION
    assert json.loads(streamed_text(stream(fake, body))) == {"echo": "give json", "provider": "anthropic"}

    schema = {"type": "object", "properties": {"echo": {"type": "string"}}}
    body = {"model": MODEL, "messages": [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "s"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "e", "schema": schema}}}
    assert json.loads(chat(fake, body)["choices"][0]["message"]["content"])["echo"] == "s"
    # an object schema is a forced tool whose input is the answer; the system prompt is left alone
    sent = fake.requests[-1]["json"]
    assert sent["system"] == "Be exact." and sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    # with tools of the request's own, the schema stays an instruction (a forced tool would hide theirs)
    tool = {"type": "function", "function": {"name": "t", "parameters": {"type": "object",
                                                                         "properties": {"q": {"type": "string"}}}}}
    chat(fake, {**body, "tools": [tool], "tool_choice": "none"})
    system = fake.requests[-1]["json"]["system"]
    assert system.startswith("Be exact.\n\n" + JSON_INSTRUCTION) and orjson.dumps(schema).decode() in system


# ---- 6. length ----------------------------------------------------------------------------------

def test_max_tokens_reached(fake):
    result = chat(fake, {**user("a long answer please"), "max_tokens": 2})
    assert result["choices"][0]["message"]["content"] == "[anthropic] You"
    assert result["choices"][0]["finish_reason"] == "length"
    assert fake.requests[-1]["json"]["max_tokens"] == 2
    chunks = stream(fake, {**user("a long answer please"), "max_completion_tokens": 3})
    assert streamed_text(chunks) == "[anthropic] You said:" and finishes(chunks) == ["length"]


# ---- 7. errors ----------------------------------------------------------------------------------

def test_provider_400_passes_through_with_its_message(fake):
    body = {"model": MODEL, "tools": TOOLS, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "user", "content": "never mind"}]}
    error = expect_error(chat, fake, body)
    assert (error.status, error.type, error.upstream_status) == (400, "invalid_request_error", 400)
    assert "`tool_use` ids were found without `tool_result` blocks" in error.message and "call_a" in error.message
    assert not error.retryable


def test_wrong_key(fake):
    error = expect_error(chat, fake, user("hello"), api_key="sk-ant-wrong-secret-123")
    assert (error.status, error.code, error.upstream_status) == (502, "upstream_auth_error", 401)
    assert "invalid x-api-key" in error.message
    assert "sk-ant-wrong-secret-123" not in error.message and "sk-ant-wrong-secret-123" not in str(error.as_openai())
    assert error.retryable


def test_rate_limit_with_retry_after(fake):
    error = expect_error(chat, fake, user("!status 429 retry-after=2"))
    assert (error.status, error.type, error.retryable, error.retry_after) == (429, "rate_limit_error", True, 2.0)


@pytest.mark.parametrize("status", [500, 503, 529])
def test_server_errors_become_retryable_502(fake, status):
    error = expect_error(chat, fake, user(f"!status {status}"))
    assert (error.status, error.upstream_status, error.retryable) == (502, status, True)
    assert f"fake anthropic error {status}" in error.message


def test_hang_times_out(fake):
    error = expect_error(chat, fake, user("!hang 5"), timeout=0.5)
    assert (error.status, error.code, error.retryable) == (504, "upstream_timeout", True)


def test_reset_connection(fake):
    error = expect_error(chat, fake, user("!reset"))
    assert error.status == 502 and error.retryable


def test_in_stream_error_event(fake):
    received: list[dict] = []
    error = expect_error(stream, fake, user("!error-after 2 one two three four"), received=received)
    assert streamed_text(received) == "[anthropic] You"
    assert (error.status, error.upstream_status, error.retryable) == (502, 529, True)  # overloaded_error
    assert "Overloaded" in error.message


def test_stream_that_dies_is_not_a_silent_truncation(fake):
    received: list[dict] = []
    error = expect_error(stream, fake, user("!die-after 2 one two three four"), received=received)
    assert streamed_text(received) == "[anthropic] You"
    # aiohttp notices the unfinished chunked body first; either way the client gets a retryable 502.
    assert (error.status, error.retryable) == (502, True)
    assert error.code in ("upstream_connection_error", "upstream_stream_truncated")
    assert finishes(received) == []


def test_stream_that_ends_without_message_stop_is_truncated(fake):
    received: list[dict] = []
    error = expect_error(stream, fake, user("!end-after 2 one two three four"), received=received)
    assert streamed_text(received) == "[anthropic] You"
    assert (error.status, error.code, error.retryable) == (502, "upstream_stream_truncated", True)
    assert finishes(received) == []


def test_content_filter(fake):
    result = chat(fake, user("!filter something"))
    assert result["choices"][0]["finish_reason"] == "content_filter"
    assert result["choices"][0]["message"]["content"] == ""
    chunks = stream(fake, user("!filter something"))
    assert finishes(chunks) == ["content_filter"] and streamed_text(chunks) == ""


def test_error_bodies_without_the_fake():
    billing = ADAPTER.error(402, b'{"type":"error","error":{"type":"billing_error","message":"no credit"}}')
    assert (billing.status, billing.code, billing.retryable) == (502, "upstream_billing_error", True)
    too_big = ADAPTER.error(413, b'{"type":"error","error":{"type":"request_too_large","message":"too big"}}')
    assert (too_big.status, too_big.message) == (413, "too big")
    html = ADAPTER.error(502, b"<html>bad gateway</html>")
    assert html.status == 502 and "bad gateway" in html.message
