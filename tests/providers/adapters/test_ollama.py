"""The Ollama adapter against a fake Ollama server, over real HTTP through the gateway's Upstream."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest
from hypothesis import given, settings

from apps.providers.adapters.base import ChunkFactory, Target, UpstreamError
from apps.providers.adapters.ollama import OllamaAdapter, OllamaStream
from tests.fakes.base import brain
from tests.fakes.ollama import FakeOllama, normalize
from tests.providers.adapters import harness
from tests.providers.adapters.harness import finishes, run, streamed_text
from tests.strategies import PNG_DATA_URL, canonical, expected_conversation, openai_requests

ADAPTER = OllamaAdapter()
TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the web",
                                           "parameters": {"type": "object",
                                                          "properties": {"query": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


FAKE = FakeOllama


@pytest.fixture(scope="module")
def proxied():
    server = FakeOllama(require_key=True).start()
    yield server
    server.stop()


def target_for(server: FakeOllama, model: str = "llama3.2", api_key: str | None = None, **options) -> Target:
    return Target("ollama-local", "ollama", server.url, api_key, model, options)


def chat(target: Target, body: dict, timeout: float = 10.0) -> dict:
    return harness.chat(ADAPTER, target, body, timeout=timeout)


def stream(target: Target, body: dict, into: list | None = None, timeout: float = 10.0) -> list[dict]:
    return harness.stream(ADAPTER, target, body, into=into, timeout=timeout)


def user(text: str) -> dict:
    return {"model": "llama3.2", "messages": [{"role": "user", "content": text}]}


# 1. text ----------------------------------------------------------------------------------------

def test_text_answer_and_what_ollama_received(fake):
    body = {"model": "llama3.2", "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": "END", "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "developer", "content": "Answer kindly."},
                         {"role": "user", "content": "hello there"}]}
    result = chat(target_for(fake), body)

    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "[ollama] You said: hello there"}
    assert choice["finish_reason"] == "stop"
    assert result["object"] == "chat.completion"
    assert result["model"] == "llama3.2"
    # brain: system "Be brief.\n\nAnswer kindly." (4 words) + "hello there" (2 + 1) → 7; answer 5 words
    assert (result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"]) == (7, 5)
    assert result["usage"]["total_tokens"] == 12

    received = fake.requests[-1]
    assert received["path"] == "/api/chat"
    assert "Authorization" not in received["headers"]
    sent = received["json"]
    reply = brain(normalize(sent), tag="ollama")
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, 5)
    assert sent["stream"] is False  # Ollama streams by default
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "system", "content": "Answer kindly."},
                                {"role": "user", "content": "hello there"}]
    assert sent["options"] == {"temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["END"], "num_predict": 50}
    assert "tools" not in sent and "format" not in sent


def test_key_is_sent_as_bearer_for_proxied_ollama_and_provider_options(proxied):
    target = target_for(proxied, api_key=proxied.api_key, num_ctx=8192, keep_alive="10m",
                        headers={"X-Team": "ml"})
    result = chat(target, user("through the proxy"))
    assert result["choices"][0]["message"]["content"] == "[ollama] You said: through the proxy"
    received = proxied.requests[-1]
    assert received["headers"]["Authorization"] == f"Bearer {proxied.api_key}"
    assert received["headers"]["X-Team"] == "ml"
    assert received["json"]["options"] == {"num_ctx": 8192}
    assert received["json"]["keep_alive"] == "10m"


# 2. streaming -----------------------------------------------------------------------------------

def test_streaming_text(fake):
    chunks = stream(target_for(fake), user("stream me a few words"))

    assert streamed_text(chunks) == "[ollama] You said: stream me a few words"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert finishes(chunks) == ["stop"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 6
    assert chunks[-1]["usage"]["completion_tokens"] == 8
    assert chunks[-1]["usage"]["total_tokens"] == 14
    assert sum(1 for c in chunks if "usage" in c) == 1
    assert fake.requests[-1]["json"]["stream"] is True


# 3. tools ---------------------------------------------------------------------------------------

def _tool_round_trip_body(call: dict) -> dict:
    return {"model": "llama3.2", "tools": TOOLS, "messages": [
        {"role": "user", "content": "weather in Oslo"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}]}


def test_tool_round_trip(fake):
    target = target_for(fake)
    first = chat(target, {**user("weather in Oslo"), "tools": TOOLS})
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "search"
    assert orjson.loads(call["function"]["arguments"]) == {"query": "weather in Oslo"}
    assert fake.requests[-1]["json"]["tools"] == TOOLS

    second = chat(target, _tool_round_trip_body(call))
    assert second["choices"][0]["message"]["content"] == "Tool said: sunny, 21C"
    assert second["choices"][0]["finish_reason"] == "stop"
    sent = fake.requests[-1]["json"]["messages"]
    assert sent[1] == {"role": "assistant", "content": "",
                       "tool_calls": [{"function": {"name": "search", "arguments": {"query": "weather in Oslo"}}}]}
    assert sent[2] == {"role": "tool", "content": "sunny, 21C", "tool_name": "search"}


def test_tool_round_trip_streaming(fake):
    target = target_for(fake)
    chunks = stream(target, {**user("weather in Oslo"), "tools": TOOLS})
    deltas = [d for c in chunks if c["choices"] for d in c["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas[0]["index"] == 0 and deltas[0]["type"] == "function" and deltas[0]["id"].startswith("call_")
    assert deltas[0]["function"] == {"name": "search", "arguments": ""}
    arguments = "".join(d["function"]["arguments"] for d in deltas)
    assert orjson.loads(arguments) == {"query": "weather in Oslo"}
    assert finishes(chunks) == ["tool_calls"]
    assert chunks[-1]["usage"]["completion_tokens"] == 12

    call = {"id": deltas[0]["id"], "type": "function", "function": {"name": "search", "arguments": arguments}}
    answer = stream(target, _tool_round_trip_body(call))
    assert streamed_text(answer) == "Tool said: sunny, 21C"
    assert finishes(answer) == ["stop"]


def test_tool_choice_none_offers_no_tools(fake):
    result = chat(target_for(fake), {**user("just talk"), "tools": TOOLS, "tool_choice": "none"})
    assert result["choices"][0]["message"]["content"] == "[ollama] You said: just talk"
    assert "tools" not in fake.requests[-1]["json"]


# 4. vision --------------------------------------------------------------------------------------

def test_vision_data_url_becomes_base64_image(fake):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}]}
    result = chat(target_for(fake), body)
    assert result["choices"][0]["message"]["content"] == "[ollama] You said: what is this (saw 1 image)"
    assert result["usage"]["prompt_tokens"] == 3 + 1 + 85
    message = fake.requests[-1]["json"]["messages"][0]
    # Ollama's image form: bare base64 (no data: prefix, no media type field) next to the text
    assert message == {"role": "user", "content": "what is this", "images": [PNG_DATA_URL.split(",", 1)[1]]}


def test_https_image_url_is_refused_before_sending(fake):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}
    count = len(fake.requests)
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), body)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.code == "unsupported_image_url"
    assert "data: URL" in caught.value.message
    assert len(fake.requests) == count


# 5. JSON mode -----------------------------------------------------------------------------------

def test_json_mode(fake):
    result = chat(target_for(fake), {**user("give me json"), "response_format": {"type": "json_object"}})
    assert orjson.loads(result["choices"][0]["message"]["content"]) == {"echo": "give me json", "provider": "ollama"}
    assert fake.requests[-1]["json"]["format"] == "json"


def test_json_schema_is_sent_as_format(fake):
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}
    body = {**user("schema please"), "response_format": {"type": "json_schema",
                                                         "json_schema": {"name": "echo", "schema": schema}}}
    chunks = stream(target_for(fake), body)
    assert orjson.loads(streamed_text(chunks))["echo"] == "schema please"
    assert fake.requests[-1]["json"]["format"] == schema


# 6. length --------------------------------------------------------------------------------------

def test_max_tokens_reaching_the_limit(fake):
    result = chat(target_for(fake), {**user("a long question indeed"), "max_tokens": 3})
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["choices"][0]["message"]["content"] == "[ollama] You said:"
    assert fake.requests[-1]["json"]["options"]["num_predict"] == 3

    chunks = stream(target_for(fake), {**user("a long question indeed"), "max_completion_tokens": 2})
    assert finishes(chunks) == ["length"]
    assert streamed_text(chunks) == "[ollama] You"


# 7. errors --------------------------------------------------------------------------------------

def test_provider_400_passes_through_with_its_message(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake), user("!status 400"))
    assert caught.value.status == 400
    assert caught.value.message == "fake ollama error 400"


def test_fake_rejects_what_ollama_rejects(fake):
    """The fake is strict: a string `arguments` (OpenAI's form) is a 400 in real Ollama."""
    raw = {"model": "llama3.2", "stream": False, "messages": [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]}
    request = ADAPTER.chat_request(user("x"), target_for(fake), stream=False)
    request.body = orjson.dumps(raw)
    with pytest.raises(UpstreamError) as caught:
        run(lambda upstream: upstream.fetch(ADAPTER, request))
    assert caught.value.status == 400
    assert "cannot unmarshal string" in caught.value.message


def test_unknown_model_is_404(fake):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(fake, model="mistral"), user("hi"))
    assert caught.value.status == 404
    assert caught.value.code == "model_not_found"
    assert caught.value.message == "model 'mistral' not found"


