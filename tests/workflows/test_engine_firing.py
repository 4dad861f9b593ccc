"""The firing rule on random nets: marking arithmetic, enabling, conservation, joins, splits, weights, and the
token-level plan agreeing with the marking-level rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.workflows.engine import TokenView, deep_merge, enabled, fire, plan, select_tokens
from apps.workflows.engine.firing import marking_of, merged_data

from .nets import net_from, random_nets

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def net_and_marking(draw, **kwargs):
    net = draw(random_nets(**kwargs))
    marking = {p.id: draw(st.integers(0, 6)) for p in net.places}
    return net, marking


@SETTINGS
@given(net_and_marking())
def test_enabled_exactly_when_every_input_place_holds_its_weight(case):
    net, marking = case
    for t in net.transitions:
        assert enabled(net, marking, t) == all(marking.get(a.place, 0) >= a.weight for a in t.inputs)


@SETTINGS
@given(net_and_marking())
def test_firing_subtracts_input_weights_and_adds_output_weights(case):
    net, marking = case
    for t in net.transitions:
        if not enabled(net, marking, t):
            with pytest.raises(ValueError, match="not enabled"):
                fire(marking, t)
            continue
        after = fire(marking, t)
        for place in net.place_ids:
            pre = sum(a.weight for a in t.inputs if a.place == place)
            post = sum(a.weight for a in t.outputs if a.place == place)
            assert after.get(place, 0) == marking.get(place, 0) - pre + post
        assert all(n > 0 for n in after.values())  # empty places are left out, never negative
        assert sum(after.values()) == sum(marking.values()) - sum(a.weight for a in t.inputs) + sum(
            a.weight for a in t.outputs)


@SETTINGS
@given(random_nets(state_machine=True), st.lists(st.integers(0, 100), max_size=30))
def test_one_in_one_out_nets_conserve_tokens(net, choices):
    marking = net.initial
    total = sum(marking.values())
    for choice in choices:
        ready = [t for t in net.transitions if enabled(net, marking, t)]
        if not ready:
            break
        marking = fire(marking, ready[choice % len(ready)])
        assert sum(marking.values()) == total


def tokens_for(marking: dict[str, int]) -> dict[str, list[TokenView]]:
    by_place: dict[str, list[TokenView]] = {}
    order = 0
    for place, count in marking.items():
        for _ in range(count):
            order += 1
            by_place.setdefault(place, []).append(
                TokenView(f"tok{order}", place, {"n": order, place: True, "nested": {place: order}}, {}, order))
    return by_place


@SETTINGS
@given(net_and_marking(), st.integers(0, 100), st.integers(0, 100))
def test_token_plan_agrees_with_the_marking_rule(case, pick_transition, pick_lead):
    net, marking = case
    ready = [t for t in net.transitions if enabled(net, marking, t)]
    if not ready:
        return
    t = ready[pick_transition % len(ready)]
    by_place = tokens_for(marking)
    candidates = [tok for arc in t.inputs for tok in by_place.get(arc.place, [])]
    lead = candidates[pick_lead % len(candidates)].id
    taken = select_tokens(t, by_place, lead=lead)
    assert taken is not None
    assert lead in [tok.id for tok in taken]  # the named token is always among those taken
    for arc in t.inputs:
        assert sum(1 for tok in taken if tok.place == arc.place) == arc.weight
    result = plan(t, taken, lead=lead)
    ids = {tok.id for tok in taken}
    units = sum(a.weight for a in t.outputs)
    if units:
        assert result.continuing == lead and result.continuing_to == t.outputs[0].place
        assert set(result.consumed) == ids - {lead}
        assert len(result.children) == units - 1
        assert all(set(child.parents) == ids for child in result.children)
    else:
        assert result.continuing is None and set(result.consumed) == ids and not result.children
    # Applying the plan to the tokens gives the marking the net-level rule gives.
    remaining = [tok for toks in by_place.values() for tok in toks if tok.id not in ids]
    produced = ([TokenView(lead, result.continuing_to)] if result.continuing else []) + [
        TokenView(f"child{i}", child.place) for i, child in enumerate(result.children)]
    assert marking_of(remaining + produced) == {p: n for p, n in fire(marking, t).items() if n}


def test_a_one_in_one_out_firing_moves_the_token_and_keeps_its_id():
    net = net_from({"id": "w", "places": ["a", "b"], "initial_place": "a",
                    "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"}]})
    tok = TokenView("only", "a", {"x": 1})
    result = plan(net.transition("go"), select_tokens(net.transition("go"), {"a": [tok]}), lead="only",
                  patch={"y": 2})
    assert (result.continuing, result.continuing_to, result.consumed, result.children) == ("only", "b", (), ())
    assert result.data == {"x": 1, "y": 2}


def test_and_join_needs_a_token_in_each_input_and_merges_data_in_arc_order_then_the_patch():
    net = net_from({"id": "w", "places": ["legal", "tech", "merged"], "initial_marking": ["legal", "tech"],
                    "transitions": [{"id": "merge", "from_places": ["legal", "tech"], "to_place": "merged"}]})
    merge = net.transition("merge")
    assert not enabled(net, {"legal": 1}, merge)
    assert enabled(net, {"legal": 1, "tech": 1}, merge)
    legal = TokenView("L", "legal", {"review": {"legal": "ok", "by": "ann"}, "score": 1}, {"m": 1}, 2)
    tech = TokenView("T", "tech", {"review": {"tech": "ok", "by": "bob"}, "score": 2}, {"m": 2}, 1)
    result = plan(merge, select_tokens(merge, {"legal": [legal], "tech": [tech]}, lead="T"), lead="T",
                  patch={"review": {"final": True}})
    assert result.continuing == "T" and result.consumed == ("L",)
    assert result.data == {"review": {"legal": "ok", "tech": "ok", "by": "bob", "final": True}, "score": 2}
    assert result.metadata == {"m": 2}


def test_and_split_continues_to_the_first_output_and_creates_children_in_the_others():
    net = net_from({"id": "w", "places": ["in", "legal", "tech"], "initial_place": "in",
                    "final_places": ["legal", "tech"],
                    "transitions": [{"id": "split", "from_places": ["in"], "to_places": ["legal", "tech"]}]})
    tok = TokenView("doc", "in", {"title": "x"})
    result = plan(net.transition("split"), [tok], lead="doc")
    assert result.continuing == "doc" and result.continuing_to == "legal"
    assert [(c.place, c.parents) for c in result.children] == [("tech", ("doc",))]
    assert result.data == {"title": "x"}


def test_weights_take_and_produce_that_many_tokens_oldest_first():
    net = net_from({"id": "w", "places": ["a", "b"], "initial_marking": {"a": 3}, "final_places": ["b"],
                    "transitions": [{"id": "pair", "inputs": [{"place": "a", "weight": 2}],
                                     "outputs": [{"place": "b", "weight": 3}]}]})
    pair = net.transition("pair")
    tokens = [TokenView(f"k{i}", "a", {}, {}, order) for i, order in enumerate((3, 1, 2))]
    assert not enabled(net, {"a": 1}, pair)
    taken = select_tokens(pair, {"a": tokens})
    assert [t.id for t in taken] == ["k1", "k2"]
    result = plan(pair, taken)
    assert result.continuing == "k1" and result.consumed == ("k2",) and len(result.children) == 2
    assert fire({"a": 3}, pair) == {"a": 1, "b": 3}


def test_capacity_disables_a_transition_that_would_overfill():
    net = net_from({"id": "w", "places": ["a", {"id": "b", "capacity": 1}], "initial_marking": {"a": 2},
                    "final_places": ["b"], "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"}]})
    assert enabled(net, {"a": 2}, net.transition("go"))
    assert not enabled(net, {"a": 1, "b": 1}, net.transition("go"))


@given(st.recursive(st.none() | st.integers() | st.text(max_size=3),
                    lambda children: st.dictionaries(st.text(max_size=3), children, max_size=3), max_leaves=10),
       st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))
def test_deep_merge_keeps_base_keys_and_patch_wins(base, patch):
    merged = deep_merge(base, patch)
    if isinstance(base, dict):
        assert set(merged) == set(base) | set(patch)
        for key, value in patch.items():
            assert merged[key] == value
    else:
        assert merged == patch


def test_merged_data_of_no_tokens_is_the_patch():
    assert merged_data([], {"a": 1}) == ({"a": 1}, {})
