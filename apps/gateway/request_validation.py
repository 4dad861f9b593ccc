"""Validation of /v1 request bodies: OpenAI's rules, OpenAI's error messages, no library on the hot path."""

from __future__ import annotations

import re

from apps.core.errors import InvalidRequest

from .openrouter_fields import check_openrouter_fields

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_NUMBER = (int, float)
# Nesting deeper than this is refused (a 300-deep `metadata` once failed while encoding the upstream body: orjson
# stops at 255); tool schemas and content parts stay far below it.
MAX_DEPTH = 64
METADATA_MAX_KEYS = 64
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_VALUE_CHARS = 4096


def invalid(message: str, param: str | None, code: str | None = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _type_error(param: str, expected: str) -> InvalidRequest:
    return invalid(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def _check_number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise _type_error(name, "a number")
    if not low <= value <= high:
        raise invalid(f"Invalid '{name}': {value} is not between {low} and {high}.", name)


def _check_int(body: dict, name: str, low: int = 1, high: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an integer")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise invalid(f"Invalid '{name}': must be {bound}.", name)


def _check_bool(body: dict, name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _type_error(name, "a boolean")


def _check_content(content, param: str, role: str) -> None:
    if content is None:
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _type_error(param, "a string or an array of content parts")
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        if not isinstance(part, dict):
            raise _type_error(where, "an object")
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _type_error(f"{where}.text", "a string")
        elif kind == "image_url":
            if role != "user":
                raise invalid(f"Image content parts are only allowed in user messages ({where}).", where)
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url.startswith(("data:", "https://", "http://")):
                raise invalid(f"Invalid '{where}.image_url.url': expected an https:// or data: URL.",
                              f"{where}.image_url.url")
        elif kind in ("input_audio", "file", "refusal"):
            continue
        else:
            raise invalid(f"Invalid value for '{where}.type': {kind!r}.", f"{where}.type")


def _check_messages(messages) -> None:
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array")
    if not messages:
        raise invalid("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages",
                      "empty_array")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _type_error(where, "an object")
        role = message.get("role")
        if role is None:
            raise invalid(f"Missing required parameter: '{where}.role'.", f"{where}.role",
                          "missing_required_parameter")
        if role not in ROLES:
            raise invalid(f"Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', "
                          f"'assistant', 'tool' and 'function'.", f"{where}.role")
        content = message.get("content")
        if role in ("user", "system", "developer") and content is None:
            raise invalid(f"Missing required parameter: '{where}.content'.", f"{where}.content",
                          "missing_required_parameter")
        _check_content(content, f"{where}.content", role)
        if role == "assistant":
            calls = message.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list):
                    raise _type_error(f"{where}.tool_calls", "an array")
                for ci, call in enumerate(calls):
                    function = call.get("function") if isinstance(call, dict) else None
                    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                        raise invalid(f"Invalid '{where}.tool_calls[{ci}]': expected a function call with a name.",
                                      f"{where}.tool_calls[{ci}]")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise invalid(f"Missing required parameter: '{where}.tool_call_id'.", f"{where}.tool_call_id",
                          "missing_required_parameter")


def _check_tools(body: dict) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _type_error("tools", "an array")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise invalid(f"Invalid 'tools[{index}]': expected a function tool.", f"tools[{index}]")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid(f"Missing required parameter: 'tools[{index}].function.name'.",
                          f"tools[{index}].function.name", "missing_required_parameter")
    choice = body.get("tool_choice")
    if choice is not None and not (choice in ("none", "auto", "required") or isinstance(choice, dict)):
        raise invalid(f"Invalid value for 'tool_choice': {choice!r}.", "tool_choice")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def _check_depth(body: dict) -> None:
    """Refuse nesting deeper than MAX_DEPTH, naming the top-level field it is under."""
    for name, value in body.items():
        if not isinstance(value, dict | list):
            continue
        stack = [(value, 2)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise invalid(f"Invalid '{name}': nested more than {MAX_DEPTH} levels deep.", name,
                              "too_deeply_nested")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _check_metadata(body: dict) -> None:
    metadata = body.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _type_error("metadata", "an object")
    if len(metadata) > METADATA_MAX_KEYS:
        raise invalid(f"Invalid 'metadata': at most {METADATA_MAX_KEYS} keys.", "metadata")
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY_CHARS:
            raise invalid(f"Invalid 'metadata': keys are at most {METADATA_MAX_KEY_CHARS} characters.",
                          f"metadata.{key[:METADATA_MAX_KEY_CHARS]}")
        if isinstance(value, str) and len(value) > METADATA_MAX_VALUE_CHARS:
            raise invalid(f"Invalid 'metadata.{key}': values are at most {METADATA_MAX_VALUE_CHARS} characters.",
                          f"metadata.{key}")


def _check_common(body: dict) -> None:
    model = body.get("model")
    if model is None:
        fallbacks = body.get("models")
        if isinstance(fallbacks, list) and fallbacks and isinstance(fallbacks[0], str):
            # OpenRouter: without `model`, the first of `models` is the requested model.
            model = body["model"] = fallbacks[0]
        else:
            raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _type_error("model", "a non-empty string")
    if len(model) > 256:
        raise invalid("Invalid 'model': too long.", "model")
    if _has_control(model):
        # It would be sent upstream and echoed in the x-cb-model header, which cannot hold it.
        raise invalid("Invalid 'model': must not contain control characters.", "model")
    fallbacks = body.get("models")  # OpenRouter's fallback list
    if isinstance(fallbacks, list):
        for index, name in enumerate(fallbacks):
            if isinstance(name, str) and _has_control(name):
                raise invalid(f"Invalid 'models[{index}]': must not contain control characters.", f"models[{index}]")
    _check_depth(body)
    _check_metadata(body)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _type_error("user", "a string")


def validate_chat(body) -> dict:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    _check_common(body)
    _check_messages(body.get("messages"))
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    _check_int(body, "max_tokens")
    _check_int(body, "max_completion_tokens")
    _check_int(body, "n", 1, 128)
    _check_int(body, "seed", -(2**63))
    _check_int(body, "top_logprobs", 0, 20)
    _check_bool(body, "stream")
    _check_bool(body, "logprobs")
    _check_bool(body, "parallel_tool_calls")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
        isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4
    ):
        raise _type_error("stop", "a string or an array of up to 4 strings")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _type_error("stream_options", "an object")
    if options and not body.get("stream"):
        raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise invalid("Invalid 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
                          "response_format.type")
        if kind == "json_schema" and not isinstance(response_format.get("json_schema"), dict):
            raise invalid("Missing required parameter: 'response_format.json_schema'.",
                          "response_format.json_schema", "missing_required_parameter")
    if body.get("logit_bias") is not None and not isinstance(body["logit_bias"], dict):
        raise _type_error("logit_bias", "an object")
    _check_tools(body)
    if "reasoning" in body or "usage" in body or "transforms" in body or "plugins" in body:
        check_openrouter_fields(body)
    functions = body.get("functions")
    if functions is not None and not isinstance(functions, list):
        raise _type_error("functions", "an array")
    return body


def validate_embeddings(body) -> dict:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    _check_common(body)
    value = body.get("input")
    if value is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    ok = isinstance(value, str) or (
        isinstance(value, list) and value and (
            all(isinstance(v, str) for v in value) or all(isinstance(v, int) for v in value)
            or all(isinstance(v, list) and all(isinstance(i, int) for i in v) for v in value)))
    if not ok:
        raise invalid("Invalid 'input': expected a string, an array of strings or an array of token arrays.",
                      "input")
    if isinstance(value, list) and len(value) > 2048:
        raise invalid("Invalid 'input': at most 2048 items.", "input")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise invalid("Invalid 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    _check_int(body, "dimensions")
    return body


def validate_completions(body) -> dict:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    _check_common(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not isinstance(prompt, str | list):
        raise _type_error("prompt", "a string or an array")
    _check_number(body, "temperature", 0, 2)
    _check_int(body, "max_tokens")
    _check_bool(body, "stream")
    return body
