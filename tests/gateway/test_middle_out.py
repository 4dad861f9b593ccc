"""OpenRouter's `middle-out` transform on its own (`apps/gateway/middle_out.py`) and through a real gateway."""

from __future__ import annotations

import httpx
import pytest

from apps.gateway import middle_out
from apps.gateway.prompt_tokens import estimate_prompt_tokens
from tests.gateway.routing_factories import OPENAI, cand

WORDS = " ".join(f"word{i}" for i in range(200))


def conversation(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "task: " + WORDS}]
    for i in range(turns):
        messages.append({"role": "assistant", "content": f"answer {i} " + WORDS})
        messages.append({"role": "user", "content": f"question {i} " + WORDS})
    return messages


def test_fitting_prompts_are_untouched():
    body = {"messages": conversation(3)}
    assert middle_out.fit(body, [cand(OPENAI, "gpt-4o")], 100) is body


def test_the_middle_goes_first_and_the_ends_stay():
    candidate = cand(OPENAI, "gpt-4o", context=3_000)
    body = {"model": "gpt-4o", "messages": conversation(10)}
    assert estimate_prompt_tokens(body, candidate.model) > 3_000
    fitted = middle_out.fit(body, [candidate], 500)
    kept = fitted["messages"]
    assert estimate_prompt_tokens(fitted, candidate.model) <= 2_500
    assert kept[:2] == body["messages"][:2] and kept[-1] == body["messages"][-1]
    # what was dropped is one contiguous run around the middle
    positions = [body["messages"].index(m) for m in kept]
    gaps = [b - a for a, b in zip(positions, positions[1:], strict=False) if b - a > 1]
    assert len(gaps) == 1
    assert body["messages"][11] not in kept  # the centre of the conversation


def test_tool_calls_leave_with_their_results():
    candidate = cand(OPENAI, "gpt-4o", context=600)
    messages = conversation(1)
    messages[2:2] = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": WORDS}]
    fitted = middle_out.fit({"messages": messages}, [candidate], 0)["messages"]
    has_call = any(m.get("tool_calls") for m in fitted)
    has_result = any(m["role"] == "tool" for m in fitted)
    assert has_call == has_result


@pytest.mark.django_db
def test_middle_out_through_the_gateway(gw):
    from apps.providers.models import ModelEntry
    from tests.conftest import committed

    committed(lambda: ModelEntry.objects.create(
        model_id="tiny-window", provider_type="openai", provider=gw.tenants["a"].providers.get(slug="a-openai"),
        upstream_name="gpt-4o", context_window=3_000, max_output_tokens=500, input_price=0, output_price=0,
        supports_streaming=True))
    body = {"model": "tiny-window", "messages": conversation(10), "max_tokens": 500, "transforms": ["middle-out"]}
    headers = {"Authorization": f"Bearer {gw.keys['a']}"}
    without = httpx.post(f"{gw.server.url}/v1/chat/completions", timeout=30, headers=headers,
                         json={k: v for k, v in body.items() if k != "transforms"})
    assert without.status_code == 400, without.text
    assert without.json()["error"]["code"] == "no_candidate_meets_constraints"
    response = httpx.post(f"{gw.server.url}/v1/chat/completions", json=body, timeout=30, headers=headers)
    assert response.status_code == 200, response.text
    received = gw.fakes["openai"].requests[-1]["json"]["messages"]
    assert 3 <= len(received) < len(body["messages"])
    assert received[:2] == body["messages"][:2] and received[-1] == body["messages"][-1]
