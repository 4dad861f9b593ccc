"""Anthropic's Messages API (POST /v1/messages) behind OpenAI's Chat Completions shapes.

The differences that need translating:
- system/developer messages go to the top-level `system` string;
- roles must alternate user/assistant starting with user, so consecutive messages of one role are merged
  into one message's content blocks, OpenAI `tool` messages become `tool_result` blocks of a user message,
  and a conversation that opens with the assistant gets a placeholder user turn first;
- `max_tokens` is required (4096 when the client gave none); temperature is 0..1, not 0..2;
- there is no JSON mode: `json_object` becomes an instruction appended to the system prompt (JSON_INSTRUCTION;
  the fake recognises it to answer in JSON); `json_schema` with an object schema becomes a forced tool
  (STRUCTURED_TOOL) whose input is the answer, returned as the message content (with the request's own tools,
  or thinking, which refuses forced tools, it stays an instruction / an unforced tool);
- OpenRouter's `reasoning` becomes `thinking` (`reasoning.py`); thinking text comes back as `reasoning`;
- usage counts cache reads and cache writes apart from `input_tokens`; all three are prompt tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from .base import (
    Adapter,
    ChunkFactory,
    SSEDecoder,
    StreamTranslator,
    Target,
    UpstreamError,
    UpstreamRequest,
    completion,
    error_from_status,
    json_body,
    loads,
    parse_data_url,
    parse_retry_after,
    text_of,
    tool_arguments,
    usage_dict,
)
from .reasoning import anthropic_budget, reasoning_of

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
JSON_INSTRUCTION = "Respond only with a JSON object, with no text before or after it."
# The forced tool carrying a `response_format: json_schema` answer; its input becomes the message content.
STRUCTURED_TOOL = "json_response"
PLACEHOLDER_USER_TEXT = "."  # Anthropic needs a first user turn; keep it as neutral as possible

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
# In-stream `error` events carry only a type; these are the statuses the same errors have over HTTP.
ERROR_STATUSES = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                  "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                  "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}


def headers_for(target: Target) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    if target.options.get("anthropic_version"):
        headers["anthropic-version"] = str(target.options["anthropic_version"])
    if target.options.get("beta"):
        headers["anthropic-beta"] = str(target.options["beta"])
    for name, value in (target.options.get("headers") or {}).items():
        headers[str(name)] = str(value)
    return headers


def messages_url(target: Target) -> str:
    # The documented base URL has no /v1, but users often paste one that does.
    base = target.base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


# ---- request -------------------------------------------------------------------------------------

def _tool_id(value) -> str:
    """Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; ids minted by other providers may not."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", str(value or "")) or "toolu_missing"


