"""OpenAI's Responses API request → the gateway's chat request, so `/v1/responses` runs the chat pipeline.

`chat_request(body, history)` validates a `POST /v1/responses` body with the Responses API's parameter names and
translates it: `instructions` → a system message, `input` (a string or items: messages with `input_text` /
`input_image` / `input_file` / `output_text` parts, `function_call`, `function_call_output`) after the earlier
items a `previous_response_id` brings (`history`) → `messages`, function tools → chat tools, `text.format` →
`response_format`, `reasoning.effort` → `reasoning_effort`, `max_output_tokens` → `max_completion_tokens`. The
gateway's own routing fields (`circuit_breaker`, OpenRouter's `models`/`route`/`provider`) pass through. No I/O.
"""

from __future__ import annotations

from apps.core.errors import InvalidRequest

from . import request_validation
from .pipeline import GATEWAY_FIELDS

# Fields of the Responses API this gateway reads; anything else is refused by name, as OpenAI does.
KNOWN_FIELDS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p", "max_output_tokens", "text",
    "reasoning", "metadata", "user", "store", "previous_response_id", "parallel_tool_calls", "stream",
    "stream_options", "include", "truncation", "background", "safety_identifier", "prompt_cache_key",
    "service_tier", "max_tool_calls", "top_logprobs", "conversation", "prompt",
    *GATEWAY_FIELDS, "task_type",
})
# Passed to the chat request as they are.
PASSED = ("temperature", "top_p", "metadata", "user", "safety_identifier", "prompt_cache_key", "task_type",
          *GATEWAY_FIELDS)
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
ITEM_TYPES = ("message", "function_call", "function_call_output")
# Input items a client may replay from another server's output; they carry nothing a chat upstream can take.
IGNORED_ITEM_TYPES = frozenset({"reasoning"})
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def invalid(message: str, param: str | None, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _type_error(param: str, expected: str) -> InvalidRequest:
    return invalid(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def _unsupported(message: str, param: str) -> InvalidRequest:
    return invalid(message, param, "unsupported_parameter")


# ---- input items → chat messages -------------------------------------------------------------------------------
def _image_part(part: dict, where: str) -> dict:
    url = part.get("image_url")
    if part.get("file_id") and not url:
        raise _unsupported(f"Invalid '{where}': images by 'file_id' are not supported here; send 'image_url' "
                           f"(an https:// or data: URL).", f"{where}.file_id")
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
        raise invalid(f"Invalid '{where}.image_url': expected an https:// or data: URL.", f"{where}.image_url")
    image = {"url": url}
    if isinstance(part.get("detail"), str):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file_part(part: dict, where: str) -> dict:
    data = part.get("file_data")
    if not isinstance(data, str) or not data:
        raise _unsupported(f"Invalid '{where}': only files sent inline ('file_data') are supported here.",
                           f"{where}.file_data")
    file = {"file_data": data}
    if isinstance(part.get("filename"), str):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _content(content, where: str, role: str) -> str | list[dict]:
    """A message's content as chat content: a string, or parts (text, image_url, file)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_error(where, "a string or an array of content parts")
    parts: list[dict] = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            raise _type_error(at, "an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise _type_error(f"{at}.text", "a string")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind in ("input_image", "input_file"):
            if role != "user":
                raise invalid(f"Invalid '{at}': images and files are only allowed in user messages.", at)
            parts.append(_image_part(part, at) if kind == "input_image" else _file_part(part, at))
        else:
            raise invalid(f"Invalid value for '{at}.type': {kind!r}. Supported: 'input_text', 'input_image', "
                          f"'input_file', 'output_text' and 'refusal'.", f"{at}.type")
    if role != "user" or all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # every adapter takes a plain string
    return parts


def _output_text(output, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # text parts; a chat tool message holds text only
        texts = []
        for index, part in enumerate(output):
            if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text"):
                raise invalid(f"Invalid '{where}[{index}]': a function_call_output carries text here.",
                              f"{where}[{index}]")
            texts.append(str(part.get("text") or ""))
        return "".join(texts)
    raise _type_error(where, "a string or an array of input_text parts")


def _function_call(item: dict, where: str) -> dict:
    for name in ("call_id", "name"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise invalid(f"Missing required parameter: '{where}.{name}'.", f"{where}.{name}",
                          "missing_required_parameter")
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        raise _type_error(f"{where}.arguments", "a string")
    return {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": arguments}}


def messages_from_items(items: list, param: str = "input") -> list[dict]:
    """Responses input items → chat messages. Function calls join the assistant message before them."""
    messages: list[dict] = []
    for index, item in enumerate(items):
        where = f"{param}[{index}]"
        if not isinstance(item, dict):
            raise _type_error(where, "an object")
        kind = item.get("type", "message")
        if kind in IGNORED_ITEM_TYPES:
            continue
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise invalid(f"Invalid value for '{where}.role': {role!r}. Supported values are: 'user', "
                              f"'assistant', 'system' and 'developer'.", f"{where}.role")
            if "content" not in item:
                raise invalid(f"Missing required parameter: '{where}.content'.", f"{where}.content",
                              "missing_required_parameter")
            messages.append({"role": ROLES[role], "content": _content(item["content"], f"{where}.content", role)})
        elif kind == "function_call":
            call = _function_call(item, where)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not item["call_id"]:
                raise invalid(f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id",
                              "missing_required_parameter")
            messages.append({"role": "tool", "tool_call_id": item["call_id"],
                             "content": _output_text(item.get("output"), f"{where}.output")})
        else:
            raise invalid(f"Invalid '{where}.type': {kind!r} items are not supported by this gateway (supported: "
                          f"{', '.join(ITEM_TYPES)}).", f"{where}.type", "unsupported_item_type")
    return messages


def input_items(body: dict) -> list[dict]:
    """The request's `input` as a list of items (a string is one user message)."""
    value = body.get("input")
    if value is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise _type_error("input", "a string or an array of input items")
    return value


# ---- tools, formats, options --------------------------------------------------------------------------------------
def chat_tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        raise _type_error("tools", "an array")
    unsupported = [(i, t.get("type") if isinstance(t, dict) else None) for i, t in enumerate(tools)
                   if not isinstance(t, dict) or t.get("type") != "function"]
    if unsupported:
        named = ", ".join(f"{kind!r} (tools[{i}])" for i, kind in unsupported)
        raise invalid(f"Unsupported tool type: {named}. This gateway runs function tools only "
                      f"(type 'function'); built-in tools such as web_search or file_search are not available.",
                      f"tools[{unsupported[0][0]}].type", "unsupported_tool_type")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise invalid(f"Missing required parameter: 'tools[{index}].name'.", f"tools[{index}].name",
                          "missing_required_parameter")
        function = {"name": tool["name"]}
        for name, kind, label in (("description", str, "a string"), ("parameters", dict, "an object"),
                                  ("strict", bool, "a boolean")):
            value = tool.get(name)
            if value is None:
                continue
            if not isinstance(value, kind):
                raise _type_error(f"tools[{index}].{name}", label)
            function[name] = value
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice):
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        if not isinstance(choice.get("name"), str) or not choice["name"]:
            raise invalid("Missing required parameter: 'tool_choice.name'.", "tool_choice.name",
                          "missing_required_parameter")
        return {"type": "function", "function": {"name": choice["name"]}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise invalid(f"Invalid value for 'tool_choice': {kind!r}. Supported: 'none', 'auto', 'required' or "
                  f"{{'type': 'function', 'name': ...}}.", "tool_choice")


def response_format(text) -> dict | None:
    if not isinstance(text, dict):
        raise _type_error("text", "an object")
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise invalid("Invalid 'text.format.type': expected 'text', 'json_object' or 'json_schema'.",
                      "text.format.type")
    if not isinstance(fmt.get("name"), str) or not fmt["name"]:
        raise invalid("Missing required parameter: 'text.format.name'.", "text.format.name",
                      "missing_required_parameter")
    if not isinstance(fmt.get("schema"), dict):
        raise invalid("Missing required parameter: 'text.format.schema'.", "text.format.schema",
                      "missing_required_parameter")
    schema = {"name": fmt["name"], "schema": fmt["schema"]}
    for name in ("description", "strict"):
        if fmt.get(name) is not None:
            schema[name] = fmt[name]
    return {"type": "json_schema", "json_schema": schema}


def reasoning_effort(reasoning) -> str | None:
    if not isinstance(reasoning, dict):
        raise _type_error("reasoning", "an object")
    effort = reasoning.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise invalid(f"Invalid value for 'reasoning.effort': {effort!r}.", "reasoning.effort")
    return effort


def _check_types(body: dict) -> None:
    for name in ("stream", "store", "parallel_tool_calls", "background"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise _type_error(name, "a boolean")
    for name in ("instructions", "previous_response_id", "user"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise _type_error(name, "a string")
    tokens = body.get("max_output_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise invalid("Invalid 'max_output_tokens': expected an integer of at least 1.", "max_output_tokens")
    if body.get("background"):
        raise _unsupported("Background responses are not supported by this gateway.", "background")
    for name in ("conversation", "prompt"):
        if body.get(name) is not None:
            raise _unsupported(f"'{name}' is not supported by this gateway; chain responses with "
                               f"'previous_response_id' instead.", name)


def validate(body) -> dict:
    """The Responses body checked on its own terms (the translated chat body is validated as chat afterwards)."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None, "invalid_json")
    for name in body:
        if name not in KNOWN_FIELDS:
            raise invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    # Input items are stored as sent: the chat request's depth check would not see fields it does not copy.
    request_validation._check_depth(body)  # noqa: SLF001 - the /v1 depth rule, one implementation
    _check_types(body)
    return body


def chat_request(body: dict, history: list[dict]) -> dict:
    """The chat request for a validated Responses body, after the items of the earlier responses (`history`)."""
    messages = messages_from_items(history, "previous_response_id") if history else []
    messages += messages_from_items(input_items(body))
    if not messages:
        raise invalid("Invalid 'input': it holds no message.", "input", "empty_array")
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    chat = {name: body[name] for name in PASSED if body.get(name) is not None}
    chat["model"] = body.get("model")
    chat["messages"] = messages
    if body.get("stream") is True:
        chat["stream"] = True
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = chat_tools(body["tools"])
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    elif body.get("tools") is not None:
        chat_tools(body["tools"])  # an empty list is fine; a wrong type is not
    if body.get("tool_choice") is not None:
        choice = chat_tool_choice(body["tool_choice"])
        if "tools" in chat:  # chat APIs refuse a tool_choice without tools; Responses allows it
            chat["tool_choice"] = choice
    if body.get("text") is not None and (fmt := response_format(body["text"])):
        chat["response_format"] = fmt
    if body.get("reasoning") is not None and (effort := reasoning_effort(body["reasoning"])):
        chat["reasoning_effort"] = effort
    return chat
