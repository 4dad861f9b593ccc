"""Analysis on nets with known behaviour: deadlocks, dead transitions, unbounded places, soundness, the cap."""

from __future__ import annotations

import time

from hypothesis import given, settings

from apps.workflows.engine import analyse, fire

from .nets import DOCUMENT_REVIEW, PARALLEL_REVIEW, chain, net_from, random_nets


def test_the_examples_are_sound():
    for raw in (DOCUMENT_REVIEW, PARALLEL_REVIEW, chain(10)):
        result = analyse(net_from(raw))
        assert result.sound, result.findings
        assert result.option_to_complete and result.proper_completion and result.no_dead_transitions
        assert result.bounded and not result.cap_hit and result.findings == []


def test_a_deadlock_is_found_with_a_path_that_reaches_it():
    # Two branches, but the join waits for a place only the other branch's alternative fills.
    net = net_from({"id": "w", "places": ["s", "a", "b", "c", "end"], "initial_place": "s", "final_places": ["end"],
                    "transitions": [{"id": "split", "from_places": ["s"], "to_places": ["a", "b"]},
                                    {"id": "left", "from_places": ["a"], "to_place": "c"},
                                    {"id": "right", "from_places": ["b"], "to_place": "end"},
                                    {"id": "join", "from_places": ["c", "b"], "to_place": "end"}]})
    result = analyse(net)
    assert not result.sound
    deadlocks = result.deadlocks
    assert deadlocks, result.findings
    for finding in deadlocks:
        marking = net.initial
        for step in finding.path:
            marking = fire(marking, net.transition(step))
        assert marking == finding.marking  # the path really reaches it
    assert any(f.kind == "improper_completion" for f in result.findings)  # `end` marked with `c` left over
    assert result.proper_completion is False


def test_a_dead_transition_is_reported():
    net = net_from({"id": "w", "places": ["a", "b", "never", "end"], "initial_place": "a", "final_places": ["end"],
                    "transitions": [{"id": "go", "from_places": ["a"], "to_place": "end"},
                                    {"id": "join", "from_places": ["a", "b"], "to_place": "never"},
                                    {"id": "b_fill", "from_places": ["never"], "to_place": "b"}]})
    result = analyse(net)
    assert set(result.dead_transitions) == {"join", "b_fill"} and result.no_dead_transitions is False
    assert not result.sound


def test_an_unbounded_place_is_reported_and_exploration_ends():
    net = net_from({"id": "w", "places": ["loop", "pile", "end"], "initial_place": "loop", "final_places": ["end"],
                    "transitions": [{"id": "grow", "from_places": ["loop"], "to_places": ["loop", "pile"]},
                                    {"id": "stop", "from_places": ["loop"], "to_place": "end"}]})
    result = analyse(net)
    assert result.unbounded_places == ["pile"] and not result.bounded and not result.sound
    finding = next(f for f in result.findings if f.kind == "unbounded_place")
    assert finding.path == ["grow"]
    assert not result.cap_hit


def test_the_cap_is_reported_and_withholds_the_verdict():
    # A bounded but large state space: 40 tokens spread over a chain of 5 places.
    raw = chain(5)
    raw["initial_place"] = None
    raw["initial_marking"] = {"s0": 40}
    del raw["initial_place"]
    result = analyse(net_from(raw), cap=500)
    assert result.cap_hit and result.explored == 500 and not result.sound
    assert result.option_to_complete is None
    assert any(f.kind == "cap" for f in result.findings)


def test_livelock_without_option_to_complete():
    net = net_from({"id": "w", "places": ["a", "b", "x", "y", "end"], "initial_place": "a", "final_places": ["end"],
                    "transitions": [{"id": "finish", "from_places": ["a"], "to_place": "end"},
                                    {"id": "wander", "from_places": ["a"], "to_place": "x"},
                                    {"id": "xy", "from_places": ["x"], "to_place": "y"},
                                    {"id": "yx", "from_places": ["y"], "to_place": "x"},
                                    {"id": "unused", "from_places": ["b"], "to_place": "end"}]})
    result = analyse(net)
    assert result.option_to_complete is False
    assert {tuple(f.marking) for f in result.findings if f.kind == "no_option_to_complete"} == {("x",), ("y",)}


def test_fifty_places_analyse_well_under_a_second():
    raw = chain(50)
    start = time.perf_counter()
    result = analyse(net_from(raw))
    assert result.sound and time.perf_counter() - start < 0.5


@settings(max_examples=100, deadline=None)
@given(random_nets())
def test_every_reported_path_replays_on_random_nets(net):
    result = analyse(net, cap=300)
    for finding in result.findings:
        if not finding.path:
            continue
        marking = net.initial
        for step in finding.path:
            marking = fire(marking, net.transition(step))
        if finding.kind != "unbounded_place":
            assert marking == finding.marking


def test_the_largest_net_accepted_analyses_quickly():
    from apps.workflows.engine.definition import MAX_PLACES

    start = time.perf_counter()
    result = analyse(net_from(chain(MAX_PLACES)))
    assert result.sound and time.perf_counter() - start < 2.0
    problems: list[str] = []
    from apps.workflows.engine import parse_definition

    parse_definition(chain(MAX_PLACES + 1), problems=problems)
    assert problems == [f"A workflow has at most {MAX_PLACES} places ({MAX_PLACES + 1} given)."]
