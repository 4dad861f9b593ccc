"""A fake of OpenAI's API: /v1/chat/completions (JSON and SSE), /v1/embeddings, /v1/completions.

Also serves Azure OpenAI's deployment paths when `azure=True` (see azure.py)."""

from __future__ import annotations

import hashlib
import re
import time

import orjson
from aiohttp import web

from .base import Conversation, FakeProvider, Held, ToolCall, Turn, brain, parse_directives

REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
VALID_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def openai_error(status: int, message: str | None = None) -> dict:
    kinds = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
             429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}
    return {"error": {"message": message or f"fake openai error {status}", "type": kinds.get(status, "server_error"),
                      "param": None, "code": "rate_limit_exceeded" if status == 429 else None}}


def normalize(body: dict) -> Conversation:
    conv = Conversation(model=body.get("model", ""))
    for message in body.get("messages", []):
        role, content = message["role"], message.get("content")
        text, images = "", 0
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "".join(p.get("text", "") for p in content if p.get("type") == "text")
            images = sum(1 for p in content if p.get("type") == "image_url")
        if role in ("system", "developer"):
            conv.system = (conv.system + "\n\n" + text).strip() if conv.system else text
        elif role == "tool":
            conv.turns.append(Turn("tool", text, tool_call_id=message.get("tool_call_id")))
        else:
            calls = [ToolCall(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"] or "{}"))
                     for c in message.get("tool_calls") or []]
            conv.turns.append(Turn(role, text, images, calls))
    conv.tools = [t["function"]["name"] for t in body.get("tools") or []]
    conv.tool_choice_none = body.get("tool_choice") == "none"
    response_format = body.get("response_format") or {}
    conv.json_mode = response_format.get("type") in ("json_object", "json_schema")
    if response_format.get("type") == "json_schema":
        conv.schema = (response_format.get("json_schema") or {}).get("schema")
    conv.max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    conv.thinking = body.get("reasoning_effort") not in (None, "none", "minimal")
    stop = body.get("stop")
    conv.stop = [stop] if isinstance(stop, str) else list(stop or [])
    return conv


class FakeOpenAI(FakeProvider):
    tag = "openai"
    api_key = "sk-fake-openai-key"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/completions", self.completions)

    def authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        presented = auth[7:] if auth.startswith("Bearer ") else None
        return presented in getattr(self, "api_key_alternatives", set()) or not self.bad_key(presented)

    def validate(self, body) -> str | None:
        if not isinstance(body, dict):
            return "We could not parse the JSON body of your request."
        if not body.get("model"):
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        for message in messages:
            if message.get("role") not in VALID_ROLES:
                return f"Invalid value: '{message.get('role')}'. Supported values are: 'system', 'assistant', ..."
        for name in ("reasoning", "usage", "transforms", "plugins", "models", "provider"):  # OpenRouter's
            if name in body:
                return f"Unrecognized request argument supplied: {name}"
        if "reasoning_effort" in body and not REASONING_MODEL.match(body["model"]):
            return f"Unsupported parameter: 'reasoning_effort' is not supported with this model ({body['model']})."
        schema = ((body.get("response_format") or {}).get("json_schema") or {})
        if (body.get("response_format") or {}).get("type") == "json_schema" and not schema.get("name"):
            return "Missing required parameter: 'response_format.json_schema.name'."
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if not self.authorized(request):
            return web.json_response(openai_error(401, self.echo(request, "Incorrect API key provided: sk-fake***.")),
                                     status=401)
        problem = self.validate(body)
        if problem:
            return web.json_response(openai_error(400, self.echo(request, problem)), status=400)
        conv = normalize(body)
        directives = parse_directives(f"{conv.last_user_text} {self.forced}")
        early = await self.misbehave(request, directives, lambda status: openai_error(
            status, self.echo(request, f"fake openai error {status}")))
        if early is not None:
            return early
        reply = brain(conv, tag=self.tag)
        if directives.filter:
            reply.text, reply.finish_reason, reply.pieces = "", "content_filter", []
        completion_id = "chatcmpl-fake" + hashlib.sha1(conv.last_user_text.encode()).hexdigest()[:10]
        created = int(time.time())
        model = body["model"]
        usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                 "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": len(reply.thinking.split())}}
        tool_calls = [{"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()}}
                      for c in reply.tool_calls]
        if not body.get("stream"):
            message = {"role": "assistant", "content": reply.text, "refusal": None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return web.json_response({
                "id": completion_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
                "usage": usage, "system_fingerprint": "fp_fake"})

        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta, finish=None):
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if wants_usage:  # as OpenAI does: every chunk before the usage chunk says `"usage":null`
                data["usage"] = None
            return b"data: " + orjson.dumps(data) + b"\n\n"

        response = stream = await self.start_stream(request, "text/event-stream")
        if directives.whole:
            response = Held(stream)
        await response.write(chunk({"role": "assistant", "content": "", "refusal": None}))
        for index, call in enumerate(tool_calls):
            await response.write(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                        "function": {"name": call["function"]["name"],
                                                                     "arguments": ""}}]}))
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 10):
                await response.write(chunk({"tool_calls": [{"index": index,
                                                            "function": {"arguments": arguments[start:start + 10]}}]}))
        completed = await self.stream_pieces(
            request, response, reply, directives, lambda piece: chunk({"content": piece}),
            render_error=lambda: b"data: " + orjson.dumps(openai_error(500, self.echo(request, "stream broke")))
            + b"\n\n")
        if not completed:
            if directives.whole:
                await response.send()
            return stream
        await response.write(chunk({}, reply.finish_reason))
        # "!no-usage": an OpenAI-compatible server that ignores include_usage (some do)
        if (body.get("stream_options") or {}).get("include_usage") and "!no-usage" not in conv.last_user_text:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": usage}
            await response.write(b"data: " + orjson.dumps(data) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        if directives.whole:
            await response.send()
        return stream

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        if not self.authorized(request):
            return web.json_response(openai_error(401, "Incorrect API key provided."), status=401)
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if not items:
            return web.json_response(openai_error(400, "'input' is required"), status=400)
        dims = int(body.get("dimensions") or 8)
        data = []
        tokens = 0
        for index, item in enumerate(items):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(text.split())
            digest = hashlib.sha256(text.encode()).digest()
            data.append({"object": "embedding", "index": index,
                         "embedding": [digest[i % 32] / 255 for i in range(dims)]})
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if not self.authorized(request):
            return web.json_response(openai_error(401, "Incorrect API key provided."), status=401)
        prompt = body.get("prompt") or ""
        prompt = prompt if isinstance(prompt, str) else " ".join(prompt)
        text = f" [{self.tag}] completed: {prompt}"
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                 "total_tokens": len(prompt.split()) + len(text.split())}
        base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            return web.json_response({**base, "choices": [{"text": text, "index": 0, "logprobs": None,
                                                           "finish_reason": "stop"}], "usage": usage})
        response = await self.start_stream(request, "text/event-stream")
        for word in text.split(" "):
            data = {**base, "choices": [{"text": word + " ", "index": 0, "logprobs": None, "finish_reason": None}]}
            await response.write(b"data: " + orjson.dumps(data) + b"\n\n")
        data = {**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]}
        await response.write(b"data: " + orjson.dumps(data) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response