def test_wrong_key_on_proxied_ollama(proxied):
    with pytest.raises(UpstreamError) as caught:
        chat(target_for(proxied, api_key="wrong-secret-123"), user("hi"))
    assert caught.value.status == 502
    assert caught.value.code == "upstream_auth_error"
    assert caught.value.retryable
    assert "wrong-secret-123" not in caught.value.message
    assert "unauthorized" in caught.value.message


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


def test_error_line_mid_stream(fake):
    chunks: list[dict] = []
    with pytest.raises(UpstreamError) as caught:
        stream(target_for(fake), user("!error-after 2 please"), into=chunks)
    assert caught.value.status == 502
    assert "error was encountered while running the model" in caught.value.message
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:]] == ["[ollama]", " You"]


def test_stream_dying_is_not_a_silent_truncation(fake):
    chunks: list[dict] = []
    with pytest.raises(UpstreamError) as caught:
        stream(target_for(fake), user("!die-after 2 please"), into=chunks)
    assert caught.value.status == 502
    assert caught.value.retryable
    assert not finishes(chunks)


def test_translator_raises_when_the_done_line_never_comes():
    translator = OllamaStream(ChunkFactory("llama3.2"))
    out = translator.feed(b'{"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}\n'
                          b'{"model":"llama3.2","message":{"role":"assistant","content":" th')
    assert [c["choices"][0]["delta"] for c in out] == [{"role": "assistant", "content": ""}, {"content": "Hi"}]
    with pytest.raises(UpstreamError) as caught:
        translator.close()
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (502, "upstream_stream_truncated", True)


