"""The built-in simulated provider through the official SDK against a real server (the sixth protocol).

It has no wire protocol to misbehave on command, so the error cases of test_chat_sdk.py do not apply."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.strategies import PNG_DATA_URL

pytestmark = pytest.mark.django_db
MODEL = "simulated-echo"
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def test_non_stream_and_stream(gw):
    client = gw.client("b")
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert raw.headers["x-cb-provider"] == "simulated"
    assert completion.choices[0].message.content == "Simulated reply: hi"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Simulated reply: hi"
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens


def test_tool_round_trip_stream_and_not(gw):
    client = gw.client("b")
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], tools=[TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"input": "x"}
    second = client.chat.completions.create(model=MODEL, tools=[TOOL], messages=[
        {"role": "user", "content": "x"}, first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "42"}])
    assert second.choices[0].message.content == "The tool answered: 42"
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y"}],
                                                 tools=[TOOL], stream=True))
    arguments = "".join(tc.function.arguments or "" for c in chunks if c.choices
                        for tc in c.choices[0].delta.tool_calls or [])
    assert json.loads(arguments) == {"input": "y"}


def test_vision_json_mode_length_embeddings(gw):
    client = gw.client("b")
    seen = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}])
    assert seen.choices[0].message.content == "Simulated reply (with 1 image): look"
    as_json = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "j"}],
                                             response_format={"type": "json_object"})
    assert json.loads(as_json.choices[0].message.content) == {"echo": "j"}
    short = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "long " * 20}],
                                           max_tokens=3)
    assert short.choices[0].finish_reason == "length"
    vectors = client.embeddings.create(model="simulated-embedding", input=["a", "b"])
    assert [d.index for d in vectors.data] == [0, 1]


def test_async(gw):
    async def run():
        client = gw.async_client("b")
        stream = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "async"}],
                                                      stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return text

    assert asyncio.run(run()) == "Simulated reply: async"
