"""The Gemini adapter's translation details the fake does not exercise, and the round-trip property."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings

from apps.providers.adapters.base import ChunkFactory, Target, UpstreamError
from apps.providers.adapters.gemini import GeminiAdapter
from tests.fakes.gemini import normalize, validate
from tests.providers.adapters.harness import finishes, streamed_text
from tests.strategies import canonical, expected_conversation, openai_requests

ADAPTER = GeminiAdapter()
MODEL = "gemini-2.5-flash"


def user(text: str, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


# ---- translation details the fake does not exercise --------------------------------------------------

def target_stub() -> Target:
    return Target("g", "gemini", "https://generativelanguage.googleapis.com", "AIza-secret", MODEL)


def test_blocked_prompt_and_usage_details():
    payload = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
               "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}
    result = ADAPTER.chat_response(orjson.dumps(payload), target_stub())
    assert result["choices"][0]["finish_reason"] == "content_filter"
    assert result["choices"][0]["message"]["content"] == ""
    assert result["usage"]["prompt_tokens"] == 7

    payload = {"candidates": [
        {"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"text": "thinking…", "thought": True}, {"text": "Hi "}, {"text": "there"}]}},
        {"index": 1, "finishReason": "RECITATION"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6,
                          "cachedContentTokenCount": 3, "totalTokenCount": 20}, "responseId": "abc"}
    result = ADAPTER.chat_response(orjson.dumps(payload), target_stub())
    assert result["id"] == "chatcmpl-abc"
    assert [c["message"]["content"] for c in result["choices"]] == ["Hi there", ""]
    assert [c["finish_reason"] for c in result["choices"]] == ["stop", "content_filter"]
    assert result["usage"] == {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                               "prompt_tokens_details": {"cached_tokens": 3},
                               "completion_tokens_details": {"reasoning_tokens": 6}}


def test_blocked_prompt_in_a_stream():
    translator = ADAPTER.chat_stream(target_stub(), ChunkFactory(MODEL))
    event = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 3}}
    chunks = translator.feed(b"data: " + orjson.dumps(event) + b"\n\n") + translator.close()
    assert finishes(chunks) == ["content_filter"]
    assert chunks[-1]["usage"]["prompt_tokens"] == 3


def test_error_body_details():
    body = orjson.dumps({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
                                   "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                "retryDelay": "37s"}]}})
    error = ADAPTER.error(429, body, {})
    assert error.status == 429 and error.retry_after == 37.0 and error.message == "Quota exceeded"
    error = ADAPTER.error(404, orjson.dumps([{"error": {"code": 404, "message": "models/x is not found",
                                                        "status": "NOT_FOUND"}}]), {})
    assert error.status == 404 and error.code == "not_found" and error.message == "models/x is not found"
    request = ADAPTER.chat_request(user("hi"), target_stub(), stream=True)
    assert request.url == (f"https://generativelanguage.googleapis.com/v1beta/models/{MODEL}"
                           ":streamGenerateContent?alt=sse")
    assert "AIza-secret" not in request.url and request.headers["x-goog-api-key"] == "AIza-secret"


def test_tool_message_without_a_matching_call_is_refused():
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"},
                                         {"role": "tool", "tool_call_id": "call_nowhere", "content": "x"}]}
    with pytest.raises(UpstreamError) as info:
        ADAPTER.chat_request(body, target_stub(), stream=False)
    assert info.value.status == 400 and info.value.code == "invalid_tool_call_id"


# ---- 8. round-trip property -------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(openai_requests())
def test_translation_keeps_the_conversation(body):
    sent = orjson.loads(ADAPTER.chat_request(body, target_stub(), stream=False).body)
    assert validate(sent) is None  # what we send is what the (strict) fake, like Gemini, accepts
    assert canonical(normalize(sent)) == canonical(expected_conversation(body))


def test_truncated_sse_body_raises_from_close():
    translator = ADAPTER.chat_stream(target_stub(), ChunkFactory(MODEL))
    event = {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}]}
    chunks = translator.feed(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}, {"content": "Hel"}]
    with pytest.raises(UpstreamError) as info:
        translator.close()
    assert info.value.code == "upstream_stream_truncated" and info.value.status == 502 and info.value.retryable


def test_error_event_in_the_same_read_as_content():
    translator = ADAPTER.chat_stream(target_stub(), ChunkFactory(MODEL))
    content = {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]}
    failure = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    body = b"".join(b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in (content, failure))
    chunks = translator.feed(body)
    assert streamed_text(chunks) == "Hi"
    with pytest.raises(UpstreamError) as info:
        translator.close()
    assert info.value.status == 502 and info.value.retryable and "overloaded" in info.value.message
