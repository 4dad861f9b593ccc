"""Each field operator on its edge cases: missing fields, null, wrong types, nested paths, list indexes and the
lookup order of bare names."""

from decimal import Decimal

import pytest

from apps.rules.engine import RuleError, compile_condition, evaluate

FACTS = {
    "data": {"status": "pending", "priority": 7, "score": "12.5", "title": "  ", "tags": ["a", "b"],
             "review": {"score": 4, "by": None}, "items": [{"name": "x"}, {"name": "y"}], "empty": {},
             "spend": Decimal("100.25"), "flag": True, "0": "zero-key", "text": "hello world"},
    "metadata": {"status": "approved", "owner": "ann"},
    "token": {"id": 42},
}


def check(condition, facts=FACTS):
    result = evaluate(compile_condition(condition), facts)
    return result.passed, result.explanation


@pytest.mark.parametrize(("condition", "expected"), [
    # bare names look in metadata, then data, then the caller's other facts
    ({"FieldEquals": {"field": "status", "value": "approved"}}, True),
    ({"FieldEquals": {"field": "data.status", "value": "pending"}}, True),
    ({"FieldEquals": {"field": "metadata.status", "value": "approved"}}, True),
    ({"FieldEquals": {"field": "priority", "value": 7}}, True),
    ({"FieldEquals": {"field": "token.id", "value": 42}}, True),
    # nested paths and list indexes
    ({"FieldEquals": {"field": "data.review.score", "value": 4}}, True),
    ({"FieldEquals": {"field": "items.1.name", "value": "y"}}, True),
    ({"FieldExists": "items.2"}, False),
    ({"FieldExists": "tags.0.x"}, False),
    ({"FieldEquals": {"field": "data.0", "value": "zero-key"}}, True),
    # exists: present, even when null; missing is not
    ({"FieldExists": "data.review.by"}, True),
    ({"FieldExists": {"field": "nope"}}, False),
    # numbers across types; numeric strings only in ordering
    ({"FieldEquals": {"field": "priority", "value": 7.0}}, True),
    ({"FieldEquals": {"field": "priority", "value": "7"}}, False),
    ({"FieldEquals": {"field": "flag", "value": 1}}, False),
    ({"FieldEquals": {"field": "spend", "value": 100.25}}, True),
    ({"FieldGreaterThan": {"field": "spend", "value": "100"}}, True),
    ({"FieldGreaterThan": {"field": "score", "value": 12}}, True),
    ({"FieldLessThanOrEqual": {"field": "score", "value": "12.5"}}, True),  # two strings: code point order
    ({"FieldGreaterThanOrEqual": {"field": "priority", "value": 7}}, True),
    ({"FieldLessThan": {"field": "priority", "value": 7}}, False),
    ({"FieldGreaterThan": {"field": "status", "value": "apple"}}, True),
    # not-equals and not-in fail on a missing field (use Not(FieldEquals) for "absent or different")
    ({"FieldNotEquals": {"field": "status", "value": "rejected"}}, True),
    ({"FieldNotEquals": {"field": "nope", "value": "rejected"}}, False),
    ({"Not": {"FieldEquals": {"field": "nope", "value": "rejected"}}}, True),
    ({"FieldIn": {"field": "status", "values": ["approved", "rejected"]}}, True),
    ({"FieldIn": {"field": "priority", "values": [Decimal("7"), 8]}}, True),
    ({"FieldNotIn": {"field": "status", "values": ["rejected"]}}, True),
    ({"FieldNotIn": {"field": "nope", "values": ["rejected"]}}, False),
    # contains: substring, element, key
    ({"FieldContains": {"field": "text", "value": "lo w"}}, True),
    ({"FieldContains": {"field": "tags", "value": "b"}}, True),
    ({"FieldContains": {"field": "review", "value": "score"}}, True),
    ({"FieldContains": {"field": "tags", "value": "c"}}, False),
    ({"FieldStartsWith": {"field": "text", "value": "hello"}}, True),
    ({"FieldEndsWith": {"field": "text", "value": "world"}}, True),
    ({"FieldEndsWith": {"field": "text", "value": "hello"}}, False),
    ({"FieldMatches": {"field": "text", "pattern": "^h.*d$"}}, True),
    ({"FieldMatches": {"field": "text", "pattern": "^world"}}, False),
    # is-empty: missing, null, blank strings, empty containers
    ({"FieldIsEmpty": "nope"}, True),
    ({"FieldIsEmpty": "data.review.by"}, True),
    ({"FieldIsEmpty": "title"}, True),
    ({"FieldIsEmpty": "empty"}, True),
    ({"FieldIsEmpty": "tags"}, False),
    ({"FieldIsEmpty": "priority"}, False),
])
def test_operator_table(condition, expected):
    passed, explanation = check(condition)
    assert passed is expected, explanation


