"""Input mappings (pure): fields by dotted path, templates keeping a single expression's JSON type, the sandbox,
the original's mode names, and what is refused at save time."""

from __future__ import annotations

import pytest

from apps.functions.mapping import MappingError, build_input, lookup, mapping_problems

FACTS = {"data": {"title": "Doc", "pages": 3, "tags": ["a", "b"], "author": {"name": "Ann"}},
         "event": {"type": "transition_fired", "to_places": ["review"]}, "instance_id": "i-1"}


def test_modes():
    assert build_input(None, FACTS) == FACTS["data"]
    assert build_input({"mode": "full_output"}, FACTS) == FACTS["data"]
    assert build_input({"mode": "event"}, FACTS) is FACTS
    assert build_input({"mode": "fields", "fields": {"who": "data.author.name", "first": "data.tags.0",
                                                     "gone": "data.nope.deeper", "place": "event.to_places.0"}},
                       FACTS) == {"who": "Ann", "first": "a", "gone": None, "place": "review"}
    assert build_input({"mode": "template", "template": {
        "n": "{{ data.pages * 2 }}", "text": "{{ data.title }} ({{ data.pages }} pages)", "tags": "{{ data.tags }}",
        "nested": [{"id": "{{ instance_id }}"}], "missing": "{{ data.nope }}", "plain": 5}}, FACTS) == {
        "n": 6, "text": "Doc (3 pages)", "tags": ["a", "b"], "nested": [{"id": "i-1"}], "missing": None,
        "plain": 5}
    assert lookup(FACTS, "data.tags.9") is None


def test_failures():
    with pytest.raises(MappingError, match="not an object"):
        build_input({"mode": "template", "template": "{{ data.pages }}"}, FACTS)
    with pytest.raises(MappingError, match="not an object"):
        build_input({"mode": "data"}, {"data": [1, 2]})
    with pytest.raises(MappingError):  # the sandbox refuses reaching into Python internals
        build_input({"mode": "template", "template": {"x": "{{ data.title.__class__.__mro__ }}"}}, FACTS)


@pytest.mark.parametrize(("mapping", "problem"), [
    ({"mode": "sometimes"}, "mode must be one of"),
    ({"mode": "fields"}, "fields must map"),
    ({"mode": "fields", "fields": {"a": 1}}, "fields must map"),
    ({"mode": "template"}, "template is required"),
    ({"mode": "template", "template": {"a": "{{ unclosed"}}, "template"),
    ({"mode": "data", "extra": 1}, "unknown key"),
    ([], "must be an object"),
])
def test_problems_found_at_save_time(mapping, problem):
    problems = mapping_problems(mapping)
    assert problems and problem in problems[0]
