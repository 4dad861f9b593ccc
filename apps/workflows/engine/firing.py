"""The firing rule: on markings ({place: tokens}) and on tokens (which ones a firing consumes, which one
continues, which are created, with what data).

Token identity (documented in docs/architecture.md, "Workflows"):
- the tokens taken from each input place: the named token first when it sits there, then the oldest;
- the token that continues is the named one, else the first taken (input-arc order); it moves to the first
  output place and keeps its id; the other taken tokens are consumed into it;
- every further output unit (other output places, and weights > 1) is a new child token whose parents are the
  consumed tokens;
- data (and metadata): deep merge of the taken tokens' data in input-arc order (later wins on a clash,
  objects merge key by key), then the fire call's `data` patch; every produced token gets that data.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .net import Net, Transition


def enabled(net: Net, marking: Mapping[str, int], t: Transition) -> bool:
    """Every input place holds at least its arc's weight, and firing would not overfill a place with a capacity."""
    for arc in t.inputs:
        if marking.get(arc.place, 0) < arc.weight:
            return False
    return _within_capacity(net, marking, t)


def _within_capacity(net: Net, marking: Mapping[str, int], t: Transition) -> bool:
    for arc in t.outputs:
        capacity = net.place(arc.place).capacity
        if capacity is not None:
            taken = sum(a.weight for a in t.inputs if a.place == arc.place)
            if marking.get(arc.place, 0) - taken + arc.weight > capacity:
                return False
    return True


def enabled_transitions(net: Net, marking: Mapping[str, int]) -> list[Transition]:
    return [t for t in net.transitions if enabled(net, marking, t)]


def fire(marking: Mapping[str, int], t: Transition) -> dict[str, int]:
    """The marking after `t` fires (the caller checked it is enabled)."""
    after = {p: n for p, n in marking.items() if n}
    for arc in t.inputs:
        after[arc.place] = after.get(arc.place, 0) - arc.weight
        if after[arc.place] < 0:
            raise ValueError(f"transition {t.id!r} is not enabled: {arc.place!r} lacks tokens")
        if after[arc.place] == 0:
            del after[arc.place]
    for arc in t.outputs:
        after[arc.place] = after.get(arc.place, 0) + arc.weight
    return after


def missing_tokens(marking: Mapping[str, int], t: Transition) -> dict[str, int]:
    """{place: tokens lacking} for each input arc that is short."""
    return {arc.place: arc.weight - marking.get(arc.place, 0) for arc in t.inputs
            if marking.get(arc.place, 0) < arc.weight}


def deep_merge(base: Any, patch: Any) -> Any:
    """`patch` over `base`: objects merge key by key, recursively; anything else is replaced by the patch."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


@dataclass(frozen=True)
class TokenView:
    """What the engine needs of a token; `order` sorts the oldest first (arrival time, then id)."""

    id: str
    place: str
    data: dict = field(default_factory=dict, hash=False)
    metadata: dict = field(default_factory=dict, hash=False)
    order: Any = 0


@dataclass(frozen=True)
class Child:
    place: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class FiringPlan:
    transition: Transition
    taken: tuple[TokenView, ...]  # in input-arc order
    continuing: str | None  # id of the token that moves on (None when the transition has no output)
    continuing_to: str | None
    consumed: tuple[str, ...]  # taken tokens that end here (merged into the continuing one)
    children: tuple[Child, ...]
    data: dict = field(hash=False)  # merged, patch applied: every produced token's data
    metadata: dict = field(hash=False)

    @property
    def from_places(self) -> list[str]:
        return [arc.place for arc in self.transition.inputs]

    @property
    def to_places(self) -> list[str]:
        return [arc.place for arc in self.transition.outputs]


def select_tokens(t: Transition, tokens_by_place: Mapping[str, Sequence[TokenView]], *,
                  lead: str | None = None) -> list[TokenView] | None:
    """The tokens `t` would take (input-arc order; the lead token first in its place), or None when short."""
    taken: list[TokenView] = []
    for arc in t.inputs:
        available = sorted(tokens_by_place.get(arc.place, ()), key=lambda tok: tok.order)
        if lead is not None:
            available.sort(key=lambda tok: tok.id != lead)  # stable: the lead first, the rest oldest first
        if len(available) < arc.weight:
            return None
        taken.extend(available[:arc.weight])
    return taken


def merged_data(taken: Sequence[TokenView], patch: dict | None = None) -> tuple[dict, dict]:
    data: dict = {}
    metadata: dict = {}
    for token in taken:
        data = deep_merge(data, token.data or {})
        metadata = deep_merge(metadata, token.metadata or {})
    if patch:
        data = deep_merge(data, patch)
    return data, metadata


def plan(t: Transition, taken: Sequence[TokenView], *, lead: str | None = None,
         patch: dict | None = None) -> FiringPlan:
    """What firing `t` over `taken` (from `select_tokens`) does to tokens."""
    ids = [tok.id for tok in taken]
    continuing = lead if lead in ids else (ids[0] if ids else None)
    units = [arc.place for arc in t.outputs for _ in range(arc.weight)]
    if not units:
        continuing_to, consumed = None, tuple(ids)
        continuing = None
    else:
        continuing_to = units[0]
        consumed = tuple(i for i in ids if i != continuing)
    parents = tuple(ids)
    children = tuple(Child(place, parents) for place in units[1:])
    data, metadata = merged_data(taken, patch)
    return FiringPlan(t, tuple(taken), continuing, continuing_to, consumed, children, data, metadata)


def marking_of(tokens: Sequence[TokenView]) -> dict[str, int]:
    marking: dict[str, int] = {}
    for tok in tokens:
        marking[tok.place] = marking.get(tok.place, 0) + 1
    return marking