def test_filter_directive_has_no_ollama_equivalent(fake):
    """Ollama runs local models without a content filter and has no done_reason for one: the answer is normal."""
    result = chat(target_for(fake), user("!filter this"))
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["choices"][0]["message"]["content"] == "[ollama] You said: !filter this"


# 8. property ------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(body=openai_requests())
def test_translation_keeps_the_conversation(body):
    target = Target("ollama-local", "ollama", "http://127.0.0.1:11434", None, "llama3.2")
    sent = orjson.loads(ADAPTER.chat_request(body, target, stream=False).body)
    assert canonical(normalize(sent)) == canonical(expected_conversation(body))


# 9. embeddings ----------------------------------------------------------------------------------

def test_embeddings_for_a_string_and_a_list(fake):
    target = target_for(fake, model="nomic-embed-text")
    one = run(lambda upstream: upstream.embeddings(ADAPTER, target, {"model": "x", "input": "hello world"}))
    assert one["object"] == "list" and one["model"] == "nomic-embed-text"
    assert [d["index"] for d in one["data"]] == [0]
    assert len(one["data"][0]["embedding"]) == 8
    assert one["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert fake.requests[-1]["path"] == "/api/embed"
    assert fake.requests[-1]["json"] == {"model": "nomic-embed-text", "input": "hello world"}

    many = run(lambda upstream: upstream.embeddings(ADAPTER, target, {"model": "x", "input": ["a b", "hello world"]}))
    assert [d["object"] for d in many["data"]] == ["embedding", "embedding"]
    assert [d["index"] for d in many["data"]] == [0, 1]
    assert many["data"][1]["embedding"] == one["data"][0]["embedding"]  # order kept
    assert many["usage"]["prompt_tokens"] == 4


def test_embeddings_as_base64(fake):
    target = target_for(fake, model="nomic-embed-text")
    floats = run(lambda upstream: upstream.embeddings(ADAPTER, target, {"model": "x", "input": "pack me"}))
    packed = run(lambda upstream: upstream.embeddings(ADAPTER, target, {"model": "x", "input": "pack me",
                                                                         "encoding_format": "base64"}))
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)


def test_token_inputs_are_refused():
    target = Target("ollama-local", "ollama", "http://127.0.0.1:11434", None, "nomic-embed-text")
    with pytest.raises(UpstreamError) as caught:
        ADAPTER.embeddings_request({"model": "x", "input": [[1, 2, 3]]}, target)
    assert caught.value.status == 400
    assert caught.value.code == "unsupported_input"
