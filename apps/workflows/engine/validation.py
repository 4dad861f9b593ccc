"""Structural checks made before a definition is saved: one message per problem."""

from __future__ import annotations

from collections.abc import Callable

from .net import Net

# compile_guard(parts) -> problems (empty when the guard compiles); the rules engine is passed in by the caller
# so this module stays free of it and of its named rules.
GuardCompiler = Callable[[list], list[str]]


def structural_problems(net: Net, *, compile_guard: GuardCompiler | None = None) -> list[str]:
    problems: list[str] = []
    places = {p.id: p for p in net.places}
    for t in net.transitions:
        written = t.origin or t.id
        if not t.inputs:
            problems.append(f"Transition {written!r} has no input place; every transition takes from one.")
        for side, arcs in (("input", t.inputs), ("output", t.outputs)):
            for arc in arcs:
                if arc.place not in places:
                    problems.append(f"Transition {written!r}: unknown {side} place {arc.place!r}.")
    if not net.initial_marking:
        problems.append("No initial marking: name an `initial_place`, an `initial_marking` or a place of kind "
                        "'initial'.")
    if not net.final_places:
        problems.append("No final place: name `final_places` or give places of kind 'terminal'.")
    for place_id, count in net.initial_marking:
        capacity = places[place_id].capacity if place_id in places else None
        if capacity is not None and count > capacity:
            problems.append(f"The initial marking puts {count} tokens in {place_id!r}, whose capacity is {capacity}.")
    if problems:
        return problems  # reachability over a broken graph would only repeat these
    reached = structurally_reachable(net)
    for place in net.places:
        if place.id not in reached:
            problems.append(f"Place {place.id!r} is unreachable from the initial marking.")
    if not any(p in reached for p in net.final_places):
        problems.append("No final place is reachable from the initial marking.")
    if compile_guard is not None:
        compiled: set[str] = set()
        for t in net.transitions:
            written = t.origin or t.id
            if t.has_guard and written not in compiled:
                compiled.add(written)
                problems.extend(f"Transition {written!r}: {problem}" for problem in compile_guard(t.guard_parts))
    return problems


def structurally_reachable(net: Net) -> set[str]:
    """Places that can ever be marked if counts and guards are ignored: a transition counts once every input
    place can be marked (an AND-join needs all of them), so what is missing here is missing for real."""
    reached = {p for p, n in net.initial_marking if n > 0}
    pending = list(net.transitions)
    changed = True
    while changed:
        changed = False
        rest = []
        for t in pending:
            if all(arc.place in reached for arc in t.inputs):
                for arc in t.outputs:
                    if arc.place not in reached:
                        reached.add(arc.place)
                changed = True
            else:
                rest.append(t)
        pending = rest
    return reached
