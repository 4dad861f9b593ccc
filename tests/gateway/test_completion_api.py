"""The in-process completion API (`apps.gateway.completion_api`) runs the /v1 pipeline: the same fake
upstream, the same ledger record with exact cost and labels, failover, budgets and OpenAI-shaped errors."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from apps.core import errors
from apps.gateway import completion_api
from tests.conftest import committed, free_port
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db
INPUT, OUTPUT = Decimal("0.0000025"), Decimal("0.00001")  # gpt-4o list prices per token
MESSAGES = [{"role": "user", "content": "hello from an agent"}]
RUN = uuid.uuid4().hex[:8]  # request ids are unique across runs: the ledger ignores a repeated id
RID = {name: f"req_inproc_{name}_{RUN}" for name in ("1", "key", "stream", "cut", "err", "failover")}


@pytest.fixture(scope="module")
def setup(django_db_setup, django_db_blocker):
    from apps.tenants.models import Tenant
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug__startswith="inproc-").delete()  # left by an interrupted run
        tenant, key, _ = factories.tenant_on_fake_openai("inproc-t", fake, provider_slug="ip-openai",
                                                         user_label="agent-user")
        other = factories.tenant("inproc-other")
        inactive = factories.tenant("inproc-off")
        inactive.is_active = False
        inactive.save()
    yield {"fake": fake, "tenant": tenant, "key": key, "other": other, "inactive": inactive}
    fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug__startswith="inproc-").delete()


@pytest.fixture
def run():
    """One event loop for the test, and the runtime it started shut down afterwards."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.run_until_complete(completion_api.close())
    loop.close()


def records(request_ids):
    from apps.billing.ingest import ingest_once
    from apps.billing.models import UsageRecord

    ingest_once()  # what the Celery beat task does every second
    return {r.request_id: r for r in UsageRecord.objects.filter(request_id__in=list(request_ids))}


