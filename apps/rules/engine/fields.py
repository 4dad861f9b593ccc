"""Field paths: dotted names into the facts (`data.review.score`, `metadata.priority`, `items.0`).

Resolution of the first segment:
- `data` / `metadata` name that fact explicitly (`data.status` is `facts["data"]["status"]`);
- otherwise the segment is looked up in `metadata`, then in `data` (the original engine's order for bare
  names), then among the caller's other top-level facts (`token`, `event`, …): the first that has the key wins,
  even when its value is null.
Later segments index a mapping by key, or a list by a non-negative integer (`items.0`).
"""

from __future__ import annotations

import re

MAX_PATH_LENGTH = 256
MAX_PATH_SEGMENTS = 32
EXPLICIT_ROOTS = ("data", "metadata")

_SEGMENT = re.compile(r"^[^.\s][^.]*$")


class _Missing:
    """A field that is not there (distinct from a field whose value is null)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


def path_problems(path) -> list[str]:
    """What is wrong with `path` as a field path (empty when nothing is)."""
    if not isinstance(path, str):
        return [f"a field must be a string path like 'data.status', not {type(path).__name__}"]
    if not path.strip():
        return ["a field path must not be empty"]
    if len(path) > MAX_PATH_LENGTH:
        return [f"field path is {len(path)} characters, more than the {MAX_PATH_LENGTH} allowed"]
    segments = path.split(".")
    if len(segments) > MAX_PATH_SEGMENTS:
        return [f"field path {path!r} has {len(segments)} segments, more than the {MAX_PATH_SEGMENTS} allowed"]
    if any(not _SEGMENT.match(segment) for segment in segments):
        return [f"field path {path!r} has an empty segment or one starting with a space "
                "(write segments separated by single dots, e.g. 'data.review.score')"]
    return []


def resolve(facts: dict, path: str) -> tuple[object, str]:
    """The value at `path` (or `MISSING`) and where it was found, as a dotted path from the facts' root."""
    head, *rest = path.split(".")
    if head in EXPLICIT_ROOTS and rest:
        value, where = facts.get(head, MISSING), [head]
    else:
        for name in ("metadata", "data"):
            holder = facts.get(name)
            if isinstance(holder, dict) and head in holder:
                value, where = holder[head], [name, head]
                break
        else:
            value, where = facts.get(head, MISSING), [head]
    for segment in rest:
        if value is MISSING:
            break
        value = _step(value, segment)
        where.append(segment)
    return value, ".".join(where)


def value_at(facts: dict, segments: tuple[str, ...]):
    """`resolve(facts, path)[0]` for a path already split at its dots, without recording where (hot paths)."""
    head = segments[0]
    if len(segments) == 1 and "metadata" not in facts and "data" not in facts:
        return facts.get(head, MISSING)
    if head in EXPLICIT_ROOTS and len(segments) > 1:
        value = facts.get(head, MISSING)
    else:
        for name in ("metadata", "data"):
            holder = facts.get(name)
            if isinstance(holder, dict) and head in holder:
                value = holder[head]
                break
        else:
            value = facts.get(head, MISSING)
    for segment in segments[1:]:
        if value is MISSING:
            break
        value = _step(value, segment)
    return value


def _step(value, segment: str):
    if isinstance(value, dict):
        return value.get(segment, MISSING)
    if isinstance(value, (list, tuple)) and segment.isdigit():
        index = int(segment)
        return value[index] if index < len(value) else MISSING
    return MISSING

