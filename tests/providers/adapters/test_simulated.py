"""The built-in simulated provider: deterministic, offline, with usage."""

import asyncio
import json

from apps.providers.adapters.base import ChunkFactory, Target
from apps.providers.adapters.simulated import SimulatedAdapter, estimate_tokens

ADAPTER = SimulatedAdapter()
TARGET = Target("simulated", "simulated", "", None, "simulated-echo")


def complete(body):
    return asyncio.run(ADAPTER.complete(body, TARGET))


def stream(body):
    async def go():
        return [c async for c in ADAPTER.stream(body, TARGET, ChunkFactory("simulated-echo"))]
    return asyncio.run(go())


def test_echo_with_usage():
    result = complete({"messages": [{"role": "user", "content": "hello world"}]})
    assert result["choices"][0]["message"]["content"] == "Simulated reply: hello world"
    usage = result["usage"]
    assert usage["completion_tokens"] == estimate_tokens("Simulated reply: hello world")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_matches_non_stream():
    body = {"messages": [{"role": "user", "content": "one two three"}]}
    chunks = stream(body)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == complete(body)["choices"][0]["message"]["content"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["usage"] == complete(body)["usage"]


def test_tools_json_mode_images_and_length():
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    call = complete({"messages": [{"role": "user", "content": "x"}], "tools": tools})["choices"][0]
    assert call["finish_reason"] == "tool_calls"
    assert json.loads(call["message"]["tool_calls"][0]["function"]["arguments"]) == {"input": "x"}
    answer = complete({"messages": [{"role": "user", "content": "x"}, call["message"],
                                     {"role": "tool", "tool_call_id": "c", "content": "42"}], "tools": tools})
    assert answer["choices"][0]["message"]["content"] == "The tool answered: 42"
    streamed = stream({"messages": [{"role": "user", "content": "x"}], "tools": tools})
    arguments = "".join(tc["function"].get("arguments", "") for c in streamed if c["choices"]
                        for tc in c["choices"][0]["delta"].get("tool_calls", []))
    assert json.loads(arguments) == {"input": "x"}
    json_answer = complete({"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "json_object"}})
    assert json.loads(json_answer["choices"][0]["message"]["content"]) == {"echo": "q"}
    image = complete({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]})
    assert "(with 1 image)" in image["choices"][0]["message"]["content"]
    short = complete({"messages": [{"role": "user", "content": "a long sentence here"}], "max_tokens": 2})
    assert short["choices"][0]["finish_reason"] == "length"


def test_embeddings_are_deterministic():
    first = asyncio.run(ADAPTER.embed({"input": ["a", "b"], "dimensions": 4}, TARGET))
    again = asyncio.run(ADAPTER.embed({"input": ["a", "b"], "dimensions": 4}, TARGET))
    assert first == again and len(first["data"][0]["embedding"]) == 4
    assert first["data"][0]["embedding"] != first["data"][1]["embedding"]
