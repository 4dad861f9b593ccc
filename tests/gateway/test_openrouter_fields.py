"""OpenRouter's request fields as OpenRouter's documentation writes them (the openai SDK with `extra_body`, and
raw httpx), against a real gateway and fake OpenAI, Anthropic, Gemini and Ollama upstreams: `models` without
`model`, `usage` (with `cost`, equal to the ledger's), `reasoning`, `response_format: json_schema`, `transforms`
and `plugins`."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import jsonschema
import pytest

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "days", "sunny", "tags"],
          "properties": {"city": {"type": "string", "description": "The city"},
                         "days": {"type": "integer"}, "sunny": {"type": "boolean"},
                         "tags": {"type": "array", "items": {"type": "string", "enum": ["warm", "cold"]}},
                         "note": {"type": ["string", "null"]}}}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "weather", "strict": True, "schema": SCHEMA}}
MODELS = {"openai": "openai/gpt-4o", "anthropic": "claude-3-haiku", "gemini": "gemini-1.5-flash",
          "ollama": "llama3.2"}


def post(gw, body: dict, key: str = "a") -> httpx.Response:
    return httpx.post(f"{gw.server.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {gw.keys[key]}"})


def ledger(request_id: str):
    from apps.billing.ingest import ingest_once
    from apps.billing.models import UsageRecord

    while ingest_once():
        pass
    return UsageRecord.objects.get(request_id=request_id)


def sent(gw, provider: str) -> dict:
    return gw.fakes[provider].requests[-1]["json"]


# ---- models without model; usage with cost ------------------------------------------------------------------
def test_models_without_model_asks_for_the_first(gw):
    response = post(gw, {"models": ["gemini-1.5-flash", "openai/gpt-4o"],
                         "messages": [{"role": "user", "content": "first of models"}]})
    assert response.status_code == 200, response.text
    assert response.headers["x-cb-provider"] == "a-gemini"
    assert response.json()["choices"][0]["message"]["content"] == "[gemini] You said: first of models"


def test_models_and_model_both_missing_is_a_400(gw):
    response = post(gw, {"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_usage_cost_in_json_answers_equals_the_ledger(gw, provider):
    raw = gw.client().chat.completions.with_raw_response.create(
        model=MODELS[provider], messages=[{"role": "user", "content": "what does this cost"}],
        extra_body={"usage": {"include": True}})
    completion = raw.parse()
    cost = completion.usage.model_extra["cost"]
    assert isinstance(cost, float) and cost > 0
    record = ledger(raw.headers["x-cb-request-id"])
    assert record.cost == Decimal(str(cost))
    assert record.prompt_tokens == completion.usage.prompt_tokens
    assert "usage" not in sent(gw, provider)  # OpenRouter's field stays with us


def test_usage_cost_without_asking(gw):
    body = post(gw, {"model": "claude-3-haiku", "messages": [{"role": "user", "content": "unasked"}]}).json()
    # claude-3-haiku: $0.25 / $1.25 per million tokens; the brain counts 2 prompt and 4 completion tokens
    assert body["usage"]["cost"] == float(Decimal("0.00000025") * 2 + Decimal("0.00000125") * 4)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_stream_usage_include_gives_the_final_usage_chunk_with_cost(gw, provider):
    with gw.client().chat.completions.with_streaming_response.create(
            model=MODELS[provider], messages=[{"role": "user", "content": "stream the cost"}], stream=True,
            extra_body={"usage": {"include": True}}) as raw:
        request_id = raw.headers["x-cb-request-id"]
        chunks = list(raw.parse())
    final = chunks[-1]
    assert final.choices == [] and final.usage.completion_tokens > 0
    assert ledger(request_id).cost == Decimal(str(final.usage.model_extra["cost"]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).endswith("stream the cost")


# ---- reasoning ------------------------------------------------------------------------------------------------
def test_reasoning_on_an_openai_reasoning_model_becomes_reasoning_effort(gw):
    completion = gw.client().chat.completions.create(
        model="openai/o4-mini", messages=[{"role": "user", "content": "think hard"}],
        extra_body={"reasoning": {"effort": "high"}})
    upstream = sent(gw, "openai")
    assert upstream["reasoning_effort"] == "high" and "reasoning" not in upstream
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4


def test_reasoning_on_a_non_reasoning_openai_model_is_dropped(gw):
    completion = gw.client().chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "no thinking here"}],
        extra_body={"reasoning": {"max_tokens": 2000}})
    assert completion.choices[0].message.content == "[openai] You said: no thinking here"
    upstream = sent(gw, "openai")
    assert "reasoning_effort" not in upstream and "reasoning" not in upstream


def test_reasoning_on_anthropic_is_extended_thinking_returned_as_reasoning(gw):
    completion = gw.client().chat.completions.create(
        model="claude-3-haiku", messages=[{"role": "user", "content": "ponder this"}], max_tokens=3000,
        temperature=0.3, extra_body={"reasoning": {"effort": "medium"}})
    upstream = sent(gw, "anthropic")
    assert upstream["thinking"] == {"type": "enabled", "budget_tokens": 1500}  # half of max_tokens
    assert "temperature" not in upstream  # thinking refuses it
    message = completion.choices[0].message
    assert message.content == "[anthropic] You said: ponder this"
    assert message.model_extra["reasoning"] == "Thinking about: ponder this"


def test_reasoning_budget_above_max_tokens_raises_anthropic_max_tokens(gw):
    response = post(gw, {"model": "claude-3-haiku", "max_tokens": 100, "reasoning": {"max_tokens": 2048},
                         "messages": [{"role": "user", "content": "small cap"}]})
    assert response.status_code == 200, response.text
    upstream = sent(gw, "anthropic")
    assert upstream["thinking"]["budget_tokens"] == 2048 and upstream["max_tokens"] == 2148


def test_reasoning_exclude_hides_the_text_json_and_stream(gw):
    body = {"model": "claude-3-haiku", "messages": [{"role": "user", "content": "keep it to yourself"}],
            "reasoning": {"effort": "low", "exclude": True}}
    answer = post(gw, body).json()
    assert "reasoning" not in answer["choices"][0]["message"]
    assert sent(gw, "anthropic")["thinking"]["type"] == "enabled"  # the model still thinks
    chunks = list(gw.client().chat.completions.create(stream=True, model=body["model"], messages=body["messages"],
                                                      extra_body={"reasoning": body["reasoning"]}))
    assert not any(c.choices and c.choices[0].delta.model_extra.get("reasoning") for c in chunks)


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_reasoning_streams_as_delta_reasoning(gw, provider):
    chunks = list(gw.client().chat.completions.create(
        model=MODELS[provider], messages=[{"role": "user", "content": "think aloud"}], stream=True,
        extra_body={"reasoning": {"enabled": True}}))
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning") or "" for c in chunks if c.choices)
    assert reasoning == "Thinking about: think aloud"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"[{provider}] You said: think aloud"


def test_reasoning_on_gemini_is_a_thinking_config(gw):
    completion = gw.client().chat.completions.create(
        model="gemini-1.5-flash", messages=[{"role": "user", "content": "gemini thinks"}],
        extra_body={"reasoning": {"effort": "low"}})
    config = sent(gw, "gemini")["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    assert completion.choices[0].message.model_extra["reasoning"] == "Thinking about: gemini thinks"
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    post(gw, {"model": "gemini-1.5-flash", "messages": [{"role": "user", "content": "no"}],
              "reasoning": {"enabled": False}})
    assert sent(gw, "gemini")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_reasoning_on_ollama_is_dropped(gw):
    response = post(gw, {"model": "llama3.2", "messages": [{"role": "user", "content": "local"}],
                         "reasoning": {"effort": "high"}})
    assert response.status_code == 200, response.text
    assert not {"reasoning", "think", "reasoning_effort"} & set(sent(gw, "ollama"))


@pytest.mark.parametrize(("body", "param"), [
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"reasoning": {"max_tokens": -1}}, "reasoning.max_tokens"),
    ({"reasoning": {"effort": "low", "max_tokens": 10}}, "reasoning"),
    ({"reasoning": {"budget": 10}}, "reasoning.budget"),
    ({"usage": {"include": "yes"}}, "usage.include"),
    ({"transforms": ["squash"]}, "transforms[0]"),
    ({"plugins": [{"name": "web"}]}, "plugins"),
])
def test_bad_openrouter_fields_are_400s_naming_them(gw, body, param):
    response = post(gw, {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


# ---- structured output ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "ollama"])
def test_json_schema_answers_match_the_schema(gw, provider):
    completion = gw.client().chat.completions.create(
        model=MODELS[provider], messages=[{"role": "user", "content": "weather in Oslo"}],
        response_format=RESPONSE_FORMAT)
    answer = json.loads(completion.choices[0].message.content)
    jsonschema.validate(answer, SCHEMA)
    assert answer["city"] == "weather in Oslo" and completion.choices[0].finish_reason == "stop"
    upstream = sent(gw, provider)
    if provider == "openai":
        assert upstream["response_format"] == RESPONSE_FORMAT
    elif provider == "anthropic":
        assert upstream["tool_choice"] == {"type": "tool", "name": "json_response"}
        assert upstream["tools"][0]["input_schema"] == SCHEMA
    elif provider == "gemini":
        config = upstream["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseSchema"]["properties"]["note"] == {"type": "string", "nullable": True}
        assert "additionalProperties" not in config["responseSchema"]
    else:
        assert upstream["format"] == SCHEMA


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_json_schema_streams_as_content(gw, provider):
    chunks = list(gw.client().chat.completions.create(
        model=MODELS[provider], messages=[{"role": "user", "content": "stream json"}], stream=True,
        response_format=RESPONSE_FORMAT))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), SCHEMA)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_json_schema_with_thinking_on_anthropic_uses_an_unforced_tool(gw):
    response = post(gw, {"model": "claude-3-haiku", "messages": [{"role": "user", "content": "both"}],
                         "response_format": RESPONSE_FORMAT, "reasoning": {"effort": "low"}})
    assert response.status_code == 200, response.text
    assert sent(gw, "anthropic")["tool_choice"] == {"type": "auto"}


def test_gemini_refuses_schema_keywords_it_cannot_enforce(gw):
    schema = {"type": "object", "properties": {"a": {"type": "string", "not": {"const": "x"}},
                                               "b": {"type": "object", "patternProperties": {"^x": {}}}}}
    response = post(gw, {"model": "gemini-1.5-flash", "messages": [{"role": "user", "content": "x"}],
                         "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_schema_keyword"
    assert "$.properties.a.not" in error["message"] and "$.properties.b.patternProperties" in error["message"]


def test_gemini_schema_refs_are_inlined(gw):
    schema = {"$defs": {"place": {"type": "object", "properties": {"name": {"type": "string"}}}},
              "type": "object", "properties": {"where": {"$ref": "#/$defs/place"}, "kind": {"const": "trip"}}}
    completion = gw.client().chat.completions.create(
        model="gemini-1.5-flash", messages=[{"role": "user", "content": "refs"}],
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}})
    assert json.loads(completion.choices[0].message.content) == {"where": {"name": "refs"}, "kind": "trip"}


# ---- transforms and plugins ----------------------------------------------------------------------------------
def test_transforms_and_plugins_are_accepted_and_not_sent(gw):
    completion = gw.client().chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "with plugins"}],
        extra_body={"transforms": ["middle-out"], "plugins": [{"id": "web", "max_results": 3}]})
    assert completion.choices[0].message.content == "[openai] You said: with plugins"
    assert not {"transforms", "plugins"} & set(sent(gw, "openai"))
