"""Algebraic laws of the condition language, over random conditions and random facts."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.rules.engine import compile_condition, evaluate
from apps.rules.engine import passes as verdict

from .strategies import conditions, external, facts

settings.register_profile("rules", max_examples=150, deadline=None)
settings.load_profile("rules")


def passes(raw, fact_set) -> bool:
    return evaluate(compile_condition(raw), fact_set).passed


@given(conditions, conditions, facts)
def test_and_or_match_python_boolean_logic(a, b, f):
    pa, pb = passes(a, f), passes(b, f)
    assert passes({"type": "And", "conditions": [a, b]}, f) == (pa and pb)
    assert passes({"type": "Or", "conditions": [a, b]}, f) == (pa or pb)
    assert passes({"And": [a, b]}, f) == passes({"And": [b, a]}, f)  # commutative
    assert passes({"Or": [a, b]}, f) == passes({"Or": [b, a]}, f)


@given(conditions, conditions, facts)
def test_de_morgan(a, b, f):
    assert passes({"Not": {"And": [a, b]}}, f) == passes({"Or": [{"Not": a}, {"Not": b}]}, f)
    assert passes({"Not": {"Or": [a, b]}}, f) == passes({"And": [{"Not": a}, {"Not": b}]}, f)


@given(conditions, facts)
def test_double_negation_and_identities(a, f):
    pa = passes(a, f)
    assert passes({"Not": {"Not": a}}, f) == pa
    assert passes({"type": "Not", "condition": a}, f) == (not pa)
    assert passes({"And": [a, {"Not": a}]}, f) is False
    assert passes({"Or": [a, {"Not": a}]}, f) is True
    assert passes({"And": []}, f) is True and passes({"Or": []}, f) is False
    assert passes({"And": [a, []]}, f) == pa  # [] is always true: And's identity


@given(st.lists(conditions, max_size=4), facts)
def test_a_list_of_conditions_is_and(cs, f):
    assert passes(cs, f) == passes({"type": "And", "conditions": cs}, f) == all(passes(c, f) for c in cs)


@given(conditions, facts)
def test_both_tagged_shapes_and_the_canonical_export_mean_the_same(a, f):
    compiled = compile_condition(a)
    assert compiled.canonical == compile_condition(external(a)).canonical
    assert compile_condition(compiled.canonical).canonical == compiled.canonical
    assert evaluate(compile_condition(external(a)), f).passed == evaluate(compiled, f).passed


@given(conditions, facts)
def test_explanations_are_json_and_agree_with_the_result(a, f):
    result = evaluate(compile_condition(a), f)
    tree = json.loads(json.dumps(result.explanation))
    assert tree["passed"] is result.passed

    def walk(node):
        assert "kind" in node and "passed" in node
        for child in node.get("children", []):
            walk(child)
        if node["kind"] == "And" and node["passed"] is not None and not node.get("skipped"):
            evaluated = [c["passed"] for c in node["children"] if not c.get("skipped")]
            assert node["passed"] == all(evaluated)
        if node["kind"] == "Not" and not node.get("skipped"):
            assert node["passed"] is (not node["children"][0]["passed"])

    walk(tree)


odd_values = st.recursive(
    st.one_of(st.floats(), st.decimals(), st.binary(max_size=4), st.text(max_size=4), st.integers(),
              st.sampled_from([float("nan"), float("inf"), __import__("decimal").Decimal("sNaN"), None, True]),
              st.frozensets(st.integers(), max_size=2)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "items"]), inner,
                                                                max_size=3),
    max_leaves=8)


@given(conditions, st.fixed_dictionaries({"data": st.dictionaries(st.sampled_from(["a", "b", "items"]), odd_values),
                                          "metadata": odd_values}))
def test_evaluation_never_raises_whatever_the_facts_hold(a, f):
    result = evaluate(compile_condition(a), f)
    assert isinstance(result.passed, bool)
    json.dumps(result.explanation, allow_nan=False)


@given(conditions, facts)
def test_the_verdict_without_explanation_is_the_same_verdict(a, f):
    compiled = compile_condition(a)
    assert verdict(compiled, f) is evaluate(compiled, f).passed


@given(conditions, st.fixed_dictionaries({"data": st.dictionaries(st.sampled_from(["a", "b", "items"]), odd_values),
                                          "metadata": odd_values}))
def test_the_verdict_without_explanation_agrees_and_never_raises_on_odd_facts(a, f):
    compiled = compile_condition(a)
    assert verdict(compiled, f) is evaluate(compiled, f).passed


@given(st.sampled_from(["FieldIn", "FieldNotIn", "FieldGreaterThan", "FieldLessThanOrEqual", "FieldEquals"]),
       odd_values, st.one_of(st.integers(-3, 3), st.decimals(-3, 3, places=2), st.sampled_from(["1", "a", "2.5"])),
       st.sampled_from(["top", "data.a", "a"]))
def test_top_level_facts_and_the_shortcuts_agree(kind, seen, operand, field):
    """Cost rules pass bare top-level facts (no data / metadata), where lookups and string sets take shortcuts."""
    body = {"field": field, "values": [operand, "a"]} if kind.endswith("In") else {"field": field, "value": operand}
    compiled = compile_condition({kind: body})
    for fact_set in ({"top": seen, "a": seen}, {"data": {"a": seen}}, {}):
        assert verdict(compiled, fact_set) is evaluate(compiled, fact_set).passed
