"""The Gemini adapter driven through the gateway's Upstream executor against the fake Gemini, over real HTTP."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from apps.providers.adapters.base import Target
from apps.providers.adapters.gemini import GeminiAdapter
from tests.fakes.gemini import SIGNATURE, FakeGemini
from tests.providers.adapters import harness
from tests.providers.adapters.harness import expect_error, finishes, streamed_text
from tests.strategies import PNG_DATA_URL

ADAPTER = GeminiAdapter()
MODEL = "gemini-2.5-flash"
LOOKUP = {"type": "function", "function": {
    "name": "lookup", "description": "Look things up",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"],
                   "additionalProperties": False}}}
PING = {"type": "function", "function": {"name": "ping", "description": "No arguments",
                                         "parameters": {"type": "object", "properties": {}}}}


FAKE = FakeGemini


def target(fake, *, key: str | None = FakeGemini.api_key, model: str = MODEL) -> Target:
    return Target("gemini-test", "gemini", fake.url, key, model)


def user(text: str, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def chat(fake, body: dict, *, timeout: float = 10, **kw) -> dict:
    return harness.chat(ADAPTER, target(fake, **kw), body, timeout=timeout)


def stream(fake, body: dict, received: list | None = None, **kw) -> list[dict]:
    return harness.stream(ADAPTER, target(fake, **kw), body, into=received, model=MODEL)


def embed(fake, body: dict) -> dict:
    return harness.embed(ADAPTER, target(fake, model="text-embedding-004"), body)


# ---- 1. text ----------------------------------------------------------------------------------------

def test_text_answer_and_what_gemini_received(fake):
    body = {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "hello there"}],
            "max_tokens": 50, "temperature": 0.2, "stop": "END", "n": 1, "logit_bias": {"1": 2}}
    result = chat(fake, body)
    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "[gemini] You said: hello there"}
    assert choice["finish_reason"] == "stop"
    # brain: system 2 words + (2 words + 1) = 5 prompt; 5 words answered
    assert result["usage"]["prompt_tokens"] == 5
    assert result["usage"]["completion_tokens"] == 5
    assert result["usage"]["total_tokens"] == 10
    assert result["model"] == MODEL and result["object"] == "chat.completion"
    assert result["id"].startswith("chatcmpl-")

    sent = fake.requests[-1]
    assert sent["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert sent["headers"]["x-goog-api-key"] == FakeGemini.api_key
    assert sent["query"] == {}  # the key never goes in the URL
    assert "Authorization" not in sent["headers"]
    assert sent["json"] == {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        # logit_bias has no Gemini equivalent and is dropped; Gemini has no required max, none is invented
        "generationConfig": {"temperature": 0.2, "candidateCount": 1, "maxOutputTokens": 50, "stopSequences": ["END"]},
    }


def test_consecutive_turns_are_merged_for_alternation(fake):
    body = {"model": MODEL, "messages": [{"role": "developer", "content": "Rule one."},
                                         {"role": "user", "content": "first"},
                                         {"role": "user", "content": [{"type": "text", "text": "second"}]},
                                         {"role": "assistant", "content": "ok"},
                                         {"role": "assistant", "content": "really"},
                                         {"role": "system", "content": "Rule two."},
                                         {"role": "user", "content": "third"}],
            "max_completion_tokens": 20}
    assert chat(fake, body)["choices"][0]["message"]["content"] == "[gemini] You said: third"
    sent = fake.requests[-1]["json"]
    assert sent["systemInstruction"] == {"parts": [{"text": "Rule one.\n\nRule two."}]}
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "first"}, {"text": "\nsecond"}]},
                                {"role": "model", "parts": [{"text": "ok"}, {"text": "\nreally"}]},
                                {"role": "user", "parts": [{"text": "third"}]}]
    assert sent["generationConfig"] == {"maxOutputTokens": 20}


# ---- 2. streaming -----------------------------------------------------------------------------------

def test_streaming_text(fake):
    chunks = stream(fake, user("stream this please"))
    assert streamed_text(chunks) == "[gemini] You said: stream this please"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert finishes(chunks) == ["stop"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 4  # 3 words + 1
    assert usage["usage"]["completion_tokens"] == 6
    assert usage["usage"]["total_tokens"] == 10
    assert sum(1 for c in chunks if "usage" in c) == 1
    sent = fake.requests[-1]
    assert sent["path"] == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent["query"] == {"alt": "sse"}


# ---- 3. tools ---------------------------------------------------------------------------------------

def test_tool_round_trip(fake):
    body = user("weather in Paris", tools=[LOOKUP, PING], tool_choice="auto")
    first = chat(fake, body)
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"query": "weather in Paris"}
    assert choice["message"]["content"] is None
    sent = fake.requests[-1]["json"]
    assert sent["tools"] == [{"functionDeclarations": [
        # additionalProperties is outside Gemini's schema subset; an empty OBJECT schema is refused, so omitted
        {"name": "lookup", "description": "Look things up",
         "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
        {"name": "ping", "description": "No arguments"}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    body["messages"] += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}]
    second = chat(fake, body)
    assert second["choices"][0]["message"]["content"] == "Tool said: sunny, 21C"
    assert second["choices"][0]["finish_reason"] == "stop"
    contents = fake.requests[-1]["json"]["contents"]
    assert contents[1] == {"role": "model", "parts": [{"functionCall": {"name": "lookup",
                                                                        "args": {"query": "weather in Paris"}},
                                                       "thoughtSignature": SIGNATURE}]}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "lookup", "response": {"content": "sunny, 21C"}}}]}


def test_named_tool_choice_and_none(fake):
    result = chat(fake, user("ring", tools=[LOOKUP, PING],
                             tool_choice={"type": "function", "function": {"name": "ping"}}))
    assert result["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "ping"
    assert fake.requests[-1]["json"]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["ping"]}}
    result = chat(fake, user("no tools now", tools=[LOOKUP], tool_choice="none"))
    assert result["choices"][0]["message"]["content"] == "[gemini] You said: no tools now"
    assert fake.requests[-1]["json"]["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}


def test_tool_round_trip_streaming(fake):
    body = user("find cheese", tools=[LOOKUP])
    chunks = stream(fake, body)
    starts = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []
              if "id" in tc]
    assert len(starts) == 1
    start = starts[0]
    assert start["index"] == 0 and start["type"] == "function"
    assert start["function"] == {"name": "lookup", "arguments": ""}
    fragments = "".join(tc["function"].get("arguments", "") for c in chunks if c["choices"]
                        for tc in c["choices"][0]["delta"].get("tool_calls") or [])
    assert json.loads(fragments) == {"query": "find cheese"}
    assert finishes(chunks) == ["tool_calls"]
    assert chunks[-1]["usage"]["completion_tokens"] == 12

    assistant = {"role": "assistant", "content": None, "tool_calls": [
        {"id": start["id"], "type": "function", "function": {"name": "lookup", "arguments": fragments},
         **({"extra_content": start["extra_content"]} if "extra_content" in start else {})}]}
    body["messages"] += [assistant, {"role": "tool", "tool_call_id": start["id"], "content": "brie"}]
    chunks = stream(fake, body)
    assert streamed_text(chunks) == "Tool said: brie"
    assert finishes(chunks) == ["stop"]


# ---- 4. vision --------------------------------------------------------------------------------------

def test_vision_data_url(fake):
    body = {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}]}
    result = chat(fake, body)
    assert result["choices"][0]["message"]["content"] == "[gemini] You said: what is this (saw 1 image)"
    parts = fake.requests[-1]["json"]["contents"][0]["parts"]
    assert parts == [{"text": "what is this"},
                     {"inlineData": {"mimeType": "image/png", "data": PNG_DATA_URL.split(",", 1)[1]}}]
    assert result["usage"]["prompt_tokens"] == 4 + 85


def test_https_image_url_is_refused_before_sending(fake):
    before = len(fake.requests)
    body = {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}
    error = expect_error(chat, fake, body)
    assert error.status == 400 and error.type == "invalid_request_error" and error.code == "unsupported_image_url"
    assert "data:" in error.message
    assert len(fake.requests) == before


# ---- 5. JSON mode -----------------------------------------------------------------------------------

def test_json_mode(fake):
    result = chat(fake, user("give json", response_format={"type": "json_object"}))
    assert json.loads(result["choices"][0]["message"]["content"]) == {"echo": "give json", "provider": "gemini"}
    assert fake.requests[-1]["json"]["generationConfig"] == {"responseMimeType": "application/json"}

    schema = {"type": "object", "properties": {"echo": {"type": "string"}, "n": {"type": ["integer", "null"]}},
              "required": ["echo"], "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}
    result = chat(fake, user("schema please", response_format={
        "type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": schema}}))
    assert json.loads(result["choices"][0]["message"]["content"])["echo"] == "schema please"
    assert fake.requests[-1]["json"]["generationConfig"] == {"responseMimeType": "application/json", "responseSchema": {
        "type": "object", "properties": {"echo": {"type": "string"}, "n": {"type": "integer", "nullable": True}},
        "required": ["echo"]}}


# ---- 6. length --------------------------------------------------------------------------------------

def test_max_tokens_reached(fake):
    result = chat(fake, user("a long story please", max_tokens=3))
    assert result["choices"][0]["message"]["content"] == "[gemini] You said:"
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 3
    chunks = stream(fake, user("a long story please", max_completion_tokens=3))
    assert streamed_text(chunks) == "[gemini] You said:"
    assert finishes(chunks) == ["length"]


# ---- 7. errors --------------------------------------------------------------------------------------

def test_provider_400_passes_through_with_its_message(fake):
    bad = {"type": "function", "function": {"name": "bad name!", "parameters": {}}}
    error = expect_error(chat, fake, user("hi", tools=[bad]))
    assert error.status == 400 and error.type == "invalid_request_error" and error.code == "invalid_argument"
    assert "Invalid function name" in error.message
    assert not error.retryable


def test_wrong_or_missing_key(fake):
    error = expect_error(chat, fake, user("hi"), key="AIza-wrong-key-123")
    assert error.status == 502 and error.code == "upstream_auth_error" and error.retryable
    assert error.upstream_status == 400  # Gemini's answer to a bad key is 400 API_KEY_INVALID
    assert "API key not valid" in error.message and "AIza-wrong-key-123" not in error.message
    error = expect_error(chat, fake, user("hi"), key=None)
    assert error.status == 502 and error.code == "upstream_auth_error" and error.upstream_status == 403
    error = expect_error(stream, fake, user("hi"), key="AIza-wrong-key-123")
    assert error.code == "upstream_auth_error"


def test_rate_limit(fake):
    error = expect_error(chat, fake, user("!status 429 retry-after=2"))
    assert error.status == 429 and error.retryable and error.retry_after == 2.0
    assert error.type == "rate_limit_error" and "quota" in error.message


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_become_502(fake, status):
    error = expect_error(chat, fake, user(f"!status {status}"))
    assert error.status == 502 and error.retryable and error.upstream_status == status


def test_timeout_and_reset(fake):
    error = expect_error(chat, fake, user("!hang 5"), timeout=0.5)
    assert error.status == 504 and error.retryable
    error = expect_error(chat, fake, user("!reset"))
    assert error.status == 502 and error.retryable


def test_stream_error_event_after_two_pieces(fake):
    received: list[dict] = []
    error = expect_error(stream, fake, user("one two three four !error-after 2"), received)
    assert error.status == 502 and error.retryable and "internal error" in error.message
    assert streamed_text(received) == "[gemini] You"
    assert finishes(received) == []


def test_stream_dropped_connection_is_not_a_silent_truncation(fake):
    received: list[dict] = []
    error = expect_error(stream, fake, user("one two three four !die-after 2"), received)
    assert error.status == 502 and error.retryable
    # aiohttp sees the chunked body cut short and Upstream reports a broken connection; a body that ends
    # cleanly without a finishReason is caught by the translator's close() (next test).
    assert error.code in ("upstream_stream_truncated", "upstream_connection_error")
    assert streamed_text(received) == "[gemini] You"


def test_safety_block(fake):
    result = chat(fake, user("something nasty !filter"))
    assert result["choices"][0]["finish_reason"] == "content_filter"
    assert result["choices"][0]["message"]["content"] == ""
    assert result["usage"]["completion_tokens"] == 0
    chunks = stream(fake, user("something nasty !filter"))
    assert finishes(chunks) == ["content_filter"] and streamed_text(chunks) == ""
    assert chunks[-1]["usage"]["prompt_tokens"] == 4


# ---- 9. embeddings ----------------------------------------------------------------------------------

def test_embeddings(fake):
    single = embed(fake, {"model": "text-embedding-004", "input": "hello world"})
    assert single["object"] == "list" and single["model"] == "text-embedding-004"
    assert len(single["data"]) == 1 and single["data"][0]["object"] == "embedding"
    assert len(single["data"][0]["embedding"]) == 8
    # Gemini reports no usage for embeddings: estimated at 4 characters a token
    assert single["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    sent = fake.requests[-1]
    assert sent["path"] == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent["json"] == {"requests": [{"model": "models/text-embedding-004",
                                          "content": {"parts": [{"text": "hello world"}]}}]}

    many = embed(fake, {"model": "text-embedding-004", "input": ["first", "hello world", "third"], "dimensions": 4})
    assert [d["index"] for d in many["data"]] == [0, 1, 2]
    assert many["data"][1]["embedding"] == single["data"][0]["embedding"][:4]
    assert many["data"][0]["embedding"] != many["data"][2]["embedding"]
    assert many["usage"]["prompt_tokens"] == 2 + 3 + 2
    assert fake.requests[-1]["json"]["requests"][0]["outputDimensionality"] == 4

    encoded = embed(fake, {"model": "text-embedding-004", "input": "hello world", "encoding_format": "base64"})
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == pytest.approx(single["data"][0]["embedding"])


