"""Prompt templates: the original's single-brace placeholders, rendered in jinja2's sandbox over plain data."""

from __future__ import annotations

import pytest

from apps.agents.templates import TemplateInvalid, TemplateVariableMissing, render

TOKEN = {"topic": "owls", "content": "Owls hunt at night.", "token_id": "t-1", "current_place": "write",
         "workflow_id": "content_pipeline", "input_data": {"topic": "owls", "n": 2}, "token_metadata": {"by": "ana"},
         "history_count": 3, "data": {"outline": ["intro", "body"], "meta": {"words": 12}},
         "flag": True, "nothing": None, "ratio": 0.5}


@pytest.mark.parametrize(("template", "expected"), [
    ("{topic}", "owls"),
    ("{content}", "Owls hunt at night."),
    ("{token_id} in {current_place} of {workflow_id}", "t-1 in write of content_pipeline"),
    ("{input_data}", '{"topic": "owls", "n": 2}'),
    ("{token_metadata}", '{"by": "ana"}'),
    ("{history_count} events", "3 events"),
    ("{data.outline}", '["intro", "body"]'),
    ("{data.outline.1}", "body"),
    ("{data.meta.words} words", "12 words"),
    ("{flag} {nothing} {ratio}", "true null 0.5"),
    ("{{topic}} is {topic}", "{topic} is owls"),
    ('Answer as {"key": 1} about { topic }', 'Answer as {"key": 1} about owls'),
    ("{% raw %}{# not a comment #}{{ 7 * 7 }}", "{% raw %}{# not a comment #}{ 7 * 7 }"),
    ("", ""),
])
def test_placeholders(template, expected):
    assert render(template, TOKEN) == expected


@pytest.mark.parametrize("template", ["{missing}", "{data.missing}", "{data.outline.5}", "{topic.x}",
                                      "{data.keys}", "{data.items}", "{data.outline.append}"])
def test_a_missing_variable_is_an_error_naming_it(template):
    with pytest.raises(TemplateVariableMissing) as raised:
        render(template, TOKEN)
    assert template in raised.value.message and raised.value.status == 400


@pytest.mark.parametrize("template", ["{__class__}", "{data.__class__.__mro__}", "{_private}",
                                      "{data._x}", "{topic.__len__}", "{input_data.__init__.__globals__}"])
def test_sandbox_escapes_are_refused(template):
    with pytest.raises(TemplateInvalid) as raised:
        render(template, TOKEN)
    assert "reserved" in raised.value.message


def test_python_objects_are_never_reached():
    class Secret:
        password = "hunter2"  # noqa: S105 - what a template must not reach

    # Only plain data is rendered: an attribute of an object is not a variable, however it is named.
    with pytest.raises(TemplateVariableMissing):
        render("{obj.password}", {"obj": Secret()})
    assert "hunter2" not in render("{{obj.password}}", {"obj": Secret()})
