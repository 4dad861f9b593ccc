"""The OpenAI adapter (also every OpenAI-compatible server) against the fake OpenAI over real HTTP."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.providers.adapters.base import ChunkFactory, Target, UpstreamError
from apps.providers.adapters.openai import OpenAIAdapter, OpenAIStream, RelayableRun, relayable, relayable_run
from tests.fakes.openai import FakeOpenAI, normalize
from tests.providers.adapters import harness
from tests.strategies import canonical, expected_conversation, openai_requests

ADAPTER = OpenAIAdapter()


FAKE = FakeOpenAI


def target(fake, key=None, **options) -> Target:
    return Target("p", "openai", f"{fake.url}/v1", key or fake.api_key, "gpt-4o-2024-08-06", options)


def run(coro_fn, timeout=5.0):
    return harness.run(coro_fn, timeout)


def chat(fake, text, **extra):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}
    return harness.chat(ADAPTER, target(fake), body, timeout=5.0)


def stream(fake, text, **extra):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}
    return harness.stream(ADAPTER, target(fake), body, timeout=5.0, model="m")


def test_request_is_passed_through_with_our_key_and_the_upstream_name(fake):
    result = chat(fake, "hello", temperature=0.3, seed=7, logit_bias={"1": 2}, circuit_breaker=None)
    assert result["choices"][0]["message"]["content"] == "[openai] You said: hello"
    received = fake.requests[-1]
    assert received["headers"]["Authorization"] == f"Bearer {fake.api_key}"
    assert received["json"]["model"] == "gpt-4o-2024-08-06"
    assert received["json"]["seed"] == 7 and received["json"]["logit_bias"] == {"1": 2}
    assert "stream" not in received["json"]


def test_stream_asks_for_usage_even_when_the_client_did_not(fake):
    chunks = stream(fake, "count me")
    assert fake.requests[-1]["json"]["stream_options"] == {"include_usage": True}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def test_errors(fake):
    with pytest.raises(UpstreamError) as info:
        run(lambda u: u.chat(ADAPTER, target(fake, key="sk-wrong"),
                             {"model": "m", "messages": [{"role": "user", "content": "x"}]}))
    assert info.value.status == 502 and info.value.code == "upstream_auth_error" and info.value.retryable
    assert "sk-wrong" not in info.value.message
    with pytest.raises(UpstreamError) as info:
        chat(fake, "!status 429 retry-after=2")
    assert (info.value.status, info.value.retryable, info.value.retry_after) == (429, True, 2.0)
    with pytest.raises(UpstreamError) as info:
        chat(fake, "!status 400")
    assert info.value.status == 400 and not info.value.retryable and "fake openai error 400" in info.value.message
    with pytest.raises(UpstreamError) as info:
        run(lambda u: u.chat(ADAPTER, target(fake), {"model": "m", "messages": [{"role": "user",
                                                                                   "content": "!hang 3"}]}),
            timeout=0.5)
    assert info.value.status == 504


def test_stream_errors_keep_earlier_content_and_truncation_is_detected(fake):
    received = []

    async def go(upstream):
        body = {"model": "m", "messages": [{"role": "user", "content": "a b c d !error-after 2"}], "stream": True}
        async for chunk in upstream.chat_stream(ADAPTER, target(fake), body, ChunkFactory("m")):
            received.append(chunk)
    with pytest.raises(UpstreamError):
        run(go)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in received if c["choices"]) == "[openai] You"

    translator = OpenAIStream()
    data = b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}\n\n'
    assert translator.feed(data)[0]["choices"][0]["delta"] == {"content": "hi"}
    with pytest.raises(UpstreamError) as info:
        translator.close()
    assert info.value.code == "upstream_stream_truncated"

    translator = OpenAIStream()
    both = data + b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    assert len(translator.feed(both)) == 1  # content first…
    with pytest.raises(UpstreamError, match="boom"):  # …then the error
        translator.feed(b"")


def test_split_reads_reassemble(fake):
    translator = OpenAIStream()
    payload = (b'data: {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}\r\n\r\n'
               b"data: [DONE]\r\n\r\n")
    chunks = []
    for i in range(len(payload)):
        chunks += translator.feed(payload[i:i + 1])
    chunks += translator.close()
    assert [c["choices"][0]["finish_reason"] for c in chunks] == ["stop"]


def test_embeddings_and_completions(fake):
    result = run(lambda u: u.embeddings(ADAPTER, target(fake), {"model": "e", "input": ["a", "b"]}))
    assert [d["index"] for d in result["data"]] == [0, 1]
    request = ADAPTER.completions_request({"model": "x", "prompt": "p"}, target(fake), stream=False)
    assert request.url.endswith("/v1/completions")
    payload = run(lambda u: u.fetch(ADAPTER, request))
    assert json.loads(payload)["choices"][0]["text"].strip() == "[openai] completed: p"


@settings(max_examples=150, deadline=None)
@given(openai_requests())
def test_round_trip_keeps_roles_text_and_tool_calls(body):
    sent = orjson.loads(ADAPTER.chat_request(body, Target("p", "openai", "http://x/v1", "k", "m"), stream=False).body)
    assert canonical(normalize(sent)) == canonical(expected_conversation(body))


# ---- relaying undecoded chunks (the /v1/chat/completions stream relay) --------------------------------------
CONTENT = b'{"id":"c1","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}]}'


@pytest.mark.parametrize(("data", "expected"), [
    (CONTENT, True),
    (CONTENT[:-1] + b',"usage":null}', True),
    # key names inside strings are escaped, so content that looks like our keys stays relayable
    (CONTENT.replace(b'"hi"', b'"say \\"usage\\":{} or \\"error\\" or \\"finish_reason\\":\\"stop\\""'), True),
    (CONTENT.replace(b'"finish_reason":null', b'"finish_reason":"stop"'), False),
    (CONTENT[:-1] + b',"usage":{"prompt_tokens":1}}', False),
    (CONTENT[:-1] + b',"usage": null}', False),  # written differently: decoded, never guessed at
    (CONTENT[:-1] + b',"provider":"upstream-label"}', False),
    (b'{"error":{"message":"boom"}}', False),
    (CONTENT.replace(b'}]}', b'},{"index":1,"delta":{},"finish_reason":null}]}'), False),  # n > 1
    (b'{"id":"c1","choices":[],"usage":null}', False),
    (CONTENT + b" ", False),
    (b"[DONE]", False),
])
def test_which_chunks_are_relayed_undecoded(data, expected):
    assert relayable(data) is expected


def test_a_relaying_translator_hands_content_over_as_bytes_and_decodes_the_rest():
    translator = OpenAIStream(relay=True)
    finish = CONTENT.replace(b'"finish_reason":null', b'"finish_reason":"stop"').replace(b'"hi"', b'""')
    usage = b'{"id":"c1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
    stream = b"".join(b"data: " + item + b"\r\n\r\n" for item in (CONTENT, CONTENT, finish, usage, b"[DONE]"))
    out = []
    for start in range(0, len(stream), 7):  # split reads reassemble
        out += translator.feed(stream[start:start + 7])
    out += translator.close()  # a finished stream: no truncation error
    assert out[:2] == [CONTENT, CONTENT]
    assert out[2]["choices"][0]["finish_reason"] == "stop" and out[3]["usage"]["total_tokens"] == 2

    translator = OpenAIStream(relay=True)
    assert translator.feed(b"data: " + CONTENT + b"\n\n") == [b"data: " + CONTENT + b"\n\n"]  # a run of one
    with pytest.raises(UpstreamError) as info:  # relayed content alone never marks a stream finished
        translator.close()
    assert info.value.code == "upstream_stream_truncated"


# ---- a read's leading run of relayable events, checked and handed over whole --------------------------------
def _sse(*chunks: bytes) -> bytes:
    return b"".join(b"data: " + chunk + b"\n\n" for chunk in chunks)


FINISH = CONTENT.replace(b'"finish_reason":null', b'"finish_reason":"stop"').replace(b'"hi"', b'""')
USAGE = b'{"id":"c1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
EVENTS = {  # chunks an OpenAI-compatible upstream sends, relayable or not
    "content": CONTENT,
    "usage null": CONTENT[:-1] + b',"usage":null}',
    "two choices": CONTENT.replace(b'}]}', b'},{"index":1,"delta":{"content":"x"},"finish_reason":null}]}'),
    "tool call": (b'{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":'
                  b'{"arguments":"{}"}}]},"finish_reason":null}]}'),
    "no delta (azure filter)": b'{"id":"c1","choices":[{"index":0,"finish_reason":null,"content_filter_results":{}}]}',
    "no choices": b'{"id":"c1","choices":[],"prompt_filter_results":[]}',
    "bare choice": b'{"id":"c1","choices":[{"index":0,"logprobs":null}]}',
    "provider": CONTENT[:-1] + b',"provider":"upstream-label"}',
    "reasoning": CONTENT.replace(b'"content":"hi"', b'"reasoning":"hmm"'),
    "spaced usage": CONTENT[:-1] + b',"usage": null}',
    "finish": FINISH,
    "usage": USAGE,
    "done": b"[DONE]",
}


def _one_by_one(out: list) -> list:
    """A translator's output with runs taken apart into their chunks' JSON."""
    items = []
    for item in out:
        if type(item) is RelayableRun:
            items += [event[6:] for event in item.split(b"\n\n")[:-1]]
        else:
            items.append(item)
    return items


def test_a_reads_leading_relayable_events_come_as_one_run_and_the_rest_decoded():
    data = _sse(CONTENT, EVENTS["usage null"], CONTENT, FINISH, USAGE, b"[DONE]")
    out = OpenAIStream(relay=True).feed(data)
    assert type(out[0]) is RelayableRun and out[0] == _sse(CONTENT, EVENTS["usage null"], CONTENT)
    assert out[1]["choices"][0]["finish_reason"] == "stop" and out[2]["usage"]["total_tokens"] == 2
    assert relayable_run(data) == len(out[0])


@pytest.mark.parametrize("name", ["two choices", "tool call", "no delta (azure filter)", "no choices", "bare choice",
                                  "provider", "spaced usage"])
def test_one_event_the_counts_cannot_vouch_for_keeps_its_read_off_the_run(name):
    # before, among or after relayable events: the whole read goes event by event (a tool call's delta is
    # relayable, but its own "index" keys spoil the count: that read goes the slower way)
    for events in ((EVENTS[name], CONTENT), (CONTENT, EVENTS[name], CONTENT), (CONTENT, CONTENT, EVENTS[name])):
        assert relayable_run(_sse(*events)) == 0


@pytest.mark.parametrize("data", [
    _sse(CONTENT, CONTENT).replace(b"\n", b"\r\n"),  # CRLF lines: the decoder's job
    b"event: chunk\n" + _sse(CONTENT),  # named events
    b'data: {"id":"c1",\ndata: "x":1}\n\n' + _sse(CONTENT),  # a multi-line event
    b": keep-alive\n\n" + _sse(CONTENT),  # a comment
    _sse(b'{"error":{"message":"boom"}}', CONTENT),
])
def test_reads_written_any_other_way_have_no_run(data):
    assert relayable_run(data) == 0


def test_a_run_stops_at_the_last_whole_event_and_a_split_event_is_decoded_once_whole():
    data = _sse(CONTENT, CONTENT, FINISH)
    cut = len(_sse(CONTENT)) + 20  # the second event split between two reads
    translator = OpenAIStream(relay=True)
    first = translator.feed(data[:cut])
    assert first == [_sse(CONTENT)] and type(first[0]) is RelayableRun
    second = translator.feed(data[cut:])  # the decoder holds a partial event: no run here
    assert second[0] == CONTENT and type(second[0]) is bytes
    assert second[1]["choices"][0]["finish_reason"] == "stop"


def test_content_before_an_error_event_is_delivered_then_the_error_raised():
    translator = OpenAIStream(relay=True)
    out = translator.feed(_sse(CONTENT, CONTENT, b'{"error":{"message":"overloaded","type":"server_error"}}'))
    assert out == [_sse(CONTENT, CONTENT)]
    with pytest.raises(UpstreamError) as info:
        translator.feed(_sse(CONTENT))
    assert "overloaded" in info.value.message


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(sorted(set(EVENTS) - {"done"})), max_size=12), st.integers(min_value=1, max_value=400))
def test_runs_carry_exactly_what_event_by_event_relaying_would(names, read_size):
    """Whatever mix of events, however the reads split them: taken apart, the runs and the rest are exactly what
    the per-event translation gives, and every chunk in a run is relayable on its own."""
    data = _sse(*(EVENTS[name] for name in names), b"[DONE]")
    with_runs, per_event = OpenAIStream(relay=True), OpenAIStream(relay=True)
    got, expected = [], []
    for start in range(0, len(data), read_size):
        read = data[start:start + read_size]
        out = with_runs.feed(read)
        got += _one_by_one(out)
        expected += per_event._translate(per_event.decoder.feed(read))
        for item in out:
            if type(item) is RelayableRun:
                assert all(relayable(event[6:]) for event in item.split(b"\n\n")[:-1])
    assert got == expected
