"""`function_run_now` (what agents call for a tool): runs in this process, checks both schemas, records the
execution; `tool_specs` describes functions as OpenAI tools."""

from __future__ import annotations

import pytest

from apps.functions import selectors, services
from tests import factories

pytestmark = pytest.mark.django_db

WORDS_IN = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
            "additionalProperties": False}
WORDS_OUT = {"type": "object", "required": ["words", "reading_time_minutes"],
             "properties": {"words": {"type": "integer"}, "reading_time_minutes": {"type": "integer"}}}


def word_count(tenant, **extra):
    function, _ = services.function_create(tenant, fields={
        "name": "word count", "runtime": "python", "description": "Count the words of a text.",
        "config": {"callable": "apps.functions.builtins.word_count"}, "input_schema": WORDS_IN,
        "output_schema": WORDS_OUT, **extra})
    return function


def test_run_now_runs_in_process_and_records_the_execution():
    tenant = factories.tenant("fn-run-now")
    function = word_count(tenant)
    execution = services.function_run_now(tenant, function_id=function.id, input={"text": "one two three"},
                                          trigger="agent", context={"agent_execution_id": "run-1"})
    assert execution.status == "completed", execution.error
    assert execution.output == {"words": 3, "reading_time_minutes": 1}
    assert execution.attempts == 1 and execution.trigger == "agent" and execution.agent_execution_id == "run-1"
    assert execution.started_at and execution.finished_at and execution.duration_ms is not None
    assert execution.logs[0]["outcome"] == "ok"


def test_run_now_records_input_and_output_schema_failures():
    tenant = factories.tenant("fn-run-now-schema")
    function = word_count(tenant)
    bad_in = services.function_run_now(tenant, function_id=function.id, input={"text": 3})
    assert bad_in.status == "failed" and bad_in.error_code == "input_invalid"
    assert "text: 3 is not of type 'string'" in bad_in.error
    strict_out = word_count(tenant, name="strict out", output_schema={
        "type": "object", "properties": {"words": {"type": "string"}}})
    bad_out = services.function_run_now(tenant, function_id=strict_out.id, input={"text": "a b"})
    assert bad_out.status == "failed" and bad_out.error_code == "output_invalid"
    assert "words: 2 is not of type 'string'" in bad_out.error


def test_tool_specs_sanitise_names_and_map_back():
    tenant = factories.tenant("fn-tools")
    first = word_count(tenant)
    second = word_count(tenant, name="word.count")
    other = word_count(factories.tenant("fn-tools-other"))
    disabled = word_count(tenant, name="off", enabled=False)
    specs = selectors.tool_specs(tenant, [first.id, str(second.id), other.id, disabled.id, "nonsense"])
    assert [s["function"]["name"] for s in specs] == ["word_count", "word_count_2"]
    assert specs[0] == {"type": "function", "function": {"name": "word_count",
                                                         "description": "Count the words of a text.",
                                                         "parameters": WORDS_IN}}
    schema_with_header = {"$schema": "https://json-schema.org/draft/2020-12/schema", **WORDS_IN}
    word_count(tenant, name="headed", input_schema=schema_with_header)
    assert selectors.tool_specs(tenant, ["headed"])[0]["function"]["parameters"] == WORDS_IN  # by name, too
    names = selectors.tool_names(tenant, [first.id, second.id])
    assert names["word_count"].id == first.id and names["word_count_2"].id == second.id


def test_run_now_retries_inline_with_backoff():
    tenant = factories.tenant("fn-run-now-retry")
    flaky, _ = services.function_create(tenant, fields={
        "name": "flaky", "runtime": "python", "config": {"callable": "tests.functions.callables.flaky"},
        "max_attempts": 3, "retry_delay_seconds": 0.2, "backoff": "linear", "retry_on": ["http_5xx"]})
    execution = services.function_run_now(tenant, function_id=flaky.id, input={"succeed_on": 3, "code": "http_5xx"})
    assert execution.status == "completed" and execution.attempts == 3 and execution.output == {"attempt": 3}
    assert [entry["outcome"] for entry in execution.logs] == ["http_5xx", "http_5xx", "ok"]
    failing = services.function_run_now(tenant, function_id=flaky.id, input={"code": "exit_code"})
    assert failing.status == "failed" and failing.attempts == 1 and failing.error_code == "exit_code"
    short = services.function_run_now(tenant, function_id=flaky.id, input={"succeed_on": 1}, timeout=0.5)
    assert short.timeout_seconds == 0.5 and short.status == "completed"
