"""Cost-rule conditions on the rules engine: engine conditions (tagged, named rules, CEL) beside the shorthands,
their validation through the API, the explanation of a verdict, tenants' named rules in the snapshot, and the
shorthands' translation meaning what the hand-written evaluator meant."""

from __future__ import annotations

import fnmatch
import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.billing import cost_rule_conditions, facade
from apps.billing import cost_rules as rules
from apps.billing.cost_rules import RequestFacts, RuleSpec, evaluate, explain
from apps.billing.models import CostRule
from apps.rules import services as rule_services
from apps.rules.engine import BUILTIN_RULES, compile_condition, passes
from apps.rules.engine import evaluate as engine_evaluate
from tests import factories
from tests.billing import factories as billing_factories

D = Decimal


def facts(model="gpt-4o", prompt_tokens=50, task_type="general", environment="production", spend=None):
    return RequestFacts(model=model, prompt_tokens=prompt_tokens, task_type=task_type, environment=environment,
                        spend_today_by_model=spend or {})


def spec(conditions, *, id=1, stop=False, action="prefer_provider", params=None) -> RuleSpec:
    return RuleSpec(id=id, name=f"r{id}", priority=id, conditions=conditions, action=action,
                    params=params or {"providers": ["p"]}, stop=stop)


def matches(conditions, **kw) -> bool:
    return evaluate([spec(conditions)], facts(**kw)).matched == [1]


# ---- engine forms evaluated --------------------------------------------------------------------------------

def test_a_tagged_condition_either_shape():
    internal = {"type": "FieldIn", "field": "task_type", "values": ["coding", "reasoning"]}
    assert matches(internal, task_type="coding") and not matches(internal, task_type="general")
    external = {"FieldGreaterThanOrEqual": {"field": "prompt_tokens", "value": 1000}}
    assert matches(external, prompt_tokens=1000) and not matches(external, prompt_tokens=999)
    either = {"Or": [{"FieldStartsWith": {"field": "model", "value": "claude-"}},
                     {"FieldEquals": {"field": "environment", "value": "development"}}]}
    assert matches(either, model="claude-3-opus") and matches(either, environment="development")
    assert not matches(either)
    assert matches({"Not": {"FieldIn": {"field": "model", "values": ["gpt-4o"]}}}, model="gpt-4")


def test_a_cel_expression_over_the_request_facts():
    long_coding = {"Expression": "prompt_tokens > 1000 && task_type == 'coding'"}
    assert matches(long_coding, prompt_tokens=1001, task_type="coding")
    assert not matches(long_coding, prompt_tokens=1000, task_type="coding")
    assert not matches(long_coding, prompt_tokens=5000, task_type="general")
    assert matches({"Expression": "model.startsWith('gpt-4') && environment != 'development'"}, model="gpt-4-turbo")
    # A runtime error (no such variable) fails the rule, never the request.
    assert not matches({"Expression": "no_such_fact > 1"})


def test_a_cel_expression_over_todays_spend_fetches_that_spend():
    over = spec({"Expression": "spend_today > 2.5"}, action="apply_rate_limit", params={"requests_per_minute": 1})
    assert over.uses_spend and rules.spend_models_needed([over], "gpt-4o") == {"gpt-4o"}
    assert evaluate([over], facts(spend={"gpt-4o": D("2.6")})).matched == [1]
    assert evaluate([over], facts(spend={"gpt-4o": D("2.5")})).matched == []
    other = spec({"spend_model": "claude-3-opus", "FieldGreaterThan": {"field": "spend_today", "value": "1"}})
    assert rules.spend_models_needed([other], "gpt-4o") == {"claude-3-opus"}
    assert evaluate([other], facts(spend={"claude-3-opus": D("1.01"), "gpt-4o": D(0)})).matched == [1]
    assert evaluate([other], facts(spend={"gpt-4o": D(50)})).matched == []
    assert rules.spend_models_needed([spec({"Expression": "prompt_tokens > 1"})], "gpt-4o") == set()


def test_a_named_builtin_rule_is_the_engines_own():
    # The built-ins test workflow facts (`priority`, `status`, …): over a request's facts the field is missing,
    # so the rule does not hold and its negation does; the explanation shows the built-in's body.
    assert not matches({"Rule": "high_priority"})
    assert matches({"Not": {"Rule": "emergency_flag"}})
    (explained,) = explain([spec({"Rule": "high_priority"})], facts())
    rule_node = explained["explanation"]["children"][0]
    assert rule_node["kind"] == "Rule" and rule_node["name"] == "high_priority"
    assert rule_node["children"][0]["field"] == "priority" and "missing" in rule_node["children"][0]["reason"]