@pytest.mark.parametrize(("condition", "reason"), [
    ({"FieldGreaterThan": {"field": "tags", "value": 1}}, "cannot order list against number"),
    ({"FieldGreaterThan": {"field": "review.by", "value": 1}}, "cannot order null against number"),
    ({"FieldLessThan": {"field": "flag", "value": 2}}, "cannot order boolean against number"),
    ({"FieldGreaterThan": {"field": "text", "value": 2}}, "cannot order string against number"),
    ({"FieldStartsWith": {"field": "priority", "value": "7"}}, "needs a string; the field holds a number"),
    ({"FieldMatches": {"field": "tags", "pattern": "a"}}, "matches strings; the field holds a list"),
    ({"FieldContains": {"field": "priority", "value": 7}}, "number has no members"),
    ({"FieldContains": {"field": "text", "value": 7}}, "a string contains only strings"),
    ({"FieldEquals": {"field": "nope", "value": 1}}, "field 'nope' is missing"),
    ({"FieldGreaterThan": {"field": "nope", "value": 1}}, "field 'nope' is missing"),
])
def test_incomparable_values_fail_with_a_reason_never_an_exception(condition, reason):
    passed, explanation = check(condition)
    assert passed is False
    assert reason in explanation["reason"]


def test_explanation_of_a_field_test_names_the_field_where_it_was_found_and_both_values():
    _, explanation = check({"FieldGreaterThan": {"field": "spend", "value": "100"}})
    assert explanation == {"kind": "FieldGreaterThan", "field": "spend", "resolved": "data.spend",
                           "expected": "100", "found": True, "seen": "100.25", "passed": True}
    _, missing = check({"FieldEquals": {"field": "data.review.nope.deeper", "value": 1}})
    assert missing["found"] is False and missing["seen"] is None and missing["resolved"] == "data.review.nope"


def test_metadata_shadows_data_for_bare_names_but_explicit_roots_do_not():
    facts = {"data": {"priority": 1}, "metadata": {"priority": 9}}
    assert check({"FieldGreaterThan": {"field": "priority", "value": 5}}, facts)[0] is True
    assert check({"FieldGreaterThan": {"field": "data.priority", "value": 5}}, facts)[0] is False
    # a key present with null still wins the lookup: metadata said "no priority"
    facts = {"data": {"priority": 9}, "metadata": {"priority": None}}
    passed, explanation = check({"FieldGreaterThan": {"field": "priority", "value": 5}}, facts)
    assert passed is False and explanation["resolved"] == "metadata.priority"


def test_facts_without_data_or_metadata_and_non_object_facts_never_raise():
    assert check({"FieldExists": "x"}, {})[0] is False
    assert check({"FieldExists": "x"}, {"data": [1], "metadata": "text"})[0] is False
    assert check({"FieldEquals": {"field": "data.0", "value": 1}}, {"data": [1]})[0] is True
    assert evaluate(compile_condition({"FieldExists": "x"}), None).passed is False
    result = evaluate(compile_condition({"FieldExists": "x"}), ["not", "a", "mapping"])
    assert result.passed is False and "facts must be an object" in result.explanation["error"]
    assert check(None, {})[0] is True and check([], {})[0] is True


