"""Definitions: both shapes, `join: any`, AND-split, every structural problem reported, export round trip."""

from __future__ import annotations

import copy

from hypothesis import given, settings

from apps.workflows.engine import export_definition, parse_definition, structural_problems
from apps.workflows.engine.definition import format_duration, parse_duration

from .nets import DOCUMENT_REVIEW, PARALLEL_REVIEW, net_from, random_nets


def problems_of(raw, compile_guard=None) -> list[str]:
    problems: list[str] = []
    net = parse_definition(raw, problems=problems)
    if net is not None:
        problems += structural_problems(net, compile_guard=compile_guard)
    return problems


def test_the_original_shape_loads_with_its_names():
    net = net_from(DOCUMENT_REVIEW)
    assert net.place_ids == ("draft", "pending_review", "reviewed", "approved", "rejected")
    assert net.initial == {"draft": 1} and net.place("draft").kind == "initial"
    assert net.final_places == ("approved",)  # the sink; `rejected` goes on to `revise`
    assert [(t.id, [a.place for a in t.inputs], [a.place for a in t.outputs]) for t in net.transitions][-1] == (
        "revise", ["rejected"], ["draft"])
    assert structural_problems(net) == []


def test_camel_case_names_from_the_graphql_inputs():
    raw = {"workflowId": "w", "places": ["a", "b"], "initialPlace": "a",
           "transitions": [{"id": "go", "fromPlaces": ["a"], "toPlace": "b"}]}
    net = net_from(raw)
    assert net.transition("go").inputs[0].place == "a" and net.final_places == ("b",)


def test_several_from_places_are_an_and_join_and_join_any_expands():
    raw = {"id": "w", "places": ["a", "b", "c"], "initial_marking": ["a", "b"], "final_places": ["c"],
           "transitions": [{"id": "both", "from_places": ["a", "b"], "to_place": "c"},
                           {"id": "either", "from_places": ["a", "b"], "to_place": "c", "join": "any"}]}
    net = net_from(raw)
    assert [a.place for a in net.transition("both").inputs] == ["a", "b"]
    assert [t.id for t in net.transitions_named("either")] == ["either~a", "either~b"]
    assert export_definition(net)["transitions"][1] == {"id": "either", "inputs": ["a", "b"], "outputs": ["c"],
                                                         "join": "any"}


def test_every_structural_problem_is_listed():
    raw = {"id": "bad", "places": ["a", "a", "b", "island", "end"], "initial_place": "a", "final_places": ["end"],
           "transitions": [
               {"id": "t1", "from_places": ["a"], "to_place": "nowhere"},
               {"id": "t1", "from_places": ["a"], "to_place": "b"},
               {"id": "t2", "inputs": [{"place": "a", "weight": 0}], "outputs": ["b"]},
               {"id": "t3", "outputs": ["b"]},
               {"id": "t4", "from_places": ["b"], "to_place": "a", "colour": "red"},
           ]}
    problems = problems_of(raw)
    text = "\n".join(problems)
    assert "Duplicate place id 'a'" in text
    assert "Duplicate transition id 't1'" in text
    assert "weight 0" in text
    assert "Unknown field 'colour'" in text
    # Shape problems are reported together; fix them and the graph problems show.
    raw = {"id": "bad", "places": ["a", "b", "island", "end"], "initial_place": "a", "final_places": ["end"],
           "transitions": [{"id": "t1", "from_places": ["a"], "to_place": "nowhere"},
                           {"id": "t3", "outputs": ["b"]}]}
    assert problems_of(raw) == ["Transition 't1': unknown output place 'nowhere'.",
                                "Transition 't3' has no input place; every transition takes from one."]
    raw["transitions"] = [{"id": "t1", "from_places": ["a"], "to_place": "b"}]
    assert problems_of(raw) == ["Place 'island' is unreachable from the initial marking.",
                                "Place 'end' is unreachable from the initial marking.",
                                "No final place is reachable from the initial marking."]


def test_guard_problems_come_from_the_compiler_passed_in():
    raw = copy.deepcopy(DOCUMENT_REVIEW)
    raw["transitions"][2]["conditions"] = ["no_such_rule"]

    def compile_guard(parts):
        return [f"unknown named condition {p!r}" for p in parts if p == "no_such_rule"]

    assert problems_of(raw, compile_guard) == ["Transition 'approve': unknown named condition 'no_such_rule'"]


def test_an_and_join_whose_inputs_cannot_all_be_marked_leaves_its_outputs_unreachable():
    raw = {"id": "w", "places": ["a", "b", "c"], "initial_place": "a", "final_places": ["c"],
           "transitions": [{"id": "j", "from_places": ["a", "b"], "to_place": "c"}]}
    assert "Place 'b' is unreachable from the initial marking." in problems_of(raw)
    assert "No final place is reachable from the initial marking." in problems_of(raw)


def test_not_an_object_and_bad_values():
    assert problems_of([1]) == ["A workflow definition must be an object (a JSON object or a YAML mapping)."]
    problems = problems_of({"id": "has space", "places": [], "transitions": {}})
    assert any("slug" in p for p in problems) and any("places" in p for p in problems)
    assert any("transitions" in p for p in problems)
    problems = problems_of({"id": "w", "places": [{"id": "a", "kind": "weird", "capacity": 0}], "initial_place": "a",
                            "transitions": [{"id": "t", "from_places": ["a"], "to_place": "a", "delay": "soon",
                                             "automatic": "yes"}]})
    assert any("kind 'weird'" in p for p in problems) and any("capacity 0" in p for p in problems)
    assert any("delay 'soon'" in p for p in problems) and any("automatic" in p for p in problems)


def test_durations():
    assert parse_duration("24h") == 86400 and parse_duration("1h30m") == 5400 and parse_duration(90) == 90
    assert parse_duration("500ms") == 0.5 and parse_duration("2.5") == 2.5
    assert parse_duration("soon") is None and parse_duration(-1) is None and parse_duration("5x") is None
    assert format_duration(86400) == "1d" and format_duration(5400) == "90m" and format_duration(0.5) == 0.5


def test_the_parallel_review_loads_as_a_split_and_a_join():
    net = net_from(PARALLEL_REVIEW)
    assert [a.place for a in net.transition("split").outputs] == ["legal", "technical"]
    assert [a.place for a in net.transition("merge").inputs] == ["legal_done", "technical_done"]
    assert net.final_places == ("merged",) and net.initial == {"submitted": 1}


@settings(max_examples=150, deadline=None)
@given(random_nets())
def test_export_loads_back_to_the_same_net(net):
    assert net_from(export_definition(net)) == net_from(export_definition(net_from(export_definition(net))))
    exported = export_definition(net)
    assert net_from(exported).transitions == net.transitions
    assert net_from(exported).initial_marking == net.initial_marking


def test_export_of_the_original_shape_round_trips():
    for raw in (DOCUMENT_REVIEW, PARALLEL_REVIEW):
        net = net_from(raw)
        assert net_from(export_definition(net)) == net


def test_the_engine_is_pure_python():
    import subprocess
    import sys

    code = ("import sys, apps.workflows.engine; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'graphene', 'rest_framework')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
