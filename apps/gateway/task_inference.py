"""Which kind of task a chat request is (coding, analysis, creative, reasoning or general), from keywords in its
last user message: what `task_specific` routing matches against model tags when the request names no
task_type. Deterministic and bounded: set lookups over at most 8,000 characters."""

from __future__ import annotations

import re


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Per task: single words, word prefixes, and phrases. Matching is set lookups over the message's words (fast
# and linear), not one big regex. Ties go to the earlier task.
_TASK_RULES = (
    ("coding",
     _set("code coding function functions bug bugs python javascript typescript java rust golang sql regex "
          "traceback stacktrace exception script class def import html css json bash shell git "
          "api compiler programming"),
     ("debug", "compil", "refactor"),
     ("```", "stack trace", "unit test")),
    ("analysis",
     _set("compare comparison data dataset evaluate summarize summarise summary insight insights trend "
          "trends statistics statistic metrics"),
     ("analy", "assess"),
     ("explain why", "pros and cons", "trade-off", "tradeoff")),
    ("creative",
     _set("poem poems poetry story stories creative imagine fiction lyrics song haiku novel screenplay fable "
          "limerick sonnet"),
     (),
     ("fairy tale",)),
    ("reasoning",
     _set("prove proof math maths mathematics equation equations solve puzzle logic riddle calculate "
          "theorem"),
     (),
     ("step by step",)),
)
_WORDS = re.compile(r"[a-z]+")
_SCAN_CHARS = 4000  # of each end of a long message: enough to classify, bounded cost


def _last_user_text(messages) -> str:
    for message in reversed(messages or ()):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
        return ""
    return ""


def infer_task(messages) -> str:
    """coding | analysis | creative | reasoning | general, from keywords in the last user message.
    Deterministic; scans at most 8,000 characters. A code fence counts triple."""
    text = _last_user_text(messages)
    if len(text) > 2 * _SCAN_CHARS:
        text = text[:_SCAN_CHARS] + "\n" + text[-_SCAN_CHARS:]
    text = text.lower()
    words = set(_WORDS.findall(text))
    best, best_score = "general", 0
    for task, keywords, prefixes, phrases in _TASK_RULES:
        score = len(words & keywords)
        if prefixes:
            score += sum(1 for p in prefixes if any(w.startswith(p) for w in words))
        score += sum(3 if p == "```" else 1 for p in phrases if p in text)
        if score > best_score:
            best, best_score = task, score
    return best
