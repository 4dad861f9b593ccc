"""Answers in Anthropic's shapes: a whole `message` from an OpenAI `chat.completion`, usage, stop reasons, and
the error body every `ApiError` becomes on this ingress."""

from __future__ import annotations

import orjson

from apps.core.errors import ApiError
from apps.providers.adapters.base import tool_arguments

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
# Anthropic's error type for an HTTP status (https://docs.anthropic.com/en/api/errors); our own status is kept.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               409: "invalid_request_error", 413: "request_too_large", 422: "invalid_request_error",
               429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_object(error: ApiError) -> dict:
    """`{"type": "error", "error": {"type", "message"}}`; the type follows the status (our 401 for a missing key
    is OpenAI's `invalid_request_error`, Anthropic's `authentication_error`)."""
    return {"type": "error", "error": {"type": error_type(error.status), "message": error.message}}


def error_body(error: ApiError) -> bytes:
    return orjson.dumps(error_object(error))


def message_id(request_id: str) -> str:
    """Anthropic's `msg_…` ids; ours carries the request id (`req_<hex>`), so the two can be matched."""
    return "msg_" + request_id.removeprefix("req_")


def usage(openai_usage: dict | None) -> dict:
    """OpenAI usage → Anthropic's: cache reads and writes are counted apart from `input_tokens`."""
    openai_usage = openai_usage or {}
    details = openai_usage.get("prompt_tokens_details") or {}
    cache_read = int(details.get("cached_tokens") or 0)
    cache_write = int(details.get("cache_write_tokens") or 0)
    prompt = int(openai_usage.get("prompt_tokens") or 0)
    return {"input_tokens": max(0, prompt - cache_read - cache_write),
            "output_tokens": int(openai_usage.get("completion_tokens") or 0),
            "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read}


def stop_reason(choice: dict, stop_sequences: list[str]) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). OpenAI's protocol does not say whether "stop" was a stop sequence;
    OpenAI-compatible servers that do (vLLM's `stop_reason`) are believed, others read as `end_turn`."""
    finish = choice.get("finish_reason") or "stop"
    matched = choice.get("stop_reason")
    if finish == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish, "end_turn"), None


def tool_use_block(call: dict) -> dict:
    function = call.get("function") or {}
    return {"type": "tool_use", "id": call.get("id") or "", "name": function.get("name", ""),
            "input": tool_arguments(function.get("arguments"))}


def message(completion: dict, *, request_id: str, stop_sequences: list[str]) -> dict:
    """An OpenAI `chat.completion` → Anthropic's `message`."""
    choice = (completion.get("choices") or [{}])[0]
    reply = choice.get("message") or {}
    content: list[dict] = []
    if reply.get("content"):
        content.append({"type": "text", "text": reply["content"]})
    content.extend(tool_use_block(call) for call in reply.get("tool_calls") or [])
    reason, sequence = stop_reason(choice, stop_sequences)
    return {"id": message_id(request_id), "type": "message", "role": "assistant", "model": completion.get("model"),
            "content": content, "stop_reason": reason, "stop_sequence": sequence,
            "usage": usage(completion.get("usage"))}