def test_mixed_forms_all_must_hold():
    mixed = {"model_in": ["gpt-4*"], "environment_in": ["production"], "Expression": "prompt_tokens > 100",
             "Not": {"FieldEquals": {"field": "task_type", "value": "creative"}}}
    assert matches(mixed, model="gpt-4-turbo", prompt_tokens=101)
    assert not matches(mixed, model="gpt-4-turbo", prompt_tokens=100)
    assert not matches(mixed, model="gpt-3.5-turbo", prompt_tokens=101)
    assert not matches(mixed, model="gpt-4", prompt_tokens=101, environment="development")
    assert not matches(mixed, model="gpt-4", prompt_tokens=101, task_type="creative")
    # A shorthand and an Or of engine conditions: "simple prompts, or anything in development".
    assert matches({"model_in": ["gpt-4o"], "Or": [{"Rule": "has_content"},
                                                   {"Expression": "environment == 'development'"}]},
                   environment="development")


def test_the_explanation_says_why_a_rule_matched_or_not():
    seed = [spec({"simple_prompt": True}, id=1, action="route_to_model", params={"model": "gpt-4o-mini"}),
            spec({"model_in": ["gpt-4"], "spend_today_gt": 10}, id=2, action="apply_rate_limit",
                 params={"requests_per_minute": 5})]
    first, second = explain(seed, facts(model="gpt-4", prompt_tokens=50, spend={"gpt-4": D("12.5")}))
    assert (first["id"], first["matched"], second["matched"]) == (1, True, True)
    simple = first["explanation"]["children"][0]
    assert simple["kind"] == "And" and [c["kind"] for c in simple["children"]] == ["FieldLessThan", "FieldEquals"]
    assert simple["children"][0] == {"kind": "FieldLessThan", "field": "prompt_tokens", "resolved": "prompt_tokens",
                                     "expected": 200, "found": True, "seen": 50, "passed": True}
    spend = second["explanation"]["children"][1]
    assert (spend["field"], spend["seen"], spend["expected"], spend["passed"]) == ("spend_today", "12.5", 10, True)
    assert second["condition"] == {"type": "And", "conditions": [
        {"type": "FieldIn", "field": "model", "values": ["gpt-4"]},
        {"type": "FieldGreaterThan", "field": "spend_today", "value": 10}]}
    assert second["facts"]["spend_today"] == "12.5"

    (missed, _) = explain(seed, facts(model="gpt-4", prompt_tokens=500))
    assert missed["matched"] is False
    tokens = missed["explanation"]["children"][0]["children"][0]
    assert (tokens["seen"], tokens["passed"]) == (500, False)
    assert missed["explanation"]["children"][0]["children"][1]["skipped"] is True
    # The verdicts agree with evaluate(), and a matching stop rule ends the explanation as it ends the run.
    stop_first = [spec({}, id=1, stop=True), spec({}, id=2)]
    assert [e["id"] for e in explain(stop_first, facts())] == evaluate(stop_first, facts()).matched == [1]


# ---- validation through the model, the API and the admin ----------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("conditions, fragment", [
    ({"Expression": "prompt_tokens >"}, "$.Expression: CEL expression"),
    ({"Expression": "size(model) > 1 && model.lowerAscii() == 'x'"}, "lowerAscii"),
    ({"Rule": "no_such_rule"}, "unknown named rule 'no_such_rule'"),
    ({"FieldMatches": {"field": "model", "pattern": "("}}, "not valid RE2"),
    ({"FieldEquals": {"field": "model"}}, "FieldEquals needs ['value']"),
    ({"type": "Nope"}, "unknown condition kind 'Nope'"),
    ({"type": "FieldExists", "field": "model", "simple_prompt": True}, "simple_prompt: a 'type' key"),
    ({"Expression": "prompt_tokens > 1", "prompt_tokens_under": 3}, "unknown condition"),
    ({"spend_model": "gpt-4", "Expression": "prompt_tokens > 1"}, "spend_model: only meaningful"),
    ({"model_in": ["gpt-[z-a]"]}, "model_in: the pattern 'gpt-[z-a]' cannot be matched"),
])
def test_bad_engine_conditions_are_400_with_the_engines_problem(conditions, fragment):
    _, client = factories.admin_api("rules-engine-bad")
    with pytest.raises(ValidationError) as raised:
        rules.validate_rule(conditions, "route_to_model", {"model": "m"})
    assert fragment in " ".join(raised.value.message_dict["conditions"])
    response = client.post("/api/cost-rules/", {"name": "bad", "conditions": conditions,
                                                "action": "route_to_model", "params": {"model": "m"}}, format="json")
    assert response.status_code == 400, response.json()
    assert fragment in " ".join(response.json()["conditions"])
    assert not CostRule.objects.exists()


