"""CEL `Expression` conditions: compiled at save time, evaluated with a bounded cost, errors explained."""

import json
import time

import pytest

from apps.rules.engine import RuleError, compile_condition, evaluate
from apps.rules.engine import expressions as cel_bounds

FACTS = {"data": {"priority": 7, "tags": ["a", "b"], "review": {"score": 4}},
         "metadata": {"owner": "ann"}, "token": {"id": 3}, "event": {"kind": "created"}}


def run(expression, facts=FACTS):
    result = evaluate(compile_condition({"Expression": expression}), facts)
    return result.passed, result.explanation


@pytest.mark.parametrize(("expression", "passed"), [
    ("data.priority > 5", True),
    ("data.priority > 5 && metadata.owner == 'ann'", True),
    ("'b' in data.tags && data.tags.size() == 2", True),
    ("data.tags.exists(t, t.startsWith('a'))", True),
    ("has(data.review.score) && !has(data.review.missing)", True),
    ("token.id == 3 && event.kind == 'created'", True),  # the caller's extra facts are variables too
    ("data.tags.map(t, t + '!').all(t, t.endsWith('!'))", True),
    ("data.priority < 5", False),
])
def test_expressions_over_data_metadata_and_extra_facts(expression, passed):
    result, explanation = run(expression)
    assert result is passed
    assert explanation["expression"] == expression and explanation["value"] is passed


def test_value_of_a_non_boolean_expression_fails_and_says_so():
    passed, explanation = run("data.priority + 1")
    assert passed is False and explanation["value"] == 8 and "not a boolean" in explanation["reason"]


@pytest.mark.parametrize(("expression", "error"), [
    ("data.missing > 5", "no such key: 'missing'"),
    ("nope == 1", "Undefined variable or function: 'nope'"),
    ("data.priority > 'x'", "No such overload"),
    ("1 / (data.priority - 7) == 0", "division by zero"),
    ("data.tags[5] == 'a'", "index out of bounds"),
])
def test_runtime_errors_fail_the_condition_with_the_error_text(expression, error):
    passed, explanation = run(expression)
    assert passed is False and error in explanation["error"]
    json.dumps(explanation)


def test_runtime_error_inside_or_does_not_stop_the_other_branch():
    compiled = compile_condition({"Or": [{"Expression": "data.missing > 1"}, {"Expression": "data.priority == 7"}]})
    result = evaluate(compiled, FACTS)
    assert result.passed is True
    assert "no such key" in result.explanation["children"][0]["error"]


@pytest.mark.parametrize(("expression", "says"), [
    ("data.priority >", "does not compile"),
    ("data.priority > 5)", "does not compile"),
    ("max(data.a, 1) > 2", "calls max, not among the available functions"),
    ("lists.range(100000).size() > 1", "not among the available functions"),
    ("data.a.all(x, data.a.all(y, data.a.exists(z, z == x)))", "nests comprehensions (all/exists/map/filter) 3 deep"),
    ("x" * 1001, "more than the 1000 allowed"),
    ("   ", "must not be empty"),
])
def test_compile_errors_quote_the_expression_and_its_place(expression, says):
    with pytest.raises(RuleError) as caught:
        compile_condition([{"FieldExists": "a"}, {"type": "Expression", "expression": expression}])
    (problem,) = caught.value.problems
    assert problem.startswith("$[1].expression:") and says in problem


def test_strings_and_comments_do_not_count_as_comprehensions():
    compile_condition({"Expression": "data.a.all(x, x == '.map(.filter(.all(') // .exists(.exists("})


def test_cost_bound_refuses_expensive_expressions_before_running_them():
    expensive = "data.items.map(x, data.items.map(y, y)).size() > 0"
    compiled = compile_condition({"Expression": expensive})
    small = {"data": {"items": list(range(10))}}
    assert evaluate(compiled, small).passed is True
    started = time.perf_counter()
    result = evaluate(compiled, {"data": {"items": list(range(2000))}})
    elapsed = time.perf_counter() - started
    assert result.passed is False and "estimated cost" in result.explanation["error"]
    assert elapsed < 0.5  # unbounded, this takes minutes (quadratic map inside a quadratic map)


def test_cost_bound_counts_concatenation_growth():
    compiled = compile_condition({"Expression": "(data.i + data.i + data.i + data.i).map(x, x).size() > 0"})
    assert evaluate(compiled, {"data": {"i": list(range(50))}}).passed is True
    result = evaluate(compiled, {"data": {"i": list(range(200))}})  # 5 × 200 = 1000 elements, 1000² > limit
    assert "estimated cost" in result.explanation["error"]


def test_expressions_the_bound_admits_run_quickly():
    """The worst shapes admitted just under the limit still finish in well under a second."""
    n = int(cel_bounds.COST_LIMIT ** 0.5) - 1
    for expression in ("data.i.all(x, data.i.exists(y, y == -1) || true)", "data.i.map(x, x).size() > 0",
                       "data.i.filter(x, x >= 0).size() > 0"):
        compiled = compile_condition({"Expression": expression})
        started = time.perf_counter()
        result = evaluate(compiled, {"data": {"i": list(range(n))}})
        assert result.passed is True, result.explanation
        assert time.perf_counter() - started < 1.0, expression


def test_oversized_facts_fail_expressions_but_not_field_tests():
    facts = {"data": {"big": list(range(cel_bounds.MAX_FACT_NODES + 1)), "x": 1}}
    result = evaluate(compile_condition([{"FieldEquals": {"field": "x", "value": 1}}, {"Expression": "true"}]),
                      facts)
    assert result.passed is False
    assert result.explanation["children"][0]["passed"] is True
    assert "more than 50000 values" in result.explanation["children"][1]["error"]


def test_only_the_facts_an_expression_reads_are_handed_to_the_library():
    """The library converts every variable it is given; the engine hands over only those the expression names
    (and the verdicts, values and errors are the ones all the facts would give)."""
    many = {f"unused_{n}": {"deep": list(range(20))} for n in range(40)}
    compiled = compile_condition({"Expression": "prompt_tokens > 10 && data.kind == 'a' && metadata == {}"})
    assert compiled.root.compiled.variables == {"prompt_tokens", "data", "metadata"}
    assert evaluate(compiled, {**many, "prompt_tokens": 11, "data": {"kind": "a"}}).passed is True
    assert evaluate(compiled, {**many, "prompt_tokens": 10, "data": {"kind": "a"}}).passed is False
    missing = evaluate(compile_condition({"Expression": "nowhere > 1"}), many).explanation
    assert missing["passed"] is False and "nowhere" in missing["error"]
