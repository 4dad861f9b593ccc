"""Task inference for task_specific routing, from the last user message."""

from __future__ import annotations

import pytest

from apps.gateway.task_inference import infer_task


@pytest.mark.parametrize(("text", "task"), [
    ("```python\nprint(1)\n```\nwhy does this fail?", "coding"),
    ("Fix this bug in my function", "coding"),
    ("Write a SQL query for monthly revenue", "coding"),
    ("Analyze the quarterly data and explain why sales dropped", "analysis"),
    ("Compare PostgreSQL and MySQL", "analysis"),
    ("Write a poem about the sea", "creative"),
    ("Imagine a story about a dragon", "creative"),
    ("Prove that the square root of 2 is irrational, step by step", "reasoning"),
    ("Hello, how are you?", "general"),
    ("", "general"),
])
def test_infer_task(text, task):
    messages = [{"role": "system", "content": "Write a poem"}, {"role": "assistant", "content": "```code```"},
                {"role": "user", "content": text}]
    assert infer_task(messages) == task


def test_infer_task_reads_text_parts_and_long_messages():
    assert infer_task([{"role": "user", "content": [{"type": "text", "text": "debug my python"}]}]) == "coding"
    long = "lorem ipsum " * 20_000 + "write me a haiku"
    assert infer_task([{"role": "user", "content": long}]) == "creative"
    assert infer_task(None) == "general"