@pytest.mark.django_db
def test_engine_conditions_through_the_api_are_stored_as_written_and_evaluated():
    tenant, client = factories.admin_api("rules-engine-api")
    body = {"name": "long coding prompts to the big model", "priority": 5,
            "conditions": {"task_type_in": ["coding"], "Expression": "prompt_tokens >= 2000"},
            "action": "route_to_model", "params": {"model": "gpt-4o"}}
    created = client.post("/api/cost-rules/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["conditions"] == body["conditions"]
    (snapshot_spec,) = facade.cost_rule_specs_by_tenant()[tenant.id]
    assert evaluate([snapshot_spec], facts(model="m", prompt_tokens=2000, task_type="coding")).model == "gpt-4o"
    assert evaluate([snapshot_spec], facts(model="m", prompt_tokens=1999, task_type="coding")).model is None


@pytest.mark.django_db
def test_a_tenants_named_rule_in_its_cost_rules_and_in_the_snapshot(caplog):
    tenant, client = factories.admin_api("rules-engine-named")
    other, other_client = factories.admin_api("rules-engine-named-2")
    named = rule_services.rule_create(tenant=tenant, name="long_prompt",
                                      condition={"Expression": "prompt_tokens > 1000"})
    body = {"name": "long prompts local", "conditions": {"Rule": "long_prompt"}, "action": "prefer_provider",
            "params": {"providers": ["ollama"]}}
    assert client.post("/api/cost-rules/", body, format="json").status_code == 201
    # Another tenant cannot reach this tenant's named rule; global rules see the built-ins only.
    refused = other_client.post("/api/cost-rules/", body, format="json")
    assert refused.status_code == 400 and "unknown named rule 'long_prompt'" in " ".join(refused.json()["conditions"])
    with pytest.raises(ValidationError):
        billing_factories.cost_rule(None, **{k: v for k, v in body.items()})

    (snapshot_spec,) = facade.cost_rule_specs_by_tenant()[tenant.id]
    assert evaluate([snapshot_spec], facts(prompt_tokens=1001)).prefer_providers == ["ollama"]
    assert evaluate([snapshot_spec], facts(prompt_tokens=1000)).prefer_providers == []
    # Redefined: the next snapshot compiles the new body.
    rule_services.rule_update(tenant=tenant, rule=named, condition={"Expression": "prompt_tokens > 10"})
    (snapshot_spec,) = facade.cost_rule_specs_by_tenant()[tenant.id]
    assert evaluate([snapshot_spec], facts(prompt_tokens=11)).prefer_providers == ["ollama"]
    # Gone: the cost rule no longer compiles; the snapshot skips it with a warning rather than failing.
    rule_services.rule_delete(tenant=tenant, rule=named)
    with caplog.at_level(logging.WARNING, logger="apps.billing.cost_rules"):
        assert facade.cost_rule_specs_by_tenant().get(tenant.id, []) == []
    assert "unknown named rule 'long_prompt'" in caplog.text


# ---- the shorthands' translation ----------------------------------------------------------------------------

def test_shorthands_translate_to_engine_field_tests():
    assert cost_rule_conditions.translate({"model_in": ["gpt-4", "claude-*"], "prompt_tokens_lt": 500,
                                           "spend_today_gt": D("2.5"), "environment_in": ["production"]}) == [
        {"type": "Or", "conditions": [{"type": "FieldIn", "field": "model", "values": ["gpt-4", "claude-*"]},
                                      {"type": "FieldMatches", "field": "model", "pattern": "^(?s:claude-.*)$"}]},
        {"type": "FieldLessThan", "field": "prompt_tokens", "value": 500},
        {"type": "FieldGreaterThan", "field": "spend_today", "value": "2.5"},
        {"type": "FieldIn", "field": "environment", "values": ["production"]},
    ]
    assert spec({"spend_today_gt": 10}).compiled.canonical["conditions"][0]["value"] == 10
    assert spec({}).compiled.canonical == {"type": "And", "conditions": []}


GLOB_ALPHABET = "ab.-*?[]!^\\"


@settings(max_examples=400, deadline=None)
@given(st.text(GLOB_ALPHABET, max_size=8), st.text("ab.-[]!^\\*?", max_size=8))
def test_model_in_globs_match_as_fnmatch_does(pattern, model):
    try:
        rules.validate_rule({"model_in": [pattern]}, "route_to_model", {"model": "m"})
    except ValidationError:
        return  # a pattern refused at save time (an empty one, a reversed range) never runs
    expected = pattern == model or fnmatch.fnmatchcase(model, pattern)
    assert matches({"model_in": [pattern]}, model=model) is expected


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({
    "prompt_tokens": st.integers(0, 3000) | st.sampled_from([99, 100, 101, 199, 200, 201, 999, 1000]),
    "task_type": st.sampled_from(["general", "coding", "reasoning", ""]),
    "environment": st.sampled_from(["production", "development"]),
    "model": st.sampled_from(["gpt-4", "gpt-4o", "gpt-4-turbo", "claude-3-opus"]),
    "spend": st.decimals(0, 50, places=3), "other_spend": st.decimals(0, 50, places=3)}))