def _image_block(url: str) -> dict:
    data_url = parse_data_url(url)
    if data_url:
        return {"type": "image", "source": {"type": "base64", "media_type": data_url[0], "data": data_url[1]}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise UpstreamError("Anthropic accepts images as base64 data: URLs or http(s) URLs only.", status=400,
                        type="invalid_request_error", code="unsupported_image_url", param="messages")


def _document_block(part: dict) -> dict:
    """Only PDFs sent inline have an Anthropic equivalent (a base64 `document` block)."""
    data_url = parse_data_url((part.get("file") or {}).get("file_data") or "")
    if part.get("type") == "file" and data_url and data_url[0] == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": data_url[0], "data": data_url[1]}}
    raise UpstreamError(f"Anthropic cannot take this {part.get('type')} content part (only inline PDF files).",
                        status=400, type="invalid_request_error", code="unsupported_content", param="messages")


def _content_blocks(content) -> list[dict]:
    """OpenAI content (string or parts) → Anthropic blocks. Adjacent text parts become one block."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[dict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if blocks and blocks[-1]["type"] == "text":
                blocks[-1]["text"] += part.get("text", "")
            else:
                blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(_image_block(image.get("url", "") if isinstance(image, dict) else str(image or "")))
        elif kind in ("file", "input_audio"):
            blocks.append(_document_block(part))
    # Anthropic rejects empty and whitespace-only text blocks.
    return [b for b in blocks if b["type"] != "text" or b["text"].strip()]


def _append(messages: list[dict], role: str, blocks: list[dict]) -> None:
    """Add blocks under `role`, merging into the previous message when it has the same role."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        content = messages[-1]["content"]
        for block in blocks:
            if block["type"] == "tool_result":
                # tool_result blocks must open a user message, ahead of any text.
                at = next((i for i, b in enumerate(content) if b["type"] != "tool_result"), len(content))
                content.insert(at, block)
            else:
                content.append(block)
    else:
        messages.append({"role": role, "content": list(blocks)})


def translate_messages(openai_messages: list[dict]) -> tuple[str, list[dict]]:
    """OpenAI messages → (system text, alternating Anthropic messages)."""
    system: list[str] = []
    messages: list[dict] = []
    legacy_calls: dict[str, str] = {}  # function name → id of its last legacy `function_call`
    for index, message in enumerate(openai_messages):
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            if text := text_of(content):
                system.append(text)
        elif role == "user":
            _append(messages, "user", _content_blocks(content))
        elif role == "assistant":
            blocks = _content_blocks(content)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": _tool_id(call.get("id")), "name": function.get("name", ""),
                               "input": tool_arguments(function.get("arguments"))})
            if function_call := message.get("function_call"):
                call_id = legacy_calls[function_call.get("name", "")] = f"toolu_legacy_{index}"
                blocks.append({"type": "tool_use", "id": call_id, "name": function_call.get("name", ""),
                               "input": tool_arguments(function_call.get("arguments"))})
            _append(messages, "assistant", blocks)
        elif role in ("tool", "function"):
            call_id = message.get("tool_call_id") if role == "tool" else legacy_calls.get(message.get("name", ""))
            result = {"type": "tool_result", "tool_use_id": _tool_id(call_id)}
            if text := text_of(content):
                result["content"] = text
            _append(messages, "user", [result])
    if not messages or messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]})
    last = messages[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        # A final assistant message is a prefill, which may not end in whitespace.
        last["content"][-1]["text"] = last["content"][-1]["text"].rstrip()
    return "\n\n".join(system), messages


def _tool_choice(choice, parallel: bool | None) -> dict | None:
    if choice is None and parallel is not False:
        return None
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and (choice.get("function") or choice.get("name")):
        out = {"type": "tool", "name": (choice.get("function") or choice)["name"]}
    else:
        out = {"type": "auto"}
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _tools(body: dict) -> tuple[list[dict], dict | None]:
    functions = [t.get("function") or {} for t in body.get("tools") or [] if t.get("type", "function") == "function"]
    choice = body.get("tool_choice")
    if not functions and body.get("functions"):  # the legacy spelling
        functions, choice = body["functions"], body.get("function_call")
    tools = []
    for function in functions:
        tool = {"name": function.get("name", ""),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            tool["description"] = function["description"]
        tools.append(tool)
    return tools, (_tool_choice(choice, body.get("parallel_tool_calls")) if tools else None)


def _json_instruction(response_format) -> str:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return JSON_INSTRUCTION
    if kind == "json_schema":
        schema = ((response_format.get("json_schema") or {}).get("schema")) or {}
        return f"{JSON_INSTRUCTION} It must match this JSON schema: {orjson.dumps(schema).decode()}"
    return ""


def _structured_tool(body: dict) -> dict | None:
    """`response_format: json_schema` as a tool the model must call (its input is the answer), when the schema
    is an object and the request has no tools of its own (theirs would be unreachable under a forced choice)."""
    response_format = body.get("response_format") or {}
    spec = response_format.get("json_schema") if response_format.get("type") == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict) or schema.get("type") != "object" or body.get("tools") or body.get("functions"):
        return None
    description = f"Give your answer as this tool's input ({spec.get('name') or 'response'}"
    if spec.get("description"):
        description += f": {spec['description']}"
    return {"name": STRUCTURED_TOOL, "description": description + ").", "input_schema": schema}


def _thinking(body: dict, out: dict) -> bool:
    """OpenRouter's `reasoning` as extended thinking. Anthropic counts the budget inside max_tokens, which must
    exceed it, and refuses temperature/top_k with thinking (top_p only from 0.95)."""
    reasoning = reasoning_of(body)
    budget = anthropic_budget(reasoning, out["max_tokens"]) if reasoning is not None else None
    if budget is None:
        return False
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if out["max_tokens"] <= budget:
        out["max_tokens"] += budget
    out.pop("temperature", None)
    if out.get("top_p") is not None and out["top_p"] < 0.95:
        out.pop("top_p")
    return True


def chat_body(body: dict, target: Target, *, stream: bool) -> dict:
    system, messages = translate_messages(body.get("messages") or [])
    structured = _structured_tool(body)
    if structured is None and (instruction := _json_instruction(body.get("response_format"))):
        system = f"{system}\n\n{instruction}" if system else instruction
    out: dict = {"model": target.model, "messages": messages,
                 "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS}
    if system:
        out["system"] = system
    if body.get("temperature") is not None:
        out["temperature"] = min(1.0, max(0.0, float(body["temperature"])))  # OpenAI allows up to 2
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop or []
    if stop := [s for s in stop if isinstance(s, str) and s.strip()]:
        out["stop_sequences"] = stop
    if user := body.get("user") or body.get("safety_identifier"):
        out["metadata"] = {"user_id": str(user)}
    tools, tool_choice = _tools(body)
    thinking = _thinking(body, out)
    if structured is not None:
        tools = [structured]
        # A forced tool choice is refused with thinking: then the instruction asks for the call instead.
        tool_choice = {"type": "auto"} if thinking else {"type": "tool", "name": STRUCTURED_TOOL}
        if thinking:
            instruction = f"Answer only by calling the {STRUCTURED_TOOL} tool."
            out["system"] = f"{out['system']}\n\n{instruction}" if out.get("system") else instruction
    if tools:
        out["tools"] = tools
    if tool_choice:
        out["tool_choice"] = tool_choice
    if stream:
        out["stream"] = True
    return out


# ---- response ------------------------------------------------------------------------------------

def _usage(usage: Mapping | None) -> dict:
    usage = usage or {}
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cache_read + cache_write
    return usage_dict(prompt, int(usage.get("output_tokens") or 0), cached=cache_read, cache_write=cache_write)


def _finish(stop_reason) -> str:
    return STOP_REASONS.get(stop_reason or "end_turn", "stop")


def _error(status: int, err_type: str | None, message: str, retry_after: float | None = None) -> UpstreamError:
    if status == 402 or err_type == "billing_error":
        # The tenant's Anthropic account is out of credit: not the client's fault, another key may work.
        return UpstreamError(f"Upstream provider refused billing: {message}", status=502, type="upstream_error",
                             code="upstream_billing_error", upstream_status=status, retryable=True)
    return error_from_status(status, message, retry_after=retry_after)


class AnthropicStream(StreamTranslator):
    """Anthropic's named SSE events → OpenAI chunks. Only `message_stop` ends a stream properly."""

    __slots__ = ("chunks", "decoder", "done", "error", "started", "stop_reason", "structured", "tool_index", "tools",
                 "usage")

    def __init__(self, chunks: ChunkFactory):
        self.chunks = chunks
        self.decoder = SSEDecoder()
        self.started = self.done = False
        self.error: UpstreamError | None = None
        self.stop_reason: str | None = None
        self.usage: dict = {}
        self.tools: dict[int, int] = {}  # content block index → OpenAI tool-call index
        self.tool_index = 0
        self.structured: int | None = None  # content block index of the json_response tool, if any

    def _start(self, out: list[dict]) -> None:
        if not self.started:
            self.started = True
            out.append(self.chunks.chunk({"role": "assistant", "content": ""}))

    def _translate(self, events) -> list[dict]:
        out: list[dict] = []
        for event_name, data in events:
            event = loads(data)
            if not isinstance(event, dict):
                continue
            kind = event.get("type") or event_name
            if kind == "message_start":
                self.usage.update((event.get("message") or {}).get("usage") or {})
                self._start(out)
            elif kind == "content_block_start":
                self._start(out)
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL:
                    self.structured = event.get("index", 0)  # its input streams as the answer's text
                elif block.get("type") == "tool_use":
                    self.tools[event.get("index", 0)] = index = self.tool_index
                    self.tool_index += 1
                    out.append(self.chunks.chunk({"tool_calls": [{
                        "index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""}}]}))
                elif block.get("type") == "text" and block.get("text"):
                    out.append(self.chunks.chunk({"content": block["text"]}))
            elif kind == "content_block_delta":
                self._start(out)
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    out.append(self.chunks.chunk({"content": delta["text"]}))
                elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                    out.append(self.chunks.chunk({"reasoning": delta["thinking"]}))
                elif (delta.get("type") == "input_json_delta" and delta.get("partial_json")
                      and event.get("index", 0) == self.structured):
                    out.append(self.chunks.chunk({"content": delta["partial_json"]}))
                elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                    index = self.tools.get(event.get("index", 0))
                    if index is not None:  # None: the input of a server-side tool, not ours to relay
                        out.append(self.chunks.chunk({"tool_calls": [{
                            "index": index, "function": {"arguments": delta["partial_json"]}}]}))
            elif kind == "message_delta":
                self.stop_reason = (event.get("delta") or {}).get("stop_reason") or self.stop_reason
                if self.structured is not None and self.stop_reason == "tool_use":
                    self.stop_reason = "end_turn"
                # message_delta's usage counts are cumulative, so they replace what message_start said.
                self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            elif kind == "message_stop":
                self._start(out)
                self.done = True
                out.append(self.chunks.chunk({}, finish_reason=_finish(self.stop_reason)))
                out.append(self.chunks.usage(_usage(self.usage)))
            elif kind == "error":
                err = event.get("error") or {}
                err_type = err.get("type") or "api_error"
                self.error = _error(ERROR_STATUSES.get(err_type, 500), err_type,
                                    str(err.get("message") or "Anthropic stream error"))
                if not out:
                    raise self.error
                break  # hand over the content that came before the error first; feed()/close() raise it
            # ping, content_block_stop and unknown future events carry nothing to translate
        return out

    def feed(self, data: bytes) -> list[dict]:
        if self.error:
            raise self.error
        return self._translate(self.decoder.feed(data))

    def close(self) -> list[dict]:
        if self.error:
            raise self.error
        out = self._translate(self.decoder.close())
        if not self.done:
            raise UpstreamError("Upstream stream ended before Anthropic's message_stop event.", status=502,
                                type="upstream_error", code="upstream_stream_truncated", retryable=True)
        return out


class AnthropicAdapter(Adapter):
    name = "anthropic"
    provider_type = "anthropic"
    label = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    prefixes = ("anthropic",)

    def chat_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        return UpstreamRequest("POST", messages_url(target), headers_for(target),
                               json_body(chat_body(body, target, stream=stream)))

    def chat_response(self, payload: bytes, target: Target) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise UpstreamError("Upstream returned a malformed message.", status=502, retryable=True)
        blocks = data["content"]
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        structured = [b for b in blocks if b.get("type") == "tool_use" and b.get("name") == STRUCTURED_TOOL]
        stop_reason = data.get("stop_reason")
        if structured:  # the answer to response_format: json_schema
            text, stop_reason = orjson.dumps(structured[0].get("input") or {}).decode(), "end_turn"
        tool_calls = [{"id": b.get("id"), "type": "function",
                       "function": {"name": b.get("name", ""),
                                    "arguments": orjson.dumps(b.get("input") or {}).decode()}}
                      for b in blocks if b.get("type") == "tool_use" and b.get("name") != STRUCTURED_TOOL]
        message: dict = {"role": "assistant", "content": text if text or not tool_calls else None, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        thinking = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
        if thinking:
            message["reasoning"] = thinking
        return completion(id=data.get("id"), model=target.model, message=message,
                          finish_reason=_finish(stop_reason), usage=_usage(data.get("usage")))

    def chat_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        return AnthropicStream(chunks)

    def error(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None) -> UpstreamError:
        """Anthropic's body is `{"type": "error", "error": {"type", "message"}}`; 529 (overloaded) is a 5xx."""
        data = loads(payload)
        err = data.get("error") if isinstance(data, dict) else None
        err = err if isinstance(err, dict) else {}
        message = err.get("message") or payload[:300].decode(errors="replace").strip() or f"HTTP {status}"
        return _error(status, err.get("type"), str(message), parse_retry_after(headers))
