"""A fake of Anthropic's Messages API: POST /v1/messages, JSON and named-event SSE, and
POST /v1/messages/count_tokens (the brain's word count).

Strict where the real API is: `x-api-key` (401 authentication_error), the `anthropic-version` header,
`model` and `max_tokens` required, roles alternating user/assistant from a user turn, no empty text
blocks, temperature 0..1, every `tool_result` answering a `tool_use` of the previous assistant message
(and listed before any other block), every `tool_use` answered in the next message.

A forced tool (`tool_choice: {type: tool}`) is called with input shaped by its `input_schema`; `thinking` adds a
thinking block (and its rules: budget ≥ 1024 and < max_tokens, no temperature, no forced tool).
Anthropic has no JSON mode; a system prompt containing "Respond only with a JSON object" (what the adapter
appends for `response_format`) is read as JSON mode. Besides the directives of tests/fakes/base.py:
  !cache    usage reports 5 cache-read and 3 cache-write input tokens (input_tokens shrinks by 8, so the
            prompt total stays the brain's)
  !end-after 2  stream 2 text pieces, then end the HTTP response cleanly without message_stop
"""

from __future__ import annotations

import hashlib
import re

import orjson
from aiohttp import web

from .base import Conversation, FakeProvider, ToolCall, Turn, brain, parse_directives

JSON_MODE_MARKER = "Respond only with a JSON object"
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               529: "overloaded_error"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
SIGNATURE = "fake-thinking-signature"


def anthropic_error(status: int, message: str | None = None) -> dict:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                       "message": message or f"fake anthropic error {status}"},
            "request_id": "req_fake" + str(status)}


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


def normalize(body: dict) -> Conversation:
    """One Turn per run of text/image blocks, one `tool` Turn per tool_result; text blocks join with "\\n"."""
    system = body.get("system") or ""
    conv = Conversation(model=body.get("model", ""), system=_text(system), max_tokens=body.get("max_tokens"))
    conv.json_mode = JSON_MODE_MARKER in conv.system
    for message in body.get("messages", []):
        role, content = message["role"], message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        turn: Turn | None = None
        for block in blocks:
            if block["type"] == "tool_result":
                conv.turns.append(Turn("tool", _text(block.get("content")), tool_call_id=block["tool_use_id"]))
                turn = None
                continue
            if turn is None:
                turn = Turn(role)
                conv.turns.append(turn)
            if block["type"] == "text":
                turn.text = f"{turn.text}\n{block['text']}" if turn.text else block["text"]
            elif block["type"] == "image":
                turn.images += 1
            elif block["type"] == "tool_use":
                turn.tool_calls.append(ToolCall(block["id"], block["name"], block["input"]))
    conv.tools = [t["name"] for t in body.get("tools") or []]
    conv.stop = list(body.get("stop_sequences") or [])
    choice = body.get("tool_choice") or {}
    conv.tool_choice_none = choice.get("type") == "none"
    if choice.get("type") == "tool":  # a forced tool is called with input shaped by its schema
        forced = next(t for t in body["tools"] if t["name"] == choice["name"])
        conv.tools, conv.forced_tool_schema = [forced["name"]], forced["input_schema"]
    conv.thinking = (body.get("thinking") or {}).get("type") == "enabled"
    return conv


