"""Cost-optimisation rules applied by a real gateway: a cheaper model for short simple prompts, and a rate
limit on an expensive model once today's spend on it passes a limit."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ServerProcess, committed
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def setup(django_db_setup, django_db_blocker):
    from apps.tenants.models import Tenant
    from tests import factories

    fake = FakeOpenAI().start()
    with django_db_blocker.unblock():
        tenant, _, secret = factories.tenant_on_fake_openai("rules-t", fake, provider_slug="r-openai")
    server = ServerProcess().start()
    yield {"fake": fake, "secret": secret, "tenant": tenant, "server": server}
    server.stop()
    fake.stop()
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="rules-t").delete()


def ask(setup, text, model="gpt-4o"):
    return httpx.post(f"{setup['server'].url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {setup['secret']}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}]})


def with_rule(setup, **fields):
    from apps.billing.models import CostRule

    rule = committed(lambda: CostRule.objects.create(tenant=setup["tenant"], **fields))
    time.sleep(1)  # the servers' snapshots reload
    return rule


def test_short_simple_prompts_go_to_a_cheaper_model(setup):
    rule = with_rule(setup, name="cheap for simple", conditions={"simple_prompt": True}, action="route_to_model",
                     params={"model": "gpt-4o-mini"})
    try:
        short = ask(setup, "What is 2+2?")
        assert short.headers["x-cb-model"] == "gpt-4o-mini"
        assert setup["fake"].requests[-1]["json"]["model"] == "gpt-4o-mini"
        long = ask(setup, " ".join(["context"] * 400))
        assert long.headers["x-cb-model"] == "gpt-4o"
    finally:
        committed(rule.delete)


def test_an_expensive_model_is_rate_limited_once_todays_spend_passes_a_limit(setup):
    rule = with_rule(setup, name="throttle gpt-4o", conditions={"model_in": ["gpt-4o"], "spend_today_gt": 0.00001},
                     action="apply_rate_limit", params={"requests_per_minute": 1})
    try:
        assert ask(setup, "first, spend is zero").status_code == 200  # adds ~$0.00006 of spend
        assert ask(setup, "second, inside the rule's one per minute").status_code == 200
        throttled = ask(setup, "third")
        assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "rate_limit_exceeded"
        assert "cost rule" in throttled.json()["error"]["message"]
        assert ask(setup, "another model is not throttled", model="gpt-4o-mini").status_code == 200
    finally:
        committed(rule.delete)


def test_engine_conditions_route_and_read_todays_spend_in_the_gateway(setup, redis_client):
    """A CEL expression over the prompt routes; one over `spend_today` (no spend_today_gt shorthand) still makes
    the gateway fetch and count today's spend."""
    from apps.billing.cost_rules import spend_key
    route = with_rule(setup, name="long prompts to mini", priority=1,
                      conditions={"Expression": "prompt_tokens > 300 && task_type == 'general'"},
                      action="route_to_model", params={"model": "gpt-4o-mini"})
    try:
        assert ask(setup, " ".join(["context"] * 400)).headers["x-cb-model"] == "gpt-4o-mini"
        assert ask(setup, "short").headers["x-cb-model"] == "gpt-4o"
    finally:
        committed(route.delete)
    throttle = with_rule(setup, name="throttle by CEL", conditions={
        "model_in": ["gpt-4o"], "Expression": "spend_today > 0.00001"}, action="apply_rate_limit",
        params={"requests_per_minute": 1})
    redis_client.delete(spend_key(setup["tenant"].id, "gpt-4o"))  # the earlier tests' spend
    try:
        # Zero spend: no match. Counted only because this rule reads spend_today; then the bucket's one request
        # a minute, then 429.
        assert [ask(setup, f"request {n}").status_code for n in range(3)] == [200, 200, 429]
        assert int(redis_client.get(spend_key(setup["tenant"].id, "gpt-4o"))) > 0
    finally:
        committed(throttle.delete)
