"""OpenRouter's `middle-out` transform: a conversation longer than the model's context window loses messages from
its middle (the start sets the task, the end is what is being asked), instead of being refused.

The window is the first candidate's (the requested model's), less the request's output cap. Kept always: the
leading system/developer messages, the first other message and the last one. An assistant message with tool
calls goes together with the tool results answering it, so no protocol sees a call without its answer or the
reverse. When even the kept messages do not fit, the request goes on unchanged and routing refuses it
(`context_length`) as it would without the transform.
"""

from __future__ import annotations

from collections.abc import Sequence

from .prompt_tokens import LazyPromptTokens, estimate_prompt_tokens
from .resolve import Candidate


def _units(messages: list) -> list[list[int]]:
    """Message indexes grouped so that a tool call and its results stay together."""
    units: list[list[int]] = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("tool", "function") and units:
            units[-1].append(index)
        else:
            units.append([index])
    return units


def fit(body: dict, candidates: Sequence[Candidate], max_output: int) -> dict:
    """`body` with middle messages dropped until its prompt fits the first candidate's window."""
    messages = body.get("messages")
    if not candidates or not isinstance(messages, list) or len(messages) < 3:
        return body
    model = candidates[0].model
    if not model.context_window:
        return body
    budget = model.context_window - (max_output or 0)
    if LazyPromptTokens(body, max_output=max_output or 0)(model) <= budget:  # no tokenizer when far below
        return body
    total = estimate_prompt_tokens(body, model)
    units = _units(messages)
    lead = 0
    while lead < len(units) and all(messages[i].get("role") in ("system", "developer") for i in units[lead]):
        lead += 1
    removable = list(range(lead + 1, len(units) - 1))  # keep the first other unit and the last one
    if not removable:
        return body
    # Middle first: alternate outwards from the centre of the removable range.
    centre = len(removable) // 2
    order = sorted(removable, key=lambda u: (abs(removable.index(u) - centre), u))
    dropped: set[int] = set()
    for unit in order:
        total -= estimate_prompt_tokens({"messages": [messages[i] for i in units[unit]]}, model)
        dropped.update(units[unit])
        if total <= budget:
            break
    return {**body, "messages": [m for i, m in enumerate(messages) if i not in dropped]}
