"""A Messages API request: validated with Anthropic's rules (errors name the field as Anthropic does), then
translated into the OpenAI chat body every other part of the gateway understands (structured outputs,
`output_config.format`, become `response_format: json_schema`).

What the OpenAI shape cannot carry is kept only for an Anthropic upstream (the pass-through sends the client's
body): `top_k`, `thinking`, `cache_control`, server tools, `document` blocks other than PDFs, images inside a
tool result. On the translation path these are dropped (`top_k`, `thinking`, `cache_control`, tool-result
images) or refused with a 400 (server tools).
"""

from __future__ import annotations

import orjson

from apps.core.errors import InvalidRequest

from ..pipeline import GATEWAY_FIELDS

ROLES = ("user", "assistant")
# Blocks an assistant turn may carry that have no OpenAI equivalent; dropped when translating.
DROPPED_BLOCKS = {"thinking", "redacted_thinking"}
USER_BLOCKS = {"text", "image", "document", "tool_result"}
ASSISTANT_BLOCKS = {"text", "tool_use", *DROPPED_BLOCKS}
# Other block types (server tool use and results, search results, container uploads, future ones) are left to
# Anthropic to judge on the pass-through and refused by the translation (`untranslatable`).
KNOWN_BLOCKS = USER_BLOCKS | ASSISTANT_BLOCKS
TOOL_CHOICES = {"auto", "any", "tool", "none"}
_NUMBER = (int, float)


def invalid(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or not low <= value <= high:
        raise invalid(f"{name}: Input should be a number between {low} and {high}", name)


def _integer(body: dict, name: str, *, low: int, required: bool = False) -> None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"{name}: Field required", name)
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(f"{name}: Input should be an integer of at least {low}", name)


def _text_blocks(value, where: str, *, only_text: bool = True) -> None:
    """`system` (text blocks only) and tool-result content (text, images and other blocks): a string or a list
    of blocks, whose text blocks hold strings."""
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise invalid(f"{where}: Input should be a valid string or a list of content blocks", where)
    for i, block in enumerate(value):
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str) or (only_text and kind != "text"):
            raise invalid(f"{where}.{i}: Input should be a text block", f"{where}.{i}")
        if kind == "text" and not isinstance(block.get("text"), str):
            raise invalid(f"{where}.{i}.text: Input should be a valid string", f"{where}.{i}.text")


def _image(block: dict, where: str) -> None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if not isinstance(source.get("media_type"), str) or not isinstance(source.get("data"), str):
            raise invalid(f"{where}.source: base64 images need media_type and data", f"{where}.source")
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("https://", "http://")):
            raise invalid(f"{where}.source.url: Input should be an http(s) URL", f"{where}.source.url")
    else:
        raise invalid(f"{where}.source: Input tag '{kind}' does not match 'base64' or 'url'", f"{where}.source")


def _block(block, role: str, where: str) -> None:
    if not isinstance(block, dict):
        raise invalid(f"{where}: Input should be a valid dictionary", where)
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if not isinstance(kind, str) or (kind in KNOWN_BLOCKS and kind not in allowed):
        raise invalid(f"{where}.type: Input tag '{kind}' is not allowed in a {role} message "
                      f"(expected one of {', '.join(sorted(allowed))})", f"{where}.type")
    if kind == "text" and not isinstance(block.get("text"), str):
        raise invalid(f"{where}.text: Input should be a valid string", f"{where}.text")
    if kind == "image":
        _image(block, where)
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise invalid(f"{where}: tool_use blocks need a string id and name", where)
        if not isinstance(block.get("input"), dict):
            raise invalid(f"{where}.input: Input should be a valid dictionary", f"{where}.input")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise invalid(f"{where}.tool_use_id: Field required", f"{where}.tool_use_id")
        if block.get("content") is not None:
            _text_blocks(block["content"], f"{where}.content", only_text=False)


def _messages(messages) -> None:
    if messages is None:
        raise invalid("messages: Field required", "messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: Input should be a non-empty list", "messages")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise invalid(f"{where}: Input should be a valid dictionary", where)
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise invalid(f'{where}.role: Unexpected role "{role}". The Messages API accepts a top-level `system` '
                          'parameter, not "system" as an input message role.', f"{where}.role")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise invalid(f"{where}.content: Input should be a valid string or a list of content blocks",
                          f"{where}.content")
        for j, block in enumerate(content):
            _block(block, role, f"{where}.content.{j}")


def _tools(body: dict) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools: Input should be a valid list", "tools")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
                raise invalid(f"tools.{i}.name: Field required", f"tools.{i}.name")
            if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
                raise invalid(f"tools.{i}.input_schema: Field required", f"tools.{i}.input_schema")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
            raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'", "tool_choice")
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise invalid("tool_choice.name: Field required", "tool_choice.name")


