"""The Anthropic adapter's translation on its own: the stream translator on hand-written events, and the
round-trip property (no fake server needed)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from apps.providers.adapters.anthropic import AnthropicAdapter
from apps.providers.adapters.base import ChunkFactory, Target
from tests.fakes.anthropic import normalize, validate
from tests.providers.adapters.harness import expect_error, finishes, streamed_text
from tests.strategies import canonical, expected_conversation, openai_requests

ADAPTER = AnthropicAdapter()
MODEL = "claude-test-1"


# ---- the stream translator on hand-written events -----------------------------------------------

def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


MIXED_EVENTS = [
    sse("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {
        "input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 4}}}),
    sse("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": "Let me check."}}),
    sse("ping", {"type": "ping"}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    sse("content_block_start", {"type": "content_block_start", "index": 1,
                                "content_block": {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {}}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                "delta": {"type": "input_json_delta", "partial_json": '{"query": '}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                "delta": {"type": "input_json_delta", "partial_json": '"x"}'}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
    sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                          "usage": {"output_tokens": 20}}),
    sse("message_stop", {"type": "message_stop"}),
]
MIXED_STREAM = b"".join(MIXED_EVENTS)


def translate(data: bytes, *, step: int | None = None) -> list[dict]:
    translator = ADAPTER.chat_stream(Target("a", "anthropic", "http://x", None, MODEL), ChunkFactory(MODEL, id="c1"))
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    return [chunk for piece in pieces for chunk in translator.feed(piece)] + translator.close()


def test_translator_counts_only_tool_use_blocks_for_tool_indexes():
    chunks = translate(MIXED_STREAM)
    assert streamed_text(chunks) == "Let me check."
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"] and
             c["choices"][0]["delta"].get("tool_calls")]
    assert calls[0] == {"index": 0, "id": "toolu_9", "type": "function",
                        "function": {"name": "lookup", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls) == '{"query": "x"}'
    assert finishes(chunks) == ["tool_calls"]
    assert chunks[-1]["usage"]["prompt_tokens"] == 14 and chunks[-1]["usage"]["completion_tokens"] == 20
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 4


def test_translator_handles_events_split_anywhere():
    whole = translate(MIXED_STREAM)
    bytewise = translate(MIXED_STREAM.replace(b"\n", b"\r\n"), step=1)
    assert [c["choices"] for c in bytewise] == [c["choices"] for c in whole]
    assert bytewise[-1]["usage"] == whole[-1]["usage"]


@pytest.mark.parametrize(("error_type", "status"), [("overloaded_error", 502), ("api_error", 502),
                                                    ("rate_limit_error", 429), ("invalid_request_error", 400)])
def test_translator_raises_on_error_events(error_type, status):
    data = b"".join(MIXED_EVENTS[:3]) + sse("error", {"type": "error", "error": {"type": error_type, "message": "m"}})
    error = expect_error(translate, data)
    assert error.status == status


def test_translator_without_message_stop_is_truncated():
    error = expect_error(translate, MIXED_STREAM.rsplit(b"event: message_stop", 1)[0])
    assert error.code == "upstream_stream_truncated"


def test_no_embeddings():
    assert ADAPTER.supports_embeddings is False and ADAPTER.name == "anthropic"


# ---- 8. round-trip property ---------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=openai_requests())
def test_translation_keeps_the_conversation(body):
    target = Target("a", "anthropic", "http://x", "k", MODEL)
    sent = orjson.loads(ADAPTER.chat_request(body, target, stream=False).body)
    assert canonical(normalize(sent)) == canonical(expected_conversation(body))
    assert validate(sent) is None  # and the real API's rules hold for every translation
