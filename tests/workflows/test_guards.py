"""Guards from the rules engine: refused at save when they do not compile (unknown named condition, bad
expression), evaluated over the tokens a firing would take, explained when they refuse."""

from __future__ import annotations

import copy

import pytest

from apps.workflows import selectors, services
from apps.workflows.engine import DefinitionInvalid, TransitionNotEnabled
from apps.workflows.models import Token

from .nets import DOCUMENT_REVIEW

pytestmark = pytest.mark.django_db

GUARDED = copy.deepcopy(DOCUMENT_REVIEW)
GUARDED["id"] = "guarded_review"
GUARDED["transitions"][0]["conditions"] = ["has_title"]
GUARDED["transitions"][2]["rules"] = ["has_reviewer", {"FieldEquals": {"field": "data.approved", "value": True}}]
GUARDED["transitions"][3]["conditions"] = [{"type": "Expression", "expression": "data.approved == false"}]


def test_unknown_named_conditions_and_bad_expressions_refuse_the_save(tenant, saved):
    bad = copy.deepcopy(GUARDED)
    bad["transitions"][0]["conditions"] = ["no_such_rule"]
    bad["transitions"][1]["conditions"] = [{"type": "Expression", "expression": "data.x >"}]
    with pytest.raises(DefinitionInvalid) as refused:
        saved(bad)
    problems = refused.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("Transition 'submit': ") and "no_such_rule" in problems[0]
    assert problems[1].startswith("Transition 'review': ")


def test_guards_hold_over_the_tokens_taken_and_the_fire_data(tenant, saved):
    _, version = saved(GUARDED)
    assert set(version.named_rules) == {"has_title", "has_reviewer"}  # the version keeps what it uses
    instance = services.instance_create(tenant, workflow_id="guarded_review", data={"body": "x"})
    token = Token.objects.get(instance=instance)
    with pytest.raises(TransitionNotEnabled, match="guard") as refused:
        services.transition_fire(tenant, token_id=token.id, transition_id="submit")
    reason = refused.value.explanation["reasons"][0]
    assert reason["guard"]["passed"] is False
    listing = {t["id"]: t for t in selectors.instance_transitions(instance=instance)}
    assert listing["submit"]["tokens_ready"] and not listing["submit"]["enabled"]
    assert listing["submit"]["guard"]["explanation"]["passed"] is False
    services.token_update_data(tenant, token_id=token.id, data={"title": "T"})
    services.transition_fire(tenant, token_id=token.id, transition_id="submit")
    services.transition_fire(tenant, token_id=token.id, transition_id="review", data={"reviewer": "ann"})
    with pytest.raises(TransitionNotEnabled):
        services.transition_fire(tenant, token_id=token.id, transition_id="approve")
    with pytest.raises(TransitionNotEnabled):
        services.transition_fire(tenant, token_id=token.id, transition_id="reject")  # approved is missing
    result = services.transition_fire(tenant, token_id=token.id, transition_id="approve", data={"approved": True})
    assert result.guard["passed"] is True
    instance.refresh_from_db()
    assert instance.status == "completed"


def test_an_instance_fire_tries_tokens_until_one_passes_the_guard(tenant, saved):
    saved(GUARDED)
    first = services.token_create(tenant, workflow_id="guarded_review", place="draft", data={})
    second = services.token_create(tenant, instance_id=first.instance_id, place="draft", data={"title": "ok"})
    result = services.transition_fire(tenant, instance_id=first.instance_id, transition_id="submit")
    assert result.token_id == str(second.id)


def test_a_tenants_own_named_rule_is_snapshotted_into_the_version(tenant, saved):
    from apps.rules import services as rule_services

    rule = rule_services.rule_create(tenant=tenant, name="big_order",
                                     condition={"FieldGreaterThan": {"field": "data.amount", "value": 100}})
    raw = copy.deepcopy(DOCUMENT_REVIEW)
    raw["id"] = "orders"
    raw["transitions"][0]["conditions"] = ["big_order"]
    _, v1 = saved(raw)
    assert v1.named_rules == {"big_order": rule.condition}
    instance = services.instance_create(tenant, workflow_id="orders", data={"amount": 150})
    rule_services.rule_update(tenant=tenant, rule=rule,
                              condition={"FieldGreaterThan": {"field": "data.amount", "value": 1000}})
    # The running version keeps the rule it was saved with …
    services.transition_fire(tenant, instance_id=instance.id, transition_id="submit")
    # … and saving the same definition again picks up the change as a new version.
    _, v2 = saved(raw)
    assert v2.number == 2 and v2.named_rules["big_order"]["FieldGreaterThan"]["value"] == 1000
    fresh = services.instance_create(tenant, workflow_id="orders", data={"amount": 150})
    with pytest.raises(TransitionNotEnabled):
        services.transition_fire(tenant, instance_id=fresh.id, transition_id="submit")
    other = copy.deepcopy(raw)
    other["transitions"][0]["conditions"] = ["someone_elses_rule"]
    with pytest.raises(DefinitionInvalid, match="someone_elses_rule"):
        saved(other)
