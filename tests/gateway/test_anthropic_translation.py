"""The Anthropic ingress's pure translation: Messages requests to the chat body, chat chunks to Anthropic's
events (the SDK tests in test_anthropic_messages.py cover the wire; these the shapes fakes do not produce)."""

from __future__ import annotations

import json

import pytest

from apps.core.errors import InvalidRequest
from apps.gateway.anthropic_ingress import events, requests
from apps.gateway.context import RequestContext
from apps.providers.adapters.base import ChunkFactory

PNG = "iVBORw0KGgo="


def body(*messages, **fields) -> dict:
    return requests.validate({"model": "m", "max_tokens": 10, "messages": list(messages), **fields})


def test_a_user_turn_with_tool_results_becomes_tool_messages_then_the_rest():
    chat = requests.to_chat(body(
        {"role": "user", "content": "weather in Paris and Oslo?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "two calls", "signature": "sig"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"q": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {"q": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "snow", "is_error": True},
            {"type": "text", "text": "and this photo?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
        system=[{"type": "text", "text": "A"}, {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}],
        stop_sequences=["END"], metadata={"user_id": "u1"}, top_k=5,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        tools=[{"name": "w", "description": "weather", "input_schema": {"type": "object"}}]))
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    assert chat["messages"][0]["content"] == "A\n\nB"
    assistant = chat["messages"][2]
    assert assistant["content"] == "Checking." and [c["id"] for c in assistant["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"q": "Paris"}
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert chat["messages"][4]["content"] == "Error: snow"
    assert chat["messages"][5]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert chat["stop"] == ["END"] and chat["user"] == "u1" and chat["max_tokens"] == 10
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert chat["tools"][0]["function"] == {"name": "w", "parameters": {"type": "object"}, "description": "weather"}
    assert "top_k" not in chat and "thinking" not in chat


def test_documents_and_unknown_blocks():
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
    linked = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    found = body({"role": "user", "content": [pdf, {"type": "search_result", "source": "x"}, linked]})
    chat = requests.to_chat(found)
    assert chat["messages"][0]["content"] == [{"type": "file", "file": {
        "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"}}]
    assert requests.untranslatable(found) == ["document (other than base64 or text) blocks", "search_result blocks"]
    assert requests.untranslatable(body({"role": "user", "content": "x"})) == []


@pytest.mark.parametrize(("fields", "param"), [
    ({"max_tokens": None}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"model": ""}, "model"),
    ({"temperature": 2}, "temperature"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]},
     "messages.0.content.0.type"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
     "messages.0.content.0.source"),
    ({"tools": [{"name": "t"}]}, "tools.0.input_schema"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format"),
])
def test_validation_names_the_field(fields, param):
    request = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **fields}
    with pytest.raises(InvalidRequest) as info:
        requests.validate(request)
    assert info.value.param == param and info.value.status == 400


def test_count_tokens_needs_no_max_tokens():
    assert requests.validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, count_tokens=True)


def parse(frames: bytes) -> list[tuple[str, dict]]:
    out = []
    for event in frames.decode().strip().split("\n\n"):
        name, data = event.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_chunks_become_one_content_block_per_text_run_and_tool_call():
    ctx = RequestContext(health=None, request_id="req_1", endpoint="messages")
    chunks = ChunkFactory("gpt-4o")
    frames = events.ChunkEvents(ctx, message_id="msg_1", model="gpt-4o", stop_sequences=[])
    data = frames.feed([chunks.chunk({"role": "assistant", "content": ""}), chunks.chunk({"content": "Let me "}),
                        chunks.chunk({"content": "check."})])
    data += frames.feed([
        chunks.chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                      "function": {"name": "w", "arguments": ""}}]}),
        chunks.chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}),
        chunks.chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "v", "arguments": "{}"}}]}),
        chunks.chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunks.chunk({}, finish_reason="tool_calls"),
        chunks.usage({"prompt_tokens": 12, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4}})])
    parsed = parse(data + frames.end())
    names = [name for name, _ in parsed]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert parsed[6][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "w", "input": {}}
    # arguments for an earlier call after a later one opened (rare: OpenAI sends calls one after another) still go
    # to the earlier block
    late = [d for n, d in parsed if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert [(d["index"], d["delta"]["partial_json"]) for d in late] == [(1, '{"q": '), (2, "{}"), (1, '"Paris"}')]
    assert parsed[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert parsed[-2][1]["usage"] == {"input_tokens": 8, "output_tokens": 7, "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 4}
