"""Cost-optimisation rules: the seed's examples written as data through /api/cost-rules/ and evaluated, the
engine's order and stop semantics, validation, tenant isolation, and today's spend counters in real Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from rest_framework.test import APIClient

from apps.billing import cost_rules as rules
from apps.billing import selectors
from apps.billing.cost_rules import RequestFacts, evaluate, rule_specs
from apps.billing.models import CostRule
from apps.core import redis as cb_redis
from tests import factories
from tests.billing import factories as billing_factories

pytestmark = pytest.mark.django_db
D = Decimal



@pytest.fixture
def tenant_a():
    return factories.admin_api("rules-a")


@pytest.fixture
def tenant_b():
    return factories.admin_api("rules-b")


def listing(client) -> list[dict]:
    body = client.get("/api/cost-rules/").json()
    return body["results"] if isinstance(body, dict) else body


def facts(model="gpt-4o", prompt_tokens=50, task_type="general", environment="production", spend=None):
    return RequestFacts(model=model, prompt_tokens=prompt_tokens, task_type=task_type, environment=environment,
                        spend_today_by_model=spend or {})


def tenant_specs(tenant):
    return rules.active_rule_specs(selectors.cost_rule_list(tenant=tenant))


rule = billing_factories.cost_rule


SEED_RULES = [
    {"name": "cheap model for short simple prompts", "priority": 10,
     "conditions": {"simple_prompt": True}, "action": "route_to_model", "params": {"model": "gpt-4o-mini"}},
    {"name": "local Ollama in development", "priority": 20,
     "conditions": {"environment_in": ["development"]}, "action": "prefer_provider",
     "params": {"providers": ["ollama"]}},
    {"name": "throttle gpt-4 after $10 today", "priority": 30,
     "conditions": {"model_in": ["gpt-4"], "spend_today_gt": 10}, "action": "apply_rate_limit",
     "params": {"requests_per_minute": 5, "tokens_per_minute": 20000}},
]


def test_the_seed_examples_as_data_through_the_api(tenant_a):
    tenant, client = tenant_a
    ids = []
    for body in SEED_RULES:
        response = client.post("/api/cost-rules/", body, format="json")
        assert response.status_code == 201, response.json()
        got = response.json()
        assert got["owner"] == "tenant" and got["enabled"] is True and got["stop_processing"] is False
        assert (got["conditions"], got["action"], got["params"]) == (body["conditions"], body["action"],
                                                                     body["params"])
        ids.append(got["id"])
    cheap, ollama, throttle = ids
    listed = listing(client)
    assert [r["id"] for r in listed] == ids
    specs = tenant_specs(tenant)

    # A short simple prompt goes to the cheaper model; a long one or a coding task does not.
    effects = evaluate(specs, facts(model="gpt-4o", prompt_tokens=50))
    assert (effects.model, effects.matched) == ("gpt-4o-mini", [cheap])
    assert evaluate(specs, facts(prompt_tokens=199)).model == "gpt-4o-mini"
    assert evaluate(specs, facts(prompt_tokens=200)).model is None
    assert evaluate(specs, facts(prompt_tokens=50, task_type="coding")).model is None

    # In development, local Ollama is preferred; in production not.
    effects = evaluate(specs, facts(prompt_tokens=5000, environment="development"))
    assert (effects.model, effects.prefer_providers, effects.matched) == (None, ["ollama"], [ollama])
    assert evaluate(specs, facts(prompt_tokens=5000, environment="production")).prefer_providers == []

    # Once today's spend on gpt-4 passes $10, gpt-4 requests get a rate-limit bucket of their own.
    below = evaluate(specs, facts(model="gpt-4", prompt_tokens=5000, spend={"gpt-4": D("10")}))
    assert below.rate_limits == [] and below.matched == []
    above = evaluate(specs, facts(model="gpt-4", prompt_tokens=5000, spend={"gpt-4": D("10.000000001")}))
    assert above.matched == [throttle]
    assert above.rate_limits == [{"key": f"rule:{throttle}:gpt-4", "requests_per_minute": 5,
                                  "tokens_per_minute": 20000}]
    # Spend on another model does not count, and other models are not throttled by it.
    assert evaluate(specs, facts(model="gpt-4", prompt_tokens=5000, spend={"gpt-4o": D(50)})).rate_limits == []
    assert evaluate(specs, facts(model="gpt-4o", prompt_tokens=5000, spend={"gpt-4": D(50)})).rate_limits == []

    # All three at once, in priority order.
    everything = evaluate(specs, facts(model="gpt-4", prompt_tokens=10, environment="development",
                                       spend={"gpt-4": D(11)}))
    assert everything.matched == [cheap, ollama, throttle]
    assert everything.model == "gpt-4o-mini" and everything.prefer_providers == ["ollama"]
    assert len(everything.rate_limits) == 1
    assert rules.spend_models_needed(specs, "gpt-4") == {"gpt-4"}


def test_rules_apply_only_with_cost_optimisation_enabled(tenant_a):
    tenant, _ = tenant_a
    rule(tenant, conditions={}, action="route_to_model", params={"model": "cheap"})
    with override_settings(ENABLE_COST_OPTIMIZATION=False):
        assert tenant_specs(tenant) == []
    with override_settings(ENABLE_COST_OPTIMIZATION=True):
        assert evaluate(tenant_specs(tenant), facts()).model == "cheap"


def test_priority_order_first_route_wins_and_stop_processing(tenant_a):
    tenant, _ = tenant_a
    late = rule(tenant, name="late", priority=50, action="route_to_model", params={"model": "late-model"})
    early = rule(tenant, name="early", priority=5, action="route_to_model", params={"model": "early-model"})
    prefer = rule(tenant, name="prefer", priority=20, action="prefer_provider", params={"providers": ["a", "b"]})
    prefer2 = rule(tenant, name="prefer2", priority=30, action="prefer_provider", params={"providers": ["b", "c"]})
    limit = rule(tenant, name="limit", priority=40, action="apply_rate_limit", params={"requests_per_minute": 3})
    rule(tenant, name="disabled", priority=1, enabled=False, action="route_to_model", params={"model": "off"})
    specs = rule_specs(CostRule.objects.filter(tenant=tenant))
    assert [s.id for s in specs] == [early.id, prefer.id, prefer2.id, limit.id, late.id]
    effects = evaluate(specs, facts())
    assert effects.matched == [early.id, prefer.id, prefer2.id, limit.id, late.id]
    assert effects.model == "early-model"  # the first matching route wins
    assert effects.prefer_providers == ["a", "b", "c"]
    assert effects.rate_limits == [{"key": f"rule:{limit.id}:gpt-4o", "requests_per_minute": 3,
                                    "tokens_per_minute": None}]

    # A matching rule with stop_processing ends the run; a non-matching one does not.
    prefer.stop_processing = True
    prefer.save()
    specs = rule_specs(CostRule.objects.filter(tenant=tenant))
    assert evaluate(specs, facts()).matched == [early.id, prefer.id]
    prefer.conditions = {"environment_in": ["development"]}
    prefer.save()
    specs = rule_specs(CostRule.objects.filter(tenant=tenant))
    assert evaluate(specs, facts()).matched == [early.id, prefer2.id, limit.id, late.id]


def test_conditions_each_and_together():
    def match(conditions, **kw):
        spec = rules.RuleSpec(id=1, name="x", priority=1, conditions=conditions, action="prefer_provider",
                              params={"providers": ["p"]}, stop=False)
        return evaluate([spec], facts(**kw)).matched == [1]

    assert match({"prompt_tokens_gt": 100}, prompt_tokens=101) and not match({"prompt_tokens_gt": 100},
                                                                             prompt_tokens=100)
    assert match({"prompt_tokens_lt": 100}, prompt_tokens=99) and not match({"prompt_tokens_lt": 100},
                                                                            prompt_tokens=100)
    assert match({"task_type_in": ["coding", "reasoning"]}, task_type="reasoning")
    assert not match({"task_type_in": ["coding"]}, task_type="general")
    assert match({"task_type_in": ["general"]}, task_type="")  # no task type counts as general
    assert match({"model_in": ["gpt-4*"]}, model="gpt-4-turbo") and match({"model_in": ["gpt-4"]}, model="gpt-4")
    assert not match({"model_in": ["gpt-4"]}, model="gpt-4o") and not match({"model_in": ["claude-*"]})
    assert match({"environment_in": ["staging", "development"]}, environment="staging")
    spend_other = {"spend_today_gt": "2.5", "spend_model": "claude-3-opus"}
    specs = rule_specs([CostRule(id=1, name="x", conditions=spend_other, action="apply_rate_limit",
                                 params={"tokens_per_minute": 100})])
    assert specs[0].conditions["spend_today_gt"] == D("2.5")
    assert rules.spend_models_needed(specs, "gpt-4o") == {"claude-3-opus"}
    assert evaluate(specs, facts(spend={"claude-3-opus": D("2.6")})).rate_limits[0]["key"] == "rule:1:gpt-4o"
    assert evaluate(specs, facts(spend={"gpt-4o": D("100")})).matched == []
    assert match({})  # no conditions: always
    both = {"prompt_tokens_gt": 10, "task_type_in": ["general"], "environment_in": ["production"]}
    assert match(both, prompt_tokens=11) and not match(both, prompt_tokens=11, environment="development")


@pytest.mark.parametrize("case", [
    ({"prompt_tokens_under": 5}, "route_to_model", {"model": "m"}, "conditions", "unknown condition"),
    ({"prompt_tokens_lt": "200"}, "route_to_model", {"model": "m"}, "conditions", "prompt_tokens_lt"),
    ({"prompt_tokens_lt": True}, "route_to_model", {"model": "m"}, "conditions", "prompt_tokens_lt"),
    ({"prompt_tokens_lt": 10, "prompt_tokens_gt": 9}, "route_to_model", {"model": "m"}, "conditions", "no token"),
    ({"task_type_in": ["poetry"]}, "route_to_model", {"model": "m"}, "conditions", "poetry"),
    ({"task_type_in": "general"}, "route_to_model", {"model": "m"}, "conditions", "task_type_in"),
    ({"model_in": []}, "route_to_model", {"model": "m"}, "conditions", "model_in"),
    ({"environment_in": [1]}, "route_to_model", {"model": "m"}, "conditions", "environment_in"),
    ({"spend_today_gt": -1}, "route_to_model", {"model": "m"}, "conditions", "spend_today_gt"),
    ({"spend_today_gt": "NaN"}, "route_to_model", {"model": "m"}, "conditions", "spend_today_gt"),
    ({"spend_model": "gpt-4"}, "route_to_model", {"model": "m"}, "conditions", "spend_model"),
    ({"simple_prompt": False}, "route_to_model", {"model": "m"}, "conditions", "simple_prompt"),
    (["prompt_tokens_lt"], "route_to_model", {"model": "m"}, "conditions", "JSON object"),
    ({}, "delete_everything", {}, "action", ""),
    ({}, "route_to_model", {}, "params", "model"),
    ({}, "route_to_model", {"model": "m", "fallback": "x"}, "params", "unknown parameter"),
    ({}, "prefer_provider", {"providers": "ollama"}, "params", "providers"),
    ({}, "apply_rate_limit", {}, "params", "requests_per_minute"),
    ({}, "apply_rate_limit", {"requests_per_minute": 0}, "params", "requests_per_minute"),
    ({}, "apply_rate_limit", {"tokens_per_minute": 1.5}, "params", "tokens_per_minute"),
    ({}, "apply_rate_limit", [], "params", "JSON object"),
])
def test_invalid_rules_are_400_with_the_field_named(tenant_a, case):
    conditions, action, params, field, fragment = case
    _, client = tenant_a
    with pytest.raises(ValidationError) as raised:
        rules.validate_rule(conditions, action, params)
    assert field in raised.value.message_dict
    response = client.post("/api/cost-rules/", {"name": "bad", "conditions": conditions, "action": action,
                                                "params": params}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert fragment in " ".join(response.json()[field])
    assert not CostRule.objects.exists()


def test_update_validates_and_partial_update_keeps_the_rest(tenant_a):
    _, client = tenant_a
    created = client.post("/api/cost-rules/", SEED_RULES[2], format="json").json()
    url = f"/api/cost-rules/{created['id']}/"
    assert client.patch(url, {"params": {}}, format="json").status_code == 400
    response = client.patch(url, {"priority": 1, "enabled": False}, format="json")
    assert response.status_code == 200
    assert (response.json()["priority"], response.json()["enabled"]) == (1, False)
    assert response.json()["params"] == SEED_RULES[2]["params"]
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


def test_tenant_isolation_and_global_rules_read_only(tenant_a, tenant_b):
    tenant, client = tenant_a
    other, other_client = tenant_b
    global_rule = rule(None, name="global", priority=1, conditions={"environment_in": ["development"]},
                       action="prefer_provider", params={"providers": ["ollama"]})
    mine = client.post("/api/cost-rules/", SEED_RULES[0], format="json").json()
    theirs = other_client.post("/api/cost-rules/", SEED_RULES[1], format="json").json()

    listed = listing(client)
    assert [(r["id"], r["owner"]) for r in listed] == [(global_rule.id, "global"), (mine["id"], "tenant")]
    missing = client.get("/api/cost-rules/999999/")
    assert missing.status_code == 404
    for method in ("get", "patch", "put", "delete"):
        response = getattr(client, method)(f"/api/cost-rules/{theirs['id']}/", SEED_RULES[0], format="json")
        assert response.status_code == 404, method
        assert response.json() == missing.json(), method  # the same answer as a rule that does not exist
    assert client.get("/api/cost-rules/not-a-number/").json() == missing.json()  # never a 500
    assert other_client.get(f"/api/cost-rules/{theirs['id']}/").status_code == 200  # it exists, for its owner
    assert client.get(f"/api/cost-rules/{global_rule.id}/").json()["owner"] == "global"
    assert client.patch(f"/api/cost-rules/{global_rule.id}/", {"enabled": False}, format="json").status_code == 403
    assert client.put(f"/api/cost-rules/{global_rule.id}/", SEED_RULES[0], format="json").status_code == 403
    assert client.delete(f"/api/cost-rules/{global_rule.id}/").status_code == 403
    global_rule.refresh_from_db()
    assert global_rule.enabled and global_rule.tenant_id is None

    # Each tenant's evaluation sees the global rule and its own only.
    assert [s.id for s in tenant_specs(tenant)] == [global_rule.id, mine["id"]]
    assert [s.id for s in tenant_specs(other)] == [global_rule.id, theirs["id"]]

    # A read-only key may list but not write.
    _, read_secret = factories.api_key(tenant, scopes=["read"])
    reader = factories.api_client(read_secret)
    assert reader.get("/api/cost-rules/").status_code == 200
    assert reader.post("/api/cost-rules/", SEED_RULES[0], format="json").status_code == 403
    assert APIClient().get("/api/cost-rules/").status_code in (401, 403)


def test_invalid_rows_are_skipped_not_fatal(tenant_a):
    tenant, _ = tenant_a
    good = rule(tenant, action="route_to_model", params={"model": "m"})
    bad = rule(tenant, action="route_to_model", params={"model": "m"})
    CostRule.objects.filter(pk=bad.pk).update(conditions={"nonsense": 1})
    assert [s.id for s in rule_specs(CostRule.objects.all())] == [good.id]


def test_admin_form_validates_rules(admin_user):
    from apps.billing import cost_rules_admin  # noqa: F401  (registers CostRuleAdmin)

    model_admin = admin.site._registry[CostRule]
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    form_class = model_admin.get_form(request)
    bad = form_class(data={"name": "x", "priority": 1, "enabled": "on", "conditions": '{"bogus": 1}',
                           "action": "apply_rate_limit", "params": "{}"})
    assert not bad.is_valid()
    assert "conditions" in bad.errors and "params" in bad.errors
    good = form_class(data={"name": "x", "priority": 1, "enabled": "on", "conditions": '{"simple_prompt": true}',
                            "action": "route_to_model", "params": '{"model": "gpt-4o-mini"}'})
    assert good.is_valid(), good.errors
    saved = good.save()
    assert saved.tenant_id is None and saved.conditions == {"simple_prompt": True}


# ---- today's spend in Redis -----------------------------------------------------------------------------

def run(coro_fn):
    async def main():
        client = cb_redis.async_client()  # the gateway's kind of client (blocking pool)
        try:
            return await coro_fn(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_spend_today_counts_per_tenant_model_and_utc_day(redis_client):
    now = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    tomorrow = now + timedelta(seconds=2)

    async def scenario(client):
        assert await rules.spend_today(client, 1, "gpt-4", now=now) == D(0)
        for amount in ("0.000000001", "3.25", "6.75", "0"):
            assert await rules.add_spend(client, 1, "gpt-4", D(amount), now=now)
        await rules.add_spend(client, 1, "gpt-4o", D("1.5"), now=now)
        await rules.add_spend(client, 2, "gpt-4", D("99"), now=now)
        await rules.add_spend(client, 1, "gpt-4", D("7"), now=tomorrow)
        with pytest.raises(ValueError):
            await rules.add_spend(client, 1, "gpt-4", D("-1"), now=now)
        return (await rules.spend_today(client, 1, "gpt-4", now=now),
                await rules.spend_today_many(client, 1, ["gpt-4", "gpt-4o", "never"], now=now),
                await rules.spend_today(client, 2, "gpt-4", now=now),
                await rules.spend_today(client, 1, "gpt-4", now=tomorrow))

    today, many, other_tenant, next_day = run(scenario)
    assert today == D("10.000000001")
    assert many == {"gpt-4": D("10.000000001"), "gpt-4o": D("1.5"), "never": D(0)}
    assert (other_tenant, next_day) == (D(99), D(7))
    key = rules.spend_key(1, "gpt-4", now)
    assert key == "cb:spend:day:20261122:1:gpt-4"
    assert int(redis_client.get(key)) == 10_000_000_001  # integer nano-dollars
    assert 2 * 86400 - 5 < redis_client.ttl(key) <= 2 * 86400

    # Feeds the seed's throttle rule: above $10 today on gpt-4 → bucket.
    spec = rule_specs([CostRule(id=7, name="t", conditions={"model_in": ["gpt-4"], "spend_today_gt": 10},
                                action="apply_rate_limit", params={"requests_per_minute": 5})])
    assert evaluate(spec, facts(model="gpt-4", spend=many)).rate_limits[0]["key"] == "rule:7:gpt-4"


def test_spend_today_concurrent_adds_are_exact():
    async def scenario(client):
        await asyncio.gather(*(rules.add_spend(client, 3, "m", D("0.001")) for _ in range(200)))
        return await rules.spend_today(client, 3, "m")

    assert run(scenario) == D("0.2")


def test_spend_counters_degrade_when_redis_is_down():
    async def scenario(_):
        dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        try:
            first = (await rules.add_spend(dead, 1, "m", D(1)), await rules.spend_today(dead, 1, "m"))
            # Within the back-off the client is not even tried: no connect timeout per request.
            started = time.monotonic()
            again = (await rules.add_spend(dead, 1, "m", D(1)), await rules.spend_today(dead, 1, "m"))
            return first, again, time.monotonic() - started
        finally:
            await dead.aclose()

    first, again, took = run(scenario)
    assert first == again == (False, D(0))
    assert took < 0.05
