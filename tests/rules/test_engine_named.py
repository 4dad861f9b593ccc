"""Named rules: the built-ins, tenants' own rules (shadowing, references between rules) and cycles."""

import pytest

from apps.rules.engine import BUILTIN_DESCRIPTIONS, BUILTIN_RULES, RuleError, compile_condition, evaluate


def passes(condition, data=None, metadata=None, named=None):
    return evaluate(compile_condition(condition, named=named), {"data": data or {}, "metadata": metadata or {}}).passed


@pytest.mark.parametrize(("name", "data", "metadata", "expected"), [
    ("has_content", {"content": "text"}, {}, True),
    ("has_content", {"content": "  "}, {}, False),
    ("has_content", {}, {"content": "metadata does not count"}, False),
    ("has_title", {"title": "T"}, {}, True),
    ("has_description", {"description": []}, {}, False),
    ("has_reviewer", {}, {"reviewer": "bob"}, True),
    ("has_reviewer", {"reviewer": "bob"}, {}, True),
    ("has_approver", {"approver": None}, {}, False),
    ("has_assignee", {"assignee": {"id": 1}}, {}, True),
    ("has_creator", {}, {}, False),
    ("status_approved", {"status": "approved"}, {}, True),
    ("status_approved", {"status": "approved"}, {"status": "pending"}, False),  # metadata first
    ("status_rejected", {"status": "rejected"}, {}, True),
    ("status_pending", {}, {"status": "pending"}, True),
    ("high_priority", {"priority": 6}, {}, True),
    ("high_priority", {"priority": 5}, {}, False),
    ("high_priority", {"priority": "9"}, {}, True),
    ("critical_priority", {"priority": 9}, {}, True),
    ("critical_priority", {"priority": 8}, {}, False),
    ("emergency_flag", {"emergency": True}, {}, True),
    ("emergency_flag", {"emergency": "yes"}, {}, False),
    ("tests_passed", {"tests_passed": True}, {}, True),
    ("tests_failed", {"tests_passed": False}, {}, True),
    ("tests_failed", {}, {}, False),
    ("security_approved", {"security_approved": True}, {}, True),
    ("security_flagged", {"security_flagged": True}, {}, True),
    ("admin_override", {}, {"admin_override": True}, True),
])
def test_builtin_rules(name, data, metadata, expected):
    assert passes(name, data, metadata) is expected
    assert passes({"Rule": name}, data, metadata) is expected
    assert passes({"type": "Rule", "name": name}, data, metadata) is expected


def test_every_builtin_compiles_and_is_described():
    assert set(BUILTIN_DESCRIPTIONS) == set(BUILTIN_RULES)
    for name, raw in BUILTIN_RULES.items():
        compile_condition(raw)
        compile_condition(name)


def test_the_original_list_of_names_form():
    condition = {"conditions": ["has_content", "status_approved"]}["conditions"]
    assert passes(condition, {"content": "x", "status": "approved"}) is True
    assert passes(condition, {"content": "x", "status": "pending"}) is False


def test_reference_explanations_show_the_name_and_its_subtree():
    result = evaluate(compile_condition(["has_content", "high_priority"]), {"data": {"content": "x", "priority": 2}})
    first, second = result.explanation["children"]
    assert first["kind"] == "Rule" and first["name"] == "has_content" and first["passed"] is True
    assert first["children"][0]["kind"] == "Not"
    assert second["children"][0] == {"kind": "FieldGreaterThan", "field": "priority", "resolved": "data.priority",
                                     "expected": 5, "found": True, "seen": 2, "passed": False}


def test_tenant_rules_shadow_builtins_and_reference_each_other():
    named = {**BUILTIN_RULES,
             "high_priority": {"FieldGreaterThan": {"field": "priority", "value": 100}},
             "ready": ["has_content", "reviewed"],
             "reviewed": {"Or": ["status_approved", "admin_override"]}}
    assert passes("high_priority", {"priority": 50}, named=named) is False
    assert passes("high_priority", {"priority": 50}) is True  # without the tenant's rules
    assert passes("ready", {"content": "x"}, {"admin_override": True}, named=named) is True
    compiled = compile_condition("ready", named=named)
    assert compiled.references == {"ready", "has_content", "reviewed", "status_approved", "admin_override"}
    assert compiled.canonical == {"type": "Rule", "name": "ready"}


def test_cycles_are_compile_errors_naming_the_cycle():
    named = {"a": ["b"], "b": {"Not": "c"}, "c": {"Or": ["a", "has_content"]}, "self": "self",
             "has_content": BUILTIN_RULES["has_content"]}
    with pytest.raises(RuleError) as caught:
        compile_condition("a", named=named)
    assert caught.value.problems == [
        "$ → rule 'a' at $[0] → rule 'b' at $.Not → rule 'c' at $.Or[0]: named rules form a cycle: a → b → c → a"]
    with pytest.raises(RuleError, match="cycle: self → self"):
        compile_condition("self", named=named)
    # a rule being saved that would close a cycle through existing rules
    with pytest.raises(RuleError, match="cycle: a → b → c → a"):
        compile_condition(["b"], named=named, as_rule="a")


def test_unknown_and_broken_named_rules_are_reported_where_referenced():
    named = {"broken": {"FieldEquals": {"field": "", "value": 1}}}
    with pytest.raises(RuleError) as caught:
        compile_condition(["broken", "nope", "broken"], named=named)
    assert caught.value.problems == [
        "$[0] → rule 'broken' at $.FieldEquals.field: a field path must not be empty",
        "$[1]: unknown named rule 'nope'",
    ]
    # a broken rule that nothing references does not matter
    compile_condition({"FieldExists": "a"}, named=named)