def test_complete_answers_and_is_recorded_like_v1(setup, run):
    result = run(completion_api.complete(setup["tenant"], {"model": "gpt-4o", "messages": MESSAGES},
                                         workflow_id="wf-review", agent_id="agent-7", project="apollo",
                                         request_id=RID["1"]))
    assert result["object"] == "chat.completion"
    assert "hello from an agent" in result["choices"][0]["message"]["content"]
    assert result["provider"] == "ip-openai"
    usage = result["usage"]
    row = committed(records, [RID["1"]])[RID["1"]]
    assert (row.tenant_id, row.status, row.endpoint) == (setup["tenant"].id, 200, "chat.completions")
    assert (row.workflow_id, row.agent_id, row.project_label) == ("wf-review", "agent-7", "apollo")
    assert (row.prompt_tokens, row.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row.cost == usage["prompt_tokens"] * INPUT + usage["completion_tokens"] * OUTPUT
    assert row.provider == "ip-openai" and row.model_served == "gpt-4o"


def test_key_labels_apply_when_a_key_is_named(setup, run):
    run(completion_api.complete(setup["tenant"].id, {"model": "gpt-4o", "messages": MESSAGES},
                                api_key_id=setup["key"].id, request_id=RID["key"]))
    row = committed(records, [RID["key"]])[RID["key"]]
    assert (row.api_key_id, row.user_label) == (setup["key"].id, "agent-user")


def test_stream_yields_chunks_and_records_usage(setup, run):
    async def collect():
        chunks = []
        async for chunk in completion_api.stream(setup["tenant"], {
                "model": "gpt-4o", "messages": MESSAGES, "stream_options": {"include_usage": True}},
                request_id=RID["stream"]):
            chunks.append(chunk)
        return chunks

    chunks = run(collect())
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert "hello from an agent" in text
    assert chunks[-1]["usage"]["completion_tokens"] > 0 and all(c["provider"] == "ip-openai" for c in chunks)
    row = committed(records, [RID["stream"]])[RID["stream"]]
    assert row.streamed and row.status == 200
    assert row.completion_tokens == chunks[-1]["usage"]["completion_tokens"]


def test_stream_closed_early_is_billed_for_what_was_relayed(setup, run):
    async def first_only():
        iterator = completion_api.stream(setup["tenant"], {
            "model": "gpt-4o", "messages": [{"role": "user", "content": "!slow 0.05 a long answer please"}]},
            request_id=RID["cut"])
        first = await anext(iterator)
        await iterator.aclose()
        return first

    assert run(first_only())["object"] == "chat.completion.chunk"
    row = committed(records, [RID["cut"]])[RID["cut"]]
    assert row.status == 499 and row.usage_estimated and row.prompt_tokens > 0


def test_upstream_error_mid_stream_raises_and_is_recorded(setup, run):
    async def consume():
        async for _ in completion_api.stream(setup["tenant"], {
                "model": "gpt-4o", "messages": [{"role": "user", "content": "!error-after 2 tell me more"}]},
                request_id=RID["err"]):
            pass

    with pytest.raises(errors.UpstreamError):
        run(consume())
    row = committed(records, [RID["err"]])[RID["err"]]
    assert row.status >= 500 and row.error_type


def test_errors_are_the_v1_errors(setup, run):
    with pytest.raises(errors.NotFound) as missing:
        run(completion_api.complete(setup["tenant"], {"model": "no-such-model", "messages": MESSAGES}))
    assert (missing.value.status, missing.value.code) == (404, "model_not_found")
    with pytest.raises(errors.InvalidRequest) as invalid:
        run(completion_api.complete(setup["tenant"], {"model": "gpt-4o", "messages": "not a list"}))
    assert invalid.value.status == 400 and invalid.value.param == "messages"
    with pytest.raises(errors.PermissionDenied):
        run(completion_api.complete(setup["inactive"], {"model": "gpt-4o", "messages": MESSAGES}))
    # Another tenant's providers are not reachable: the other tenant has none of its own.
    with pytest.raises(errors.NotFound):
        run(completion_api.complete(setup["other"], {"model": "ip-openai/gpt-4o", "messages": MESSAGES}))
    with pytest.raises(errors.UpstreamError) as upstream:
        run(completion_api.complete(setup["tenant"], {"model": "gpt-4o",
                                                      "messages": [{"role": "user", "content": "!status 400"}]}))
    assert upstream.value.status == 400


def test_fails_over_to_the_next_deployment(setup, run, django_db_blocker):
    from apps.providers.models import Provider
    from tests import factories

    def add_dead_provider():
        dead = factories.provider(setup["tenant"], slug="ip-dead", base_url=f"http://127.0.0.1:{free_port()}/v1",
                                  priority=-10)
        factories.credential(dead, api_key_value="sk-dead-key-0000")

    committed(add_dead_provider)
    try:
        result = run(completion_api.complete(setup["tenant"], {
            "model": "gpt-4o", "messages": MESSAGES, "circuit_breaker": {"routing_strategy": "failover_chain"}},
            request_id=RID["failover"]))
        assert result["provider"] == "ip-openai"
        row = committed(records, [RID["failover"]])[RID["failover"]]
        assert row.attempts == 2 and row.status == 200
    finally:
        committed(lambda: Provider.objects.filter(slug="ip-dead").delete())


def test_budget_refuses_like_v1(setup, run):
    from apps.billing.models import Budget

    budget = committed(lambda: Budget.objects.create(tenant=setup["tenant"], limit=Decimal("0.0000001"),
                                                     period="monthly", action="block"))
    try:
        with pytest.raises(errors.ApiError) as refused:
            run(completion_api.complete(setup["tenant"], {"model": "gpt-4o", "messages": MESSAGES}))
        assert (refused.value.status, refused.value.code) == (429, "budget_exceeded")
    finally:
        committed(budget.delete)
