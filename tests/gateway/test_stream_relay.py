"""The /v1/chat/completions stream relay, read as raw server-sent events: chunks from an upstream that speaks
OpenAI's format go out as the upstream wrote them, with our `provider` field written in and the upstream's
`"usage": null` dropped unless the client asked for usage; everything else is decoded as before."""

from __future__ import annotations

import httpx
import orjson
import pytest

pytestmark = pytest.mark.django_db


def events(gw, body: dict) -> list[bytes]:
    with httpx.stream("POST", f"{gw.server.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {gw.keys['a']}"}) as response:
        assert response.status_code == 200, response.read()
        raw = response.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    return [line[len(b"data: "):] for line in raw.split(b"\n\n") if line.startswith(b"data: ")][:-1]


@pytest.mark.parametrize("name", ["openai", "azure"])
def test_relayed_chunks_carry_the_provider_and_no_usage_unless_asked(gw, name):
    model = {"openai": "openai/gpt-4o", "azure": "azure/gpt-4o-mini"}[name]
    body = {"model": model, "messages": [{"role": "user", "content": "relay these words please"}], "stream": True}
    raw = events(gw, body)
    upstream = gw.fakes[name].requests[-1]["json"]
    assert upstream["stream_options"] == {"include_usage": True}  # we always ask, so the upstream says null
    chunks = [orjson.loads(item) for item in raw]
    assert all(chunk["provider"] == f"A {name}" for chunk in chunks)
    assert not any("usage" in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
    assert text == f"[{name}] You said: relay these words please"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == ["stop"]
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert all(item.count(b'"provider"') == 1 for item in raw)  # one field, not a duplicated key


def test_with_usage_asked_the_nulls_stay_and_the_last_chunk_has_usage_with_cost(gw):
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "count me"}], "stream": True,
            "stream_options": {"include_usage": True}}
    chunks = [orjson.loads(item) for item in events(gw, body)]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])  # as the upstream (and OpenAI) sends them
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert chunks[-1]["usage"]["cost"] > 0 and chunks[-1]["provider"] == "A openai"


def test_a_stream_without_upstream_usage_is_billed_from_the_relayed_text(gw):
    """An upstream that ignores include_usage: the relayed chunks (kept undecoded) are counted at the end."""
    body = {"model": "openai/gpt-4o", "stream": True,
            "messages": [{"role": "user", "content": "one two three four five six seven !no-usage"}]}
    with httpx.stream("POST", f"{gw.server.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {gw.keys['a']}"}) as response:
        raw = response.read()
        request_id = response.headers["x-cb-request-id"]
    text = "".join(orjson.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in raw.split(b"\n\n") if line.startswith(b"data: {"))
    assert text == "[openai] You said: one two three four five six seven !no-usage"
    record = ledger_row(request_id)
    assert record.usage_estimated and record.status == 200
    assert record.completion_tokens >= len(text.split())  # counted from the decoded relayed chunks


def raw_stream(gw, body: dict) -> tuple[bytes, str]:
    with httpx.stream("POST", f"{gw.server.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {gw.keys['a']}"}) as response:
        assert response.status_code == 200, response.read()
        return response.read(), response.headers["x-cb-request-id"]


@pytest.mark.parametrize("usage", [True, False])
def test_an_answer_read_whole_is_relayed_and_billed_as_one_read_piece_by_piece(gw, usage):
    """`!whole`: the upstream writes every event and the stream's end at once, so the gateway reads a finished
    answer (`upstream.LastBatch`, relayed without waiting for more): the same events, usage and ledger record;
    without upstream usage the relayed text is counted."""
    words = "one two three four five six"
    body = {"model": "openai/gpt-4o", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"{words} !whole" + ("" if usage else " !no-usage")}]}
    raw, request_id = raw_stream(gw, body)
    assert raw.endswith(b"data: [DONE]\n\n") and raw.count(b"data: [DONE]") == 1
    chunks = [orjson.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == f"[openai] You said: {body['messages'][0]['content']}"
    assert all(c["provider"] == "A openai" for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["stop"]
    record = ledger_row(request_id)
    assert record.status == 200 and record.streamed
    if usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] > 0
        assert (record.completion_tokens, record.usage_estimated) == (chunks[-1]["usage"]["completion_tokens"],
                                                                      False)
    else:
        assert record.usage_estimated and record.completion_tokens >= len(text.split())


def test_an_error_read_whole_with_the_content_comes_after_it(gw):
    body = {"model": "openai/gpt-4o", "stream": True,
            "messages": [{"role": "user", "content": "one two three four !error-after 2 !whole"}]}
    raw, request_id = raw_stream(gw, body)
    events = [line[6:] for line in raw.split(b"\n\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    error = orjson.loads(events[-2])["error"]
    assert error["type"] and "stream broke" in error["message"], error
    content = [orjson.loads(e) for e in events[:-2]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in content) == "[openai] You"
    assert ledger_row(request_id).status >= 500


def ledger_row(request_id: str):
    from apps.billing.ingest import ingest_once
    from apps.billing.models import UsageRecord

    while ingest_once():
        pass
    return UsageRecord.objects.get(request_id=request_id)