def test_shorthands_decide_as_the_hand_written_evaluator_did(drawn):
    prompt_tokens, task_type, environment, model, spend, other_spend = (drawn[key] for key in (
        "prompt_tokens", "task_type", "environment", "model", "spend", "other_spend"))
    def before(conditions) -> bool:  # the evaluator cost rules had before the engine (kept here as the oracle)
        tokens, kind = prompt_tokens, task_type or "general"
        spent = {model: spend, "claude-3-opus": other_spend}.get(conditions.get("spend_model") or model, D(0))
        return all((
            "prompt_tokens_lt" not in conditions or tokens < conditions["prompt_tokens_lt"],
            "prompt_tokens_gt" not in conditions or tokens > conditions["prompt_tokens_gt"],
            not conditions.get("simple_prompt") or (tokens < 200 and kind == "general"),
            "task_type_in" not in conditions or kind in conditions["task_type_in"],
            "environment_in" not in conditions or environment in conditions["environment_in"],
            "model_in" not in conditions or any(p == model or fnmatch.fnmatchcase(model, p)
                                                for p in conditions["model_in"]),
            "spend_today_gt" not in conditions or spent > D(str(conditions["spend_today_gt"])),
        ))

    cases = [{"simple_prompt": True}, {"prompt_tokens_lt": 1000, "prompt_tokens_gt": 100},
             {"task_type_in": ["general", "coding"]}, {"environment_in": ["development"]},
             {"model_in": ["gpt-4*"]}, {"model_in": ["gpt-4"], "spend_today_gt": 10},
             {"spend_today_gt": "12.345", "spend_model": "claude-3-opus"}, {}]
    request = facts(model=model, prompt_tokens=prompt_tokens, task_type=task_type, environment=environment,
                    spend={model: spend, "claude-3-opus": other_spend})
    specs = rules.rule_specs([CostRule(id=i + 1, name="x", priority=i, conditions=conditions,
                                       action="prefer_provider", params={"providers": ["p"]})
                              for i, conditions in enumerate(cases)])
    assert evaluate(specs, request).matched == [i + 1 for i, c in enumerate(cases) if before(c)]


def test_the_engine_verdict_without_explanation_agrees():
    compiled = compile_condition([{"FieldIn": {"field": "model", "values": ["a", 1]}}, {"Expression": "x > 1"}])
    for fact_set in ({"model": "a", "x": 2}, {"model": 1, "x": 2}, {"model": "b", "x": 2}, {"model": "a"}, {}):
        assert passes(compiled, fact_set) is engine_evaluate(compiled, fact_set).passed


def test_spend_read_through_a_named_rule_is_fetched_too():
    named = {"spent_a_lot": {"Expression": "spend_today > 100"}, "quiet": {"FieldLessThan": {"field": "spend_today",
                                                                                            "value": 1}}}
    rows = [CostRule(id=1, tenant_id=9, name="a", priority=1, conditions={"Rule": "spent_a_lot"},
                     action="prefer_provider", params={"providers": ["p"]}),
            CostRule(id=2, tenant_id=9, name="b", priority=2, conditions={"spend_model": "m2", "Not": "quiet"},
                     action="prefer_provider", params={"providers": ["q"]}),
            CostRule(id=3, tenant_id=9, name="c", priority=3, conditions={"Rule": "has_content"},
                     action="prefer_provider", params={"providers": ["r"]})]
    specs = rules.rule_specs(rows, lambda tenant_id: {**BUILTIN_RULES, **named} if tenant_id == 9 else None)
    assert [s.uses_spend for s in specs] == [True, True, False]
    assert rules.spend_models_needed(specs, "m1") == {"m1", "m2"}
    assert evaluate(specs, facts(model="m1", spend={"m1": D(101), "m2": D(1)})).matched == [1, 2]
    assert evaluate(specs, facts(model="m1", spend={"m1": D(100), "m2": D("0.5")})).matched == []
    with pytest.raises(ValidationError, match="spend_model: only meaningful"):
        rules.validate_rule({"spend_model": "m2", "Rule": "has_content"}, "route_to_model", {"model": "m"})