def test_regex_is_linear_time():
    import time

    compiled = compile_condition({"FieldMatches": {"field": "s", "pattern": "^(a+)+$"}})
    started = time.perf_counter()
    result = evaluate(compiled, {"data": {"s": "a" * 200_000 + "!"}})
    assert result.passed is False
    assert time.perf_counter() - started < 0.5  # a backtracking engine would not finish this


@pytest.mark.parametrize(("condition", "where", "says"), [
    ({"FieldMatches": {"field": "s", "pattern": "(a"}}, "$.FieldMatches.pattern", "not valid RE2"),
    ({"FieldMatches": {"field": "s", "pattern": r"(a)\1"}}, "$.FieldMatches.pattern", "not valid RE2"),
    ({"FieldMatches": {"field": "s", "pattern": "a" * 501}}, "$.FieldMatches.pattern", "more than the 500"),
    ({"type": "FieldEquals", "field": "", "value": 1}, "$.field", "must not be empty"),
    ({"type": "FieldEquals", "field": ".a", "value": 1}, "$.field", "empty segment"),
    ({"type": "FieldEquals", "field": 3, "value": 1}, "$.field", "must be a string path"),
    ({"type": "FieldEquals", "field": "a"}, "$", "FieldEquals needs ['value']"),
    ({"type": "FieldEquals", "field": "a", "value": 1, "extra": 2}, "$", "unknown keys ['extra']"),
    ({"type": "FieldGreaterThan", "field": "a", "value": [1]}, "$.value", "finite number or a string"),
    ({"type": "FieldIn", "field": "a", "values": "x"}, "$.values", "list of values"),
    ({"type": "FieldStartsWith", "field": "a", "value": 1}, "$.value", "takes a string"),
    ({"FieldEquals": ["a", 1]}, "$.FieldEquals", "takes an object"),
    ({"FieldEquals": {"field": "a", "value": 1}, "Or": []}, "$", "one key"),
    ({"Bogus": {}}, "$", "unknown condition kind 'Bogus'"),
    ({"type": "Bogus"}, "$.type", "unknown condition kind 'Bogus'"),
    ({"And": {"x": 1}}, "$.And", "unknown keys ['x']"),
    ({"Or": "a"}, "$.Or", "takes a list of conditions, not string"),
    (42, "$", "not number"),
])
def test_compile_problems_name_where_they_are(condition, where, says):
    with pytest.raises(RuleError) as caught:
        compile_condition(condition)
    assert any(problem.startswith(f"{where}:") and says in problem for problem in caught.value.problems), \
        caught.value.problems


def test_every_problem_is_reported_at_once():
    with pytest.raises(RuleError) as caught:
        compile_condition({"And": [{"type": "Nope"}, {"FieldEquals": {"field": "a..b", "value": 1}}, "missing_rule",
                                   {"Expression": "data.x >"}, {"Not": {"FieldMatches": {"field": "x",
                                                                                          "pattern": "["}}}]})
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "$.And[0].type", "$.And[1].FieldEquals.field", "$.And[2]", "$.And[3].Expression",
        "$.And[4].Not.FieldMatches.pattern"]
    assert caught.value.status == 400 and all(p in caught.value.message for p in problems)


def test_deep_or_huge_conditions_are_refused_not_crashing():
    deep = {"FieldExists": "a"}
    for _ in range(200):
        deep = {"Not": deep}
    with pytest.raises(RuleError, match="nest more than"):
        compile_condition(deep)
    with pytest.raises(RuleError, match="more than 1000 parts"):
        compile_condition([{"FieldExists": "a"}] * 1500)