def validate(body, *, count_tokens: bool = False) -> dict:
    """Anthropic's rules for a Messages (or count_tokens) body; InvalidRequest naming the field otherwise."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise invalid("model: Field required", "model")
    if not count_tokens:
        _integer(body, "max_tokens", low=1, required=True)
    if body.get("system") is not None:
        _text_blocks(body["system"], "system")
    _messages(body.get("messages"))
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _integer(body, "top_k", low=0)
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise invalid("stop_sequences: Input should be a list of strings", "stop_sequences")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise invalid("stream: Input should be a valid boolean", "stream")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("metadata: Input should be a valid dictionary", "metadata")
    if isinstance(metadata, dict) and metadata.get("user_id") is not None and not isinstance(metadata["user_id"], str):
        raise invalid("metadata.user_id: Input should be a valid string", "metadata.user_id")
    thinking = body.get("thinking")
    if thinking is not None and not (isinstance(thinking, dict) and isinstance(thinking.get("type"), str)):
        raise invalid("thinking: Input should be an object with a type", "thinking")
    _tools(body)
    output_format(body)
    return body


def output_format(body: dict) -> dict | None:
    """Structured outputs: `output_config.format` (or the beta's `output_format`), a JSON schema the reply must
    match; None when the request has none."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise invalid("output_config: Input should be a valid dictionary", "output_config")
    found = (config or {}).get("format") or body.get("output_format")
    if found is None:
        return None
    if not isinstance(found, dict) or found.get("type") != "json_schema" or not isinstance(found.get("schema"), dict):
        raise invalid("output_config.format: expected {\"type\": \"json_schema\", \"schema\": {…}}",
                      "output_config.format")
    return found


# ---- translation to the OpenAI chat body ------------------------------------------------------------

def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


def _image_part(block: dict) -> dict:
    source = block["source"]
    url = source["url"] if source["type"] == "url" else f"data:{source['media_type']};base64,{source['data']}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: dict) -> dict | None:
    """PDFs sent inline and plain-text documents; None for the rest (`untranslatable` names them)."""
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64" and source.get("data"):
        media = source.get("media_type") or "application/pdf"
        return {"type": "file", "file": {"filename": block.get("title") or "document.pdf",
                                         "file_data": f"data:{media};base64,{source['data']}"}}
    if source.get("type") == "text":
        return {"type": "text", "text": str(source.get("data") or "")}
    return None


def _user_messages(content) -> list[dict]:
    """One Anthropic user turn → OpenAI `tool` messages (its tool results, first) and a user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict] = []
    parts: list[dict] = []
    for block in content:
        kind = block["type"]
        if kind == "tool_result":
            text = _text(block.get("content"))
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                        "content": f"Error: {text}" if block.get("is_error") else text})
        elif kind == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "document" and (part := _document_part(block)) is not None:
            parts.append(part)
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text = "".join(b["text"] for b in content if b["type"] == "text")
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()}}
             for b in content if b["type"] == "tool_use"]
    message: dict = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice(choice: dict):
    kind = choice["type"]
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def untranslatable(body: dict) -> list[str]:
    """What only an Anthropic upstream can take: hosted tools (web search, code execution, …) by name, and
    content blocks of types the OpenAI shape has no place for."""
    tools = [t["name"] for t in body.get("tools") or [] if t.get("type") not in (None, "custom")]
    blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    kinds = {b["type"] for b in blocks} - KNOWN_BLOCKS
    if any(b["type"] == "document" and _document_part(b) is None for b in blocks):
        kinds.add("document (other than base64 or text)")
    return tools + sorted(f"{kind} blocks" for kind in kinds)


def to_chat(body: dict) -> dict:
    """The OpenAI chat body for a validated Messages body (the pipeline's routing, limits and budgets read it)."""
    messages: list[dict] = []
    if system := _text(body.get("system")):
        messages.append({"role": "system", "content": system})
    for message in body["messages"]:
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"]))
        else:
            messages.append(_assistant_message(message["content"]))
    out: dict = {"model": body["model"], "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p", "stream", *GATEWAY_FIELDS):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    if schema := output_format(body):
        out["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "output", "schema": schema["schema"], "strict": True}}
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    tools = [t for t in body.get("tools") or [] if t.get("type") in (None, "custom")]
    if tools:
        out["tools"] = [{"type": "function", "function": {
            "name": t["name"], "parameters": t["input_schema"],
            **({"description": t["description"]} if t.get("description") else {})}} for t in tools]
        choice = body.get("tool_choice")
        if choice:
            out["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use") and choice["type"] != "none":
                out["parallel_tool_calls"] = False
    return out
