"""The Petri net as frozen dataclasses: places, transitions with weighted input and output arcs, guards, an
initial marking and final places. Pure Python: no Django, Celery or graphene (an import-linter contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PLACE_KINDS = ("initial", "normal", "terminal", "error", "waiting", "review")


@dataclass(frozen=True)
class Place:
    id: str
    name: str = ""
    kind: str = "normal"
    capacity: int | None = None  # None: unbounded
    description: str = ""

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class Arc:
    place: str
    weight: int = 1


@dataclass(frozen=True)
class Transition:
    id: str
    inputs: tuple[Arc, ...]
    outputs: tuple[Arc, ...]
    name: str = ""
    description: str = ""
    # Guard pieces as written (JSON values); all of them must hold. `conditions` and `rules` are the original's
    # names, `guard` ours; they are kept apart only so an export reads like what was loaded.
    guard: Any = field(default=None, hash=False)
    conditions: tuple = field(default=(), hash=False)
    rules: tuple = field(default=(), hash=False)
    automatic: bool = False
    delay_seconds: float | None = None  # fires by itself once enabled this long
    # A `join: any` transition is saved as one transition per input place; `origin` names the one written.
    origin: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.id

    @property
    def guard_parts(self) -> list:
        """Every guard piece, for the rules engine (a list: all must hold; empty: always true)."""
        if self.guard in (None, [], {}):
            parts = []
        else:
            parts = list(self.guard) if isinstance(self.guard, list) else [self.guard]
        return [*parts, *self.conditions, *self.rules]

    @property
    def has_guard(self) -> bool:
        return bool(self.guard_parts)

    @property
    def timed(self) -> bool:
        return self.delay_seconds is not None


@dataclass(frozen=True)
class Net:
    id: str
    name: str
    places: tuple[Place, ...]
    transitions: tuple[Transition, ...]
    initial_marking: tuple[tuple[str, int], ...]  # (place, tokens), places in definition order
    final_places: tuple[str, ...]
    description: str = ""

    # Indexes built once per net (the dataclass is frozen, so they are cached on first use).
    def place(self, place_id: str) -> Place:
        return self._places()[place_id]

    def transition(self, transition_id: str) -> Transition:
        return self._transitions()[transition_id]

    def has_place(self, place_id: str) -> bool:
        return place_id in self._places()

    def has_transition(self, transition_id: str) -> bool:
        return transition_id in self._transitions()

    def transitions_named(self, name: str) -> list[Transition]:
        """The transition with this id, or every expansion of a `join: any` transition written with it."""
        if name in self._transitions():
            return [self._transitions()[name]]
        return [t for t in self.transitions if t.origin == name]

    @property
    def place_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.places)

    @property
    def initial(self) -> dict[str, int]:
        return dict(self.initial_marking)

    def is_final(self, marking: Mapping[str, int]) -> bool:
        """Final: at least one token, and every token in a final place."""
        finals = set(self.final_places)
        marked = [p for p, n in marking.items() if n > 0]
        return bool(marked) and all(p in finals for p in marked)

    def _places(self) -> dict[str, Place]:
        cached = self.__dict__.get("_place_index")
        if cached is None:
            cached = {p.id: p for p in self.places}
            object.__setattr__(self, "_place_index", cached)
        return cached

    def _transitions(self) -> dict[str, Transition]:
        cached = self.__dict__.get("_transition_index")
        if cached is None:
            cached = {t.id: t for t in self.transitions}
            object.__setattr__(self, "_transition_index", cached)
        return cached
