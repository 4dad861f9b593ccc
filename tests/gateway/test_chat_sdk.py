"""The official OpenAI SDK against a real gateway process, for every provider protocol."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from tests.strategies import PNG_DATA_URL

# The data lives in the module's committed fixture; the mark makes pytest-django set up the test database.
pytestmark = pytest.mark.django_db

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}


def test_non_streaming(gw, protocol):
    raw = gw.client().chat.completions.with_raw_response.create(
        model=protocol.model, messages=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "hello gateway"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == f"[{protocol.tag}] You said: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 2 + 3  # brain: system words + (words + 1) per turn
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 10
    assert raw.headers["x-cb-provider"] == f"a-{protocol.name}"
    assert raw.headers["x-cb-request-id"].startswith("req_")
    assert raw.headers["x-cb-model"]
    # the provider got the system prompt in its own form and our credential, not the client's
    received = gw.fakes[protocol.name].requests[-1]
    assert gw.keys["a"] not in json.dumps(received["headers"])


def test_streaming_with_usage(gw, protocol):
    stream = gw.client().chat.completions.create(
        model=protocol.model, messages=[{"role": "user", "content": "stream me please"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"[{protocol.tag}] You said: stream me please"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert len({c.id for c in chunks}) == 1


def test_streaming_without_usage_request_strips_usage(gw, protocol):
    chunks = list(gw.client().chat.completions.create(
        model=protocol.model, messages=[{"role": "user", "content": "no usage"}], stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_tool_round_trip(gw, protocol):
    client = gw.client()
    messages = [{"role": "user", "content": "Paris"}]
    first = client.chat.completions.create(model=protocol.model, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"query": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = client.chat.completions.create(model=protocol.model, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Tool said: sunny, 21C"


def test_streaming_tool_call(gw, protocol):
    chunks = list(gw.client().chat.completions.create(
        model=protocol.model, messages=[{"role": "user", "content": "Oslo"}], tools=[WEATHER_TOOL], stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments) == {"query": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_vision_data_url(gw, protocol):
    completion = gw.client().chat.completions.create(model=protocol.vision_model or protocol.model, messages=[
        {"role": "user", "content": [{"type": "text", "text": "what is this"},
                                     {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}])
    assert completion.choices[0].message.content.endswith("(saw 1 image)")


def test_json_mode(gw, protocol):
    if not protocol.json_mode:
        pytest.skip(f"{protocol.name} has no JSON mode")
    completion = gw.client().chat.completions.create(
        model=protocol.model, messages=[{"role": "user", "content": "as json"}],
        response_format={"type": "json_object"})
    assert json.loads(completion.choices[0].message.content)["echo"] == "as json"


def test_max_tokens_reports_length(gw, protocol):
    completion = gw.client().chat.completions.create(
        model=protocol.model, messages=[{"role": "user", "content": "a long answer please"}], max_tokens=2)
    assert completion.choices[0].finish_reason == "length"


def test_upstream_errors_surface_as_typed_sdk_exceptions(gw, protocol):
    client = gw.client()

    def ask(text):
        return client.chat.completions.create(model=protocol.model, messages=[{"role": "user", "content": text}])

    with pytest.raises(openai.InternalServerError) as info:
        ask("!status 500")
    assert info.value.status_code == 502 and info.value.body["type"] == "upstream_error"
    with pytest.raises(openai.APIStatusError) as info:
        ask("!hang 5")
    assert info.value.status_code == 504 and info.value.body["code"] == "upstream_timeout"
    with pytest.raises(openai.InternalServerError) as info:
        ask("!reset")
    assert info.value.status_code == 502
    with pytest.raises(openai.RateLimitError) as info:
        ask("!status 429 retry-after=3")
    assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "3"
    # The deployment said "later": until then the gateway answers 429 itself, without calling it.
    calls = len(gw.fakes[protocol.name].requests)
    with pytest.raises(openai.RateLimitError) as info:
        ask("hello again")
    assert info.value.body["code"] == "upstream_rate_limited" and int(info.value.response.headers["retry-after"]) <= 3
    assert len(gw.fakes[protocol.name].requests) == calls


def test_upstream_4xx_is_passed_through_without_the_key(gw, protocol):
    fake = gw.fakes[protocol.name]
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model=protocol.model,
                                            messages=[{"role": "user", "content": "!status 400"}])
    assert info.value.status_code == 400
    assert fake.api_key not in str(info.value.body) and fake.api_key not in info.value.response.text


def test_mid_stream_error_ends_the_stream_with_an_error_event(gw, protocol):
    stream = gw.client().chat.completions.create(
        model=protocol.model, messages=[{"role": "user", "content": "one two three four !error-after 2"}],
        stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices)


def test_async_client(gw, protocol):
    async def run():
        client = gw.async_client()
        completion = await client.chat.completions.create(
            model=protocol.model, messages=[{"role": "user", "content": "async hi"}])
        stream = await client.chat.completions.create(
            model=protocol.model, messages=[{"role": "user", "content": "async stream"}], stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return completion.choices[0].message.content, text

    non_stream, streamed = asyncio.run(run())
    assert non_stream == f"[{protocol.tag}] You said: async hi"
    assert streamed == f"[{protocol.tag}] You said: async stream"


def test_embeddings(gw, protocol):
    if not protocol.embeddings_model:
        pytest.skip(f"{protocol.name} has no embeddings")
    client = gw.client()
    single = client.embeddings.create(model=protocol.embeddings_model, input="hello")
    assert len(single.data) == 1 and single.data[0].embedding
    batch = client.embeddings.create(model=protocol.embeddings_model, input=["one", "two", "three"])
    assert [d.index for d in batch.data] == [0, 1, 2]
    assert batch.data[0].embedding != batch.data[1].embedding
    assert batch.usage.prompt_tokens > 0
