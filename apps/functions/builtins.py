"""Small functions every installation may use as `python` functions (`apps.functions.builtins.<name>`),
allowed by default. Each takes the input object and returns the output object."""

from __future__ import annotations

import math
import re

from django.utils.text import slugify as django_slugify

from .errors import RunError

WORDS_PER_MINUTE = 200
_WORD = re.compile(r"\b\w[\w'’-]*\b")


def _text(data: dict, key: str = "text") -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise RunError(f"`{key}` must be a string.", code="input_invalid")
    return value


def word_count(data: dict) -> dict:
    """{text} → {words, reading_time_minutes} (at 200 words a minute, rounded up; 0 for no words)."""
    words = len(_WORD.findall(_text(data)))
    return {"words": words, "reading_time_minutes": math.ceil(words / WORDS_PER_MINUTE)}


def text_stats(data: dict) -> dict:
    """{text} → {characters, words, sentences, paragraphs}."""
    text = _text(data)
    return {"characters": len(text), "words": len(_WORD.findall(text)),
            "sentences": len([s for s in re.split(r"[.!?]+(?:\s|$)", text) if s.strip()]),
            "paragraphs": len([p for p in re.split(r"\n\s*\n", text) if p.strip()])}


def slugify(data: dict) -> dict:
    """{text} → {slug}."""
    return {"slug": django_slugify(_text(data))}


def truncate(data: dict) -> dict:
    """{text, max_chars (default 280)} → {text, truncated}: cut at a word boundary, with an ellipsis."""
    text, limit = _text(data), data.get("max_chars", 280)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise RunError("`max_chars` must be a positive integer.", code="input_invalid")
    if len(text) <= limit:
        return {"text": text, "truncated": False}
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return {"text": cut.rstrip() + "…", "truncated": True}


def echo(data: dict) -> dict:
    """The input, unchanged (for wiring triggers and chains)."""
    return dict(data)


def merge(data: dict) -> dict:
    """{objects: [...]} → the objects merged left to right (shallow)."""
    objects = data.get("objects", [])
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise RunError("`objects` must be a list of objects.", code="input_invalid")
    merged: dict = {}
    for item in objects:
        merged.update(item)
    return merged
