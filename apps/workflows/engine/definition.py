"""Definitions in both shapes -> `Net`, and `Net` -> the canonical shape (which loads back to the same net).

Our shape: `places: [{id, name, kind, capacity}]`, `transitions: [{id, name, description, inputs: [{place, weight}],
outputs: [...], guard, automatic, delay}]`, `initial_marking: {place: tokens}`, `final_places: [...]`.
The original's shape is accepted as written: `places: [ids]`, `transitions: [{id, from_places | fromPlaces,
to_place | toPlace, conditions, rules}]`, `initial_place | initialPlace`. Several `from_places` are an AND-join;
`join: any` keeps the original's "from any of these" (saved as one transition per input place); `to_places` is an
AND-split. Parsing collects every problem instead of stopping at the first.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .net import PLACE_KINDS, Arc, Net, Place, Transition

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
EXPANSION_SEPARATOR = "~"  # `review~draft`: the `join: any` transition `review` taking from `draft`
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
MAX_PLACES, MAX_TRANSITIONS = 500, 1000  # keeps saving (and its analysis) quick whatever is submitted
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

TOP_KEYS = {"id": "id", "workflow_id": "id", "workflowId": "id", "name": "name", "description": "description",
            "places": "places", "transitions": "transitions", "initial_marking": "initial_marking",
            "initialMarking": "initial_marking", "initial_place": "initial_place", "initialPlace": "initial_place",
            "initial_places": "initial_marking", "initialPlaces": "initial_marking",
            "final_places": "final_places", "finalPlaces": "final_places"}
PLACE_KEYS = {"id", "name", "kind", "type", "capacity", "description"}
TRANSITION_KEYS = {"id": "id", "name": "name", "description": "description", "inputs": "inputs",
                   "from_places": "inputs", "fromPlaces": "inputs", "from_place": "inputs", "fromPlace": "inputs",
                   "outputs": "outputs", "to_place": "outputs", "toPlace": "outputs", "to_places": "outputs",
                   "toPlaces": "outputs", "join": "join", "guard": "guard", "conditions": "conditions",
                   "rules": "rules", "automatic": "automatic", "auto": "automatic", "delay": "delay",
                   "delay_seconds": "delay"}


def parse_definition(raw: Any, *, problems: list[str]) -> Net | None:
    """The net `raw` describes; problems found are appended to `problems` (the net is still returned when its
    shape allowed building one, so structural checks can add theirs)."""
    if not isinstance(raw, dict):
        problems.append("A workflow definition must be an object (a JSON object or a YAML mapping).")
        return None
    top = _canonical_keys(raw, TOP_KEYS, "workflow", problems)
    workflow_id = top.get("id")
    if not isinstance(workflow_id, str) or not SLUG_RE.match(workflow_id):
        problems.append("The workflow id must be a slug (letters, digits, '_' and '-', up to 64), "
                        f"got {workflow_id!r}.")
        workflow_id = str(workflow_id or "")
    name = _text(top.get("name", ""), "the workflow's name", problems) or workflow_id
    description = _text(top.get("description", ""), "the workflow's description", problems)

    places = _places(top.get("places"), problems)
    known = {p.id for p in places}
    transitions = _transitions(top.get("transitions"), problems)
    initial_given = "initial_marking" in top or "initial_place" in top
    initial = _initial_marking(top, places, problems)
    # A place holding the initial token is of kind `initial` unless it says otherwise (the original's shape
    # cannot say).
    places = [Place(p.id, p.name, "initial", p.capacity, p.description)
              if p.id in dict(initial) and p.kind == "normal" and initial_given else p for p in places]
    finals = _final_places(top.get("final_places"), places, transitions, problems)
    for place_id in [*(p for p, _ in initial), *finals]:
        if known and place_id not in known:
            problems.append(f"Unknown place {place_id!r} in the initial marking or final places.")
    finals_set = set(finals)
    places = [Place(p.id, p.name, "terminal", p.capacity, p.description)
              if p.id in finals_set and p.kind == "normal" else p for p in places]
    return Net(id=workflow_id, name=name, description=description, places=tuple(places),
               transitions=tuple(transitions), initial_marking=tuple(initial), final_places=tuple(finals))


def _canonical_keys(raw: dict, keys: dict, what: str, problems: list[str]) -> dict:
    out: dict = {}
    for key, value in raw.items():
        canonical = keys.get(key)
        if canonical is None:
            problems.append(f"Unknown field {key!r} in {what}.")
        elif canonical in out:
            problems.append(f"{what.capitalize()} gives {canonical!r} twice (under different names).")
        else:
            out[canonical] = value
    return out


def _text(value, what: str, problems: list[str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{what.capitalize()} must be a string.")
        return ""
    return value


def _places(raw, problems: list[str]) -> list[Place]:
    if not isinstance(raw, list) or not raw:
        problems.append("`places` must be a non-empty list (of ids, or of objects with an `id`).")
        return []
    if len(raw) > MAX_PLACES:
        problems.append(f"A workflow has at most {MAX_PLACES} places ({len(raw)} given).")
        return []
    places: list[Place] = []
    seen: set[str] = set()
    for index, written in enumerate(raw):
        item = {"id": written} if isinstance(written, str) else written
        if not isinstance(item, dict):
            problems.append(f"Place #{index + 1} must be an id or an object.")
            continue
        for key in item:
            if key not in PLACE_KEYS:
                problems.append(f"Unknown field {key!r} in place {item.get('id', index + 1)!r}.")
        place_id = item.get("id")
        if not isinstance(place_id, str) or not ID_RE.match(place_id):
            problems.append(f"Place #{index + 1} needs an id of letters, digits, '_', '.' or '-', got {place_id!r}.")
            continue
        if place_id in seen:
            problems.append(f"Duplicate place id {place_id!r}.")
            continue
        seen.add(place_id)
        kind = item.get("kind", item.get("type", "normal"))
        if kind not in PLACE_KINDS:
            problems.append(f"Place {place_id!r} has kind {kind!r}; kinds are {', '.join(PLACE_KINDS)}.")
            kind = "normal"
        capacity = item.get("capacity")
        if capacity is not None and (not _is_int(capacity) or capacity < 1):
            problems.append(f"Place {place_id!r} has capacity {capacity!r}; it must be a whole number >= 1.")
            capacity = None
        places.append(Place(place_id, _text(item.get("name"), f"place {place_id!r}'s name", problems), kind,
                            capacity, _text(item.get("description"), f"place {place_id!r}'s description", problems)))
    return places


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _arcs(raw, transition_id: str, side: str, problems: list[str]) -> list[Arc]:
    if raw is None:
        return []
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list):
        problems.append(f"Transition {transition_id!r}: {side} must be a place id or a list of them.")
        return []
    arcs: dict[str, int] = {}
    for item in raw:
        place, weight = (item, 1) if isinstance(item, str) else (None, None)
        if isinstance(item, dict):
            extra = set(item) - {"place", "weight"}
            if extra:
                problems.append(f"Transition {transition_id!r}: unknown field(s) {sorted(extra)} in an {side} arc.")
            place, weight = item.get("place"), item.get("weight", 1)
        if not isinstance(place, str) or not place:
            problems.append(f"Transition {transition_id!r}: an {side} arc needs a place id, got {item!r}.")
            continue
        if not _is_int(weight) or weight < 1:
            problems.append(f"Transition {transition_id!r}: the {side} arc to {place!r} has weight {weight!r}; "
                            f"weights are whole numbers >= 1.")
            continue
        arcs[place] = arcs.get(place, 0) + weight  # a place listed twice means weight 2
    return [Arc(p, w) for p, w in arcs.items()]


def parse_duration(value) -> float | None:
    """Seconds from 90, 1.5, "90s", "30m", "24h", "1d", "1h30m"; None when not a duration."""
    if _is_int(value) or isinstance(value, float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str | float:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return seconds


def _transitions(raw, problems: list[str]) -> list[Transition]:
    if not isinstance(raw, list):
        problems.append("`transitions` must be a list.")
        return []
    if len(raw) > MAX_TRANSITIONS:
        problems.append(f"A workflow has at most {MAX_TRANSITIONS} transitions ({len(raw)} given).")
        return []
    out: list[Transition] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"Transition #{index + 1} must be an object.")
            continue
        fields = _canonical_keys(item, TRANSITION_KEYS, f"transition {item.get('id', index + 1)!r}", problems)
        tid = fields.get("id")
        if not isinstance(tid, str) or not ID_RE.match(tid):
            problems.append(f"Transition #{index + 1} needs an id of letters, digits, '_', '.' or '-', got {tid!r}.")
            continue
        if tid in seen:
            problems.append(f"Duplicate transition id {tid!r}.")
            continue
        seen.add(tid)
        inputs = _arcs(fields.get("inputs"), tid, "input", problems)
        outputs = _arcs(fields.get("outputs"), tid, "output", problems)
        join = fields.get("join", "all")
        if join not in ("all", "any"):
            problems.append(f"Transition {tid!r}: join must be 'all' (AND-join) or 'any', got {join!r}.")
            join = "all"
        conditions, rules = fields.get("conditions") or [], fields.get("rules") or []
        for what, value in (("conditions", conditions), ("rules", rules)):
            if not isinstance(value, list):
                problems.append(f"Transition {tid!r}: {what} must be a list.")
        conditions = tuple(conditions) if isinstance(conditions, list) else ()
        rules = tuple(rules) if isinstance(rules, list) else ()
        automatic = fields.get("automatic", False)
        if not isinstance(automatic, bool):
            problems.append(f"Transition {tid!r}: automatic must be true or false.")
            automatic = False
        delay = None
        if fields.get("delay") is not None:
            delay = parse_duration(fields["delay"])
            if delay is None:
                problems.append(f"Transition {tid!r}: delay {fields['delay']!r} is not a duration "
                                "(seconds, or like '90s', '30m', '24h', '1d').")
        common = {"name": _text(fields.get("name"), f"transition {tid!r}'s name", problems),
                  "description": _text(fields.get("description"), f"transition {tid!r}'s description", problems),
                  "guard": fields.get("guard"), "conditions": conditions, "rules": rules,
                  "automatic": automatic, "delay_seconds": delay}
        if join == "any" and len(inputs) > 1:
            out.extend(Transition(f"{tid}{EXPANSION_SEPARATOR}{arc.place}", (arc,), tuple(outputs), origin=tid,
                                  **common) for arc in inputs)
        else:
            out.append(Transition(tid, tuple(inputs), tuple(outputs), **common))
    return out


def _initial_marking(top: dict, places: list[Place], problems: list[str]) -> list[tuple[str, int]]:
    raw = top.get("initial_marking")
    if raw is None and "initial_place" in top:
        raw = top["initial_place"]
    if raw is None:
        return [(p.id, 1) for p in places if p.kind == "initial"]
    if isinstance(raw, str):
        raw = [raw]
    marking: dict[str, int] = {}
    if isinstance(raw, list):
        for place in raw:
            if not isinstance(place, str):
                problems.append(f"The initial marking lists {place!r}, which is not a place id.")
                continue
            marking[place] = marking.get(place, 0) + 1
    elif isinstance(raw, dict):
        for place, count in raw.items():
            if not _is_int(count) or count < 0:
                problems.append(f"The initial marking gives {place!r} {count!r} tokens; counts are whole numbers.")
                continue
            if count:
                marking[place] = count
    else:
        problems.append("The initial marking must be a place id, a list of them, or {place: tokens}.")
    return list(marking.items())


def _final_places(raw, places: list[Place], transitions: list[Transition], problems: list[str]) -> list[str]:
    if raw is not None:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            problems.append("`final_places` must be a list of place ids.")
            return []
        return list(dict.fromkeys(raw))
    declared = [p.id for p in places if p.kind in ("terminal", "error")]
    if declared:
        return declared
    # The original had no final places: its sinks (no transition takes from them) are where a case ends.
    sources = {arc.place for t in transitions for arc in t.inputs}
    return [p.id for p in places if p.id not in sources]


def export_definition(net: Net) -> dict:
    """The canonical shape of `net`; `parse_definition` of it gives back an equal net."""
    out: dict[str, Any] = {"id": net.id, "name": net.name}
    if net.description:
        out["description"] = net.description
    out["places"] = [_export_place(p) for p in net.places]
    out["transitions"] = []
    emitted: set[str] = set()
    for t in net.transitions:
        if t.origin is None:
            out["transitions"].append(_export_transition(t, t.id, list(t.inputs)))
        elif t.origin not in emitted:
            emitted.add(t.origin)
            siblings = [s for s in net.transitions if s.origin == t.origin]
            exported = _export_transition(t, t.origin, [s.inputs[0] for s in siblings])
            exported["join"] = "any"
            out["transitions"].append(exported)
    out["initial_marking"] = dict(net.initial_marking)
    out["final_places"] = list(net.final_places)
    return out


def _export_place(place: Place) -> dict:
    out: dict[str, Any] = {"id": place.id}
    if place.name:
        out["name"] = place.name
    out["kind"] = place.kind
    if place.capacity is not None:
        out["capacity"] = place.capacity
    if place.description:
        out["description"] = place.description
    return out


def _export_arcs(arcs) -> list:
    return [a.place if a.weight == 1 else {"place": a.place, "weight": a.weight} for a in arcs]


def _export_transition(t: Transition, tid: str, inputs: list[Arc]) -> dict:
    out: dict[str, Any] = {"id": tid}
    if t.name:
        out["name"] = t.name
    if t.description:
        out["description"] = t.description
    out["inputs"] = _export_arcs(inputs)
    out["outputs"] = _export_arcs(t.outputs)
    if t.guard is not None:
        out["guard"] = t.guard
    if t.conditions:
        out["conditions"] = list(t.conditions)
    if t.rules:
        out["rules"] = list(t.rules)
    if t.automatic:
        out["automatic"] = True
    if t.delay_seconds is not None:
        out["delay"] = format_duration(t.delay_seconds)
    return out
