"""OpenAI's Responses API (`/v1/responses`) through the official SDK against a real gateway process, routed to
providers of two different wire protocols (OpenAI's chat API and Anthropic's Messages API) through the fakes."""

from __future__ import annotations

import importlib
import json
import time

import httpx
import openai
import pydantic
import pytest

from tests.conftest import ServerProcess
from tests.gateway.conftest import AVAILABLE
from tests.gateway.test_defects_routing import recorded
from tests.strategies import PNG_DATA_URL

pytestmark = pytest.mark.django_db

TWO_PROTOCOLS = [p for p in AVAILABLE if p.name in ("openai", "anthropic")]
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}
ECHO_SCHEMA = {"type": "json_schema", "name": "echo", "strict": True,
               "schema": {"type": "object", "properties": {"echo": {"type": "string"}, "provider": {"type": "string"}},
                          "required": ["echo", "provider"], "additionalProperties": False}}


@pytest.fixture(params=TWO_PROTOCOLS, ids=[p.name for p in TWO_PROTOCOLS])
def protocol(request):
    return request.param


def post(gw, body: dict) -> httpx.Response:
    return httpx.post(f"{gw.server.url}/v1/responses", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {gw.keys['a']}"})


def conversation(gw, protocol):
    """What the fake provider last received, read back into the shared test brain's terms."""
    received = gw.fakes[protocol.name].requests[-1]["json"]
    return importlib.import_module(f"tests.fakes.{protocol.name}").normalize(received)


def test_plain_response_and_its_ledger_row(gw, protocol):
    raw = gw.client().responses.with_raw_response.create(model=protocol.model, input="hello gateway",
                                                         instructions="Be brief.", metadata={"ticket": "t-1"})
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.error is None and response.incomplete_details is None
    assert response.output_text == f"[{protocol.tag}] You said: hello gateway"
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.content[0].type == "output_text"
    assert response.usage.input_tokens == 2 + 3 and response.usage.output_tokens == 5
    assert response.usage.total_tokens == 10 and response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.instructions == "Be brief." and response.metadata == {"ticket": "t-1"}
    assert response.tools == [] and response.tool_choice == "auto" and response.store is True
    assert raw.headers["x-cb-provider"] == f"a-{protocol.name}"
    assert conversation(gw, protocol).system == "Be brief."
    record = recorded(raw.headers["x-cb-request-id"])
    assert record.endpoint == "responses" and record.status == 200 and record.provider == f"a-{protocol.name}"
    assert (record.prompt_tokens, record.completion_tokens) == (5, 5) and record.tenant_id == gw.tenants["a"].id
    assert gw.keys["a"] not in json.dumps(gw.fakes[protocol.name].requests[-1]["headers"])


def test_streamed_events_in_order(gw, protocol):
    raw = gw.client().responses.with_raw_response.create(model=protocol.model, input="stream me please", stream=True)
    events = list(raw.parse())
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == f"[{protocol.tag}] You said: stream me please"
    assert len([e for e in events if e.type == "response.output_text.delta"]) > 1
    done = events[-1].response
    assert done.status == "completed" and done.output_text == text and done.usage.output_tokens == 6
    assert {e.response.id for e in events if hasattr(e, "response")} == {done.id}
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    record = recorded(raw.headers["x-cb-request-id"])
    assert record.endpoint == "responses" and record.streamed and record.completion_tokens == 6
    assert not record.usage_estimated


def test_stream_helper_and_retrieve(gw, protocol):
    client = gw.client()
    with client.responses.stream(model=protocol.model, input="helper stream") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == f"[{protocol.tag}] You said: helper stream"
    again = client.responses.retrieve(final.id)
    assert again.id == final.id and again.output_text == final.output_text and again.status == "completed"
    assert again.usage.input_tokens == final.usage.input_tokens > 0


def test_function_tool_round_trip_with_previous_response_id(gw, protocol):
    client = gw.client()
    first = client.responses.create(model=protocol.model, input="Paris", tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments) == {"query": "Paris"} and first.output_text == ""
    assert first.tools[0].name == "get_weather"
    second = client.responses.create(
        model=protocol.model, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.output_text == "Tool said: sunny, 21C" and second.previous_response_id == first.id
    turns = conversation(gw, protocol).turns
    assert [t.role for t in turns] == ["user", "assistant", "tool"]
    assert turns[1].tool_calls[0].name == "get_weather" and turns[2].text == "sunny, 21C"


def test_function_call_items_in_the_input_without_storing(gw, protocol):
    """The stateless form: the client sends the whole conversation back (store false)."""
    client = gw.client()
    first = client.responses.create(model=protocol.model, input="Oslo", tools=[WEATHER], store=False)
    call = first.output[0]
    second = client.responses.create(model=protocol.model, tools=[WEATHER], store=False, input=[
        {"role": "user", "content": "Oslo"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": [{"type": "input_text", "text": "rain"}]},
    ])
    assert second.output_text == "Tool said: rain"


def test_streamed_function_call(gw, protocol):
    events = list(gw.client().responses.create(model=protocol.model, input="Rome", tools=[WEATHER], stream=True))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.name == "get_weather"
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(arguments) == json.loads(done.arguments) == {"query": "Rome"}
    (call,) = events[-1].response.output
    assert call.type == "function_call" and call.call_id == added.item.call_id and call.arguments == done.arguments


def test_previous_response_id_prepends_the_earlier_input_and_output(gw, protocol):
    client = gw.client()
    first = client.responses.create(model=protocol.model, input="my name is Ann", instructions="Be kind.")
    second = client.responses.create(model=protocol.model, input="what did I say", previous_response_id=first.id)
    third = client.responses.create(model=protocol.model, input="and now", previous_response_id=second.id)
    assert third.output_text == f"[{protocol.tag}] You said: and now"
    conv = conversation(gw, protocol)
    assert [(t.role, t.text) for t in conv.turns] == [
        ("user", "my name is Ann"), ("assistant", first.output_text), ("user", "what did I say"),
        ("assistant", second.output_text), ("user", "and now")]
    assert conv.system == ""  # instructions of an earlier response are not carried over (as OpenAI does)


def test_store_false_cannot_be_retrieved_or_continued(gw, protocol):
    client = gw.client()
    response = client.responses.create(model=protocol.model, input="forget me", store=False)
    assert response.store is False and response.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model=protocol.model, input="again", previous_response_id=response.id)
    assert info.value.body["code"] == "previous_response_not_found"
    assert info.value.body["param"] == "previous_response_id"


def test_input_image(gw, protocol):
    response = gw.client().responses.create(model=protocol.vision_model or protocol.model, input=[
        {"role": "user", "content": [{"type": "input_text", "text": "what is this"},
                                     {"type": "input_image", "image_url": PNG_DATA_URL, "detail": "auto"}]}])
    assert response.output_text.endswith("(saw 1 image)")


def test_json_schema_text_format(gw, protocol):
    response = gw.client().responses.create(model=protocol.model, input="as json", text={"format": ECHO_SCHEMA})
    assert json.loads(response.output_text) == {"echo": "as json", "provider": protocol.tag}
    assert response.text.format.type == "json_schema" and response.text.format.name == "echo"
    received = gw.fakes[protocol.name].requests[-1]["json"]
    if protocol.name == "openai":
        assert received["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "echo", "schema": ECHO_SCHEMA["schema"], "strict": True}}
    else:  # Anthropic has no JSON mode: the adapter forces a tool whose input schema is the format's
        assert received["tool_choice"] == {"type": "tool", "name": "json_response"}
        assert received["tools"][0]["input_schema"] == ECHO_SCHEMA["schema"]


class Echo(pydantic.BaseModel):
    echo: str
    provider: str


def test_sdk_parse_with_a_pydantic_text_format(gw, protocol):
    parsed = gw.client().responses.parse(model=protocol.model, input="parse me", text_format=Echo)
    assert parsed.output_parsed == Echo(echo="parse me", provider=protocol.tag)


def test_max_output_tokens_makes_the_response_incomplete(gw, protocol):
    response = gw.client().responses.create(model=protocol.model, input="a long answer please", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 2 and len(response.output_text.split()) == 2


def test_mid_stream_upstream_error_fails_the_response(gw, protocol):
    events = list(gw.client().responses.create(model=protocol.model, input="one two three four !error-after 2",
                                               stream=True))
    kinds = [e.type for e in events]
    assert "response.output_text.delta" in kinds and kinds[-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed" and events[-1].response.error.message
    with pytest.raises(openai.NotFoundError):  # a failed response is not stored
        gw.client().responses.retrieve(events[-1].response.id)


def test_client_leaving_mid_stream_stops_the_upstream_and_bills_what_was_sent(gw, protocol):
    fake = gw.fakes[protocol.name]
    before = fake.cancelled_streams
    raw = gw.client().responses.with_raw_response.create(
        model=protocol.model, input=" ".join(["word"] * 40) + " !slow 0.1", stream=True)
    stream = raw.parse()
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    stream.close()
    deadline = time.monotonic() + 5
    while fake.cancelled_streams == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.cancelled_streams == before + 1 and fake.active_streams == 0
    record = recorded(raw.headers["x-cb-request-id"])
    assert record.status == 499 and record.streamed and record.usage_estimated and record.completion_tokens > 0


def test_another_tenant_can_neither_retrieve_nor_continue_nor_delete(gw):
    mine = gw.client("a").responses.create(model="openai/gpt-4o", input="private")
    other = gw.client("b")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError) as info:
        other.responses.create(model="openai/gpt-4o", input="leak it", previous_response_id=mine.id)
    assert info.value.body["code"] == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    assert gw.client("a").responses.retrieve(mine.id).output_text == mine.output_text


def test_delete(gw):
    client = gw.client()
    response = client.responses.create(model="claude-3-haiku", input="short lived")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)


def test_errors_in_openai_shape(gw):
    client = gw.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="openai/gpt-4o", input="search", tools=[
            WEATHER, {"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}])
    body = info.value.body
    assert body["code"] == "unsupported_tool_type" and body["param"] == "tools[1].type"
    assert "'web_search_preview' (tools[1])" in body["message"] and "'file_search' (tools[2])" in body["message"]
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="openai/gpt-4o", input="hi", previous_response_id="resp_doesnotexist")
    assert info.value.body["code"] == "previous_response_not_found"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gw.server.url}/v1", api_key="cb-not-a-key", max_retries=0).responses.create(
            model="openai/gpt-4o", input="hi")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("not-a-response-id")
    bad = [({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
           ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0].file_id"),
           ({"input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
           ({"input": "hi", "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
           ({"input": "hi", "background": True}, "background"),
           ({"input": "hi", "frobnicate": 1}, "frobnicate"),
           ({"input": "hi", "temperature": 3}, "temperature"),
           ({}, "input")]
    for extra, param in bad:
        answer = post(gw, {"model": "openai/gpt-4o", **extra})
        assert answer.status_code == 400, (extra, answer.text)
        error = answer.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"], error


def test_routing_and_failover_apply(gw):
    """The chat pipeline's routing: a fallback model of another protocol answers when the first one fails."""
    gw.fakes["openai"].forced = "!status 500"
    try:
        raw = gw.client().responses.with_raw_response.create(
            model="openai/gpt-4o", input="fail over", extra_body={"circuit_breaker": {
                "routing_strategy": "failover_chain", "fallback_models": ["claude-3-haiku"]}})
    finally:
        gw.fakes["openai"].forced = ""
    assert raw.parse().output_text == "[anthropic] You said: fail over"
    assert raw.headers["x-cb-provider"] == "a-anthropic" and "attempts=2" in raw.headers["x-cb-route"]


def test_deep_nesting_anywhere_is_refused(gw):
    deep: dict = {}
    for _ in range(300):
        deep = {"x": deep}
    answer = post(gw, {"model": "openai/gpt-4o", "input": [{"role": "user", "content": "hi", "extra": deep}]})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "too_deeply_nested"


def test_reasoning_effort_is_passed_on(gw):
    # a reasoning model: OpenAI refuses reasoning_effort for others (so does the fake)
    gw.client().responses.create(model="openai/o4-mini", input="think", reasoning={"effort": "low"},
                                 parallel_tool_calls=False, tools=[WEATHER], tool_choice={"type": "function",
                                                                                           "name": "get_weather"})
    received = gw.fakes["openai"].requests[-1]["json"]
    assert received["reasoning_effort"] == "low" and received["parallel_tool_calls"] is False
    assert received["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "store" not in received and "reasoning" not in received and "input" not in received


def test_stored_responses_are_shared_by_processes(gw):
    """Another web process (a second worker, or the same server after a restart) sees the stored response."""
    first = gw.client().responses.create(model="openai/gpt-4o", input="remember me")
    other = ServerProcess(env={"REQUEST_TIMEOUT_SECONDS": "2"}).start()
    try:
        client = openai.OpenAI(base_url=f"{other.url}/v1", api_key=gw.keys["a"], max_retries=0, timeout=30)
        assert client.responses.retrieve(first.id).output_text == first.output_text
        follow = client.responses.create(model="openai/gpt-4o", input="next", previous_response_id=first.id)
        assert follow.output_text == "[openai] You said: next"
    finally:
        other.stop()
