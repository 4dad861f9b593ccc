"""clients/python/cbplatform_client.py against a real gateway process and a fake OpenAI upstream."""

from __future__ import annotations

import openai
import pytest

from clients.python.cbplatform_client import CircuitBreakerClient, routing_options
from tests.conftest import ServerProcess
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def env(django_db_setup, django_db_blocker):
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        tenant, _, secret = factories.tenant_on_fake_openai("client-py", fake, provider_slug="client-py-openai")
    server = ServerProcess(env={"RETRY_BACKOFF_BASE_SECONDS": "0", "CIRCUIT_FAILURE_THRESHOLD": "1000"}).start()
    yield {"server": server, "fake": fake, "secret": secret}
    server.stop()
    fake.stop()
    with django_db_blocker.unblock():
        tenant.delete()


def client(env, **kwargs) -> CircuitBreakerClient:
    return CircuitBreakerClient(env["server"].url, api_key=env["secret"], max_retries=0, **kwargs)


def test_routing_options_build_the_circuit_breaker_object():
    assert routing_options(strategy="cost_optimized", max_cost=0.001, fallback_models=("a", "b"),
                           budget_user="u1") == {
        "routing_strategy": "cost_optimized", "max_cost_per_1k_tokens": 0.001, "fallback_models": ["a", "b"],
        "budget_tracking": {"user_id": "u1"}}
    assert routing_options() == {}


def test_smart_completion_answers_text(env):
    assert client(env).smart_completion("hello helper", strategy="cost_optimized", max_cost=1.0) == \
        "[openai] You said: hello helper"


def test_fallback_models_are_tried(env):
    with pytest.raises(openai.APIStatusError):  # the fake fails every request carrying the directive
        client(env, model="gpt-4o-mini").completion("fail everywhere !status 500", fallback_models=["gpt-4o"])
    assert [r["json"]["model"] for r in env["fake"].requests[-2:]] == ["gpt-4o-mini", "gpt-4o"]


def test_routing_options_reach_the_gateway(env):
    with pytest.raises(openai.BadRequestError) as caught:
        client(env).smart_completion("x", strategy="cheapest-please")
    assert caught.value.body["code"] == "invalid_routing_option"
    assert caught.value.body["param"] == "circuit_breaker.routing_strategy"


def test_completion_carries_usage_cost(env):
    answer = client(env, model="gpt-4o-mini").completion("what did it cost", budget_project="p1", temperature=0)
    assert answer.usage.model_extra["cost"] > 0 and answer.model_extra["provider"]


def test_stream_completion_yields_text(env):
    pieces = list(client(env, model="gpt-4o-mini").stream_completion("stream these words", strategy="balanced"))
    assert len(pieces) > 1 and "".join(pieces) == "[openai] You said: stream these words"


def test_closing_a_stream_early(env):
    stream = client(env, model="gpt-4o-mini").stream_completion("one two three four five six !slow 0.05")
    assert next(stream)
    stream.close()