def _block_problem(where: str, block, previous_tool_ids: set[str]) -> str | None:
    if not isinstance(block, dict):
        return f"{where}: Input should be a valid dictionary"
    kind = block.get("type")
    if kind == "text" and not str(block.get("text", "")).strip():
        return f"{where}: text content blocks must contain non-whitespace text"
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64" and source.get("media_type") not in IMAGE_TYPES:
            return f"{where}.source.media_type: Input should be one of {', '.join(sorted(IMAGE_TYPES))}"
        if source.get("type") not in ("base64", "url") or not (source.get("data") or source.get("url")):
            return f"{where}.source: invalid image source"
    if kind == "tool_use" and not (TOOL_ID.match(str(block.get("id"))) and isinstance(block.get("input"), dict)):
        return f"{where}: tool_use blocks need an id matching ^[a-zA-Z0-9_-]+$ and an object input"
    if kind == "tool_result" and block.get("tool_use_id") not in previous_tool_ids:
        return (f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.")
    if kind not in ("text", "image", "document", "tool_use", "tool_result"):
        return f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    return None


def validate(body) -> str | None:
    """The real API's 400s for what an adapter can get wrong."""
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request."
    for required in ("model", "max_tokens", "messages"):
        if body.get(required) is None:
            return f"{required}: Field required"
    if not 0 <= float(body.get("temperature", 0)) <= 1:
        return "temperature: range: 0..1"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    previous_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant"):
            return (f'messages.{i}.role: Unexpected role "{role}". The Messages API accepts a top-level `system` '
                    "parameter, not \"system\" as an input message role.")
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if i and messages[i - 1].get("role") == role:
            return ('messages: roles must alternate between "user" and "assistant", '
                    f'but found multiple "{role}" roles in a row')
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks and not (role == "assistant" and i == len(messages) - 1):
            return (f"messages.{i}: all messages must have non-empty content "
                    "except for the optional final assistant message")
        kinds = [b.get("type") for b in blocks if isinstance(b, dict)]
        first_other = next((k for k, kind in enumerate(kinds) if kind != "tool_result"), len(kinds))
        if "tool_result" in kinds[first_other:]:
            return f"messages.{i}: `tool_result` blocks must come before any other content in a user message"
        answered = {b.get("tool_use_id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"}
        if previous_tool_ids - answered:
            return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(sorted(previous_tool_ids - answered))}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message.")
        for j, block in enumerate(blocks):
            if problem := _block_problem(f"messages.{i}.content.{j}", block, previous_tool_ids):
                return problem
        previous_tool_ids = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    for k, tool in enumerate(body.get("tools") or []):
        if not tool.get("name") or (tool.get("input_schema") or {}).get("type") != "object":
            return f"tools.{k}.input_schema: Field required (an object schema)"
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") not in {t.get("name") for t in body.get("tools") or []}:
        return f"tool_choice.name: Tool '{choice.get('name')}' not found in tools"
    return _thinking_problem(body)


def _thinking_problem(body: dict) -> str | None:
    """Extended thinking's rules, as the real API enforces them."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if thinking.get("type") != "enabled" or not isinstance(thinking.get("budget_tokens"), int):
        return "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'"
    if thinking["budget_tokens"] < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if body["max_tokens"] <= thinking["budget_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    if body.get("temperature") not in (None, 1):
        return "`temperature` may only be set to 1 when thinking is enabled."
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def sse(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class FakeAnthropic(FakeProvider):
    tag = "anthropic"
    api_key = "sk-ant-fake-key"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)

    async def count_tokens(self, request: web.Request) -> web.Response:
        """The brain's prompt count (words), which tells it apart from the gateway's own tokenizer count."""
        body = await self.record(request)
        if self.bad_key(request.headers.get("x-api-key")):
            return web.json_response(anthropic_error(401, "invalid x-api-key"), status=401)
        if problem := validate({**body, "max_tokens": 1} if isinstance(body, dict) else body):
            return web.json_response(anthropic_error(400, problem), status=400)
        return web.json_response({"input_tokens": brain(normalize(body), tag=self.tag).prompt_tokens})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if self.bad_key(request.headers.get("x-api-key")):
            return web.json_response(anthropic_error(401, "invalid x-api-key"), status=401)
        if not request.headers.get("anthropic-version"):
            return web.json_response(anthropic_error(400, "anthropic-version: header is required"), status=400)
        if problem := validate(body):
            return web.json_response(anthropic_error(400, problem), status=400)
        conv = normalize(body)
        directives = parse_directives(conv.last_user_text)
        early = await self.misbehave(request, directives, lambda status: anthropic_error(
            status, self.echo(request, f"fake anthropic error {status}")))
        if early is not None:
            return early
        reply = brain(conv, tag=self.tag)
        if directives.filter:
            reply.text, reply.finish_reason, reply.pieces = "", "content_filter", []
        cached = (5, 3) if "!cache" in conv.last_user_text else (0, 0)
        usage = {"input_tokens": max(0, reply.prompt_tokens - sum(cached)), "output_tokens": reply.completion_tokens,
                 "cache_read_input_tokens": cached[0], "cache_creation_input_tokens": cached[1]}
        message_id = "msg_fake" + hashlib.sha1(conv.last_user_text.encode()).hexdigest()[:12]
        tool_uses = [{"type": "tool_use", "id": "toolu_" + c.id.removeprefix("call_"), "name": c.name,
                      "input": c.arguments} for c in reply.tool_calls]
        stop_reason = "stop_sequence" if reply.stop_sequence else STOP_REASONS[reply.finish_reason]
        thinking = [{"type": "thinking", "thinking": reply.thinking, "signature": SIGNATURE}] if reply.thinking else []
        message = {"id": message_id, "type": "message", "role": "assistant", "model": body["model"],
                   "content": thinking + ([{"type": "text", "text": reply.text}] if reply.text else []) + tool_uses,
                   "stop_reason": stop_reason, "stop_sequence": reply.stop_sequence, "usage": usage}
        if not body.get("stream"):
            return web.json_response(message)

        end_after = re.search(r"!end-after (\d+)", conv.last_user_text)
        if end_after:
            reply.pieces = reply.pieces[:int(end_after.group(1))]
        response = await self.start_stream(request, "text/event-stream")
        start_usage = {**usage, "output_tokens": 1}
        await response.write(sse("message_start", {"type": "message_start",
                                                   "message": {**message, "content": [], "stop_reason": None,
                                                               "usage": start_usage}}))
        await response.write(sse("ping", {"type": "ping"}))
        index = 0
        if reply.thinking:
            await response.write(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                             "content_block": {"type": "thinking", "thinking": ""}}))
            for delta in ({"type": "thinking_delta", "thinking": reply.thinking},
                          {"type": "signature_delta", "signature": SIGNATURE}):
                await response.write(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                                 "delta": delta}))
            await response.write(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        if reply.pieces:
            text_index = index
            await response.write(sse("content_block_start", {"type": "content_block_start", "index": text_index,
                                                             "content_block": {"type": "text", "text": ""}}))
            completed = await self.stream_pieces(
                request, response, reply, directives,
                lambda piece: sse("content_block_delta", {"type": "content_block_delta", "index": text_index,
                                                          "delta": {"type": "text_delta", "text": piece}}),
                render_error=lambda: sse("error", {"type": "error",
                                                   "error": {"type": "overloaded_error",
                                                             "message": self.echo(request, "Overloaded")}}))
            if not completed:
                return response
            if end_after:
                await response.write_eof()
                return response
            await response.write(sse("content_block_stop", {"type": "content_block_stop", "index": text_index}))
            index += 1
        for block in tool_uses:
            await response.write(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                             "content_block": {**block, "input": {}}}))
            arguments = orjson.dumps(block["input"]).decode()
            for fragment in [""] + [arguments[i:i + 10] for i in range(0, len(arguments), 10)]:
                await response.write(sse("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": fragment}}))
            await response.write(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        await response.write(sse("message_delta", {"type": "message_delta",
                                                   "delta": {"stop_reason": stop_reason,
                                                             "stop_sequence": reply.stop_sequence},
                                                   "usage": {"output_tokens": reply.completion_tokens}}))
        await response.write(sse("message_stop", {"type": "message_stop"}))
        return response
