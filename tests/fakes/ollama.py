"""A fake of Ollama's native API: /api/chat (JSON, or newline-delimited JSON when streaming) and /api/embed.

Like Ollama it streams unless the request says `"stream": false`, answers errors as `{"error": "<text>"}`,
knows only the models it has "pulled", and ignores credentials — unless built with `require_key=True`,
which stands for Ollama behind an authenticating proxy (or ollama.com's API): then it wants
`Authorization: Bearer <api_key>` and answers 401 {"error": "unauthorized"}. Ollama has no content filter,
so `!filter` does nothing here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from datetime import UTC, datetime

import orjson
from aiohttp import web

from .base import Conversation, FakeProvider, ToolCall, Turn, brain, parse_directives, words

VALID_ROLES = {"system", "user", "assistant", "tool"}


def ollama_error(status: int, message: str | None = None) -> dict:
    return {"error": message or f"fake ollama error {status}"}


def normalize(body: dict) -> Conversation:
    conv = Conversation(model=body.get("model", ""))
    for message in body.get("messages") or []:
        role, text = message["role"], message.get("content") or ""
        if role == "system":
            conv.system = f"{conv.system}\n\n{text}" if conv.system else text
        elif role == "tool":
            conv.turns.append(Turn("tool", text))
        else:
            calls = [ToolCall("", c["function"]["name"], c["function"].get("arguments") or {})
                     for c in message.get("tool_calls") or []]
            conv.turns.append(Turn(role, text, len(message.get("images") or []), calls))
    conv.tools = [t["function"]["name"] for t in body.get("tools") or []]
    conv.json_mode = bool(body.get("format"))
    conv.schema = body["format"] if isinstance(body.get("format"), dict) else None
    limit = (body.get("options") or {}).get("num_predict")
    conv.max_tokens = limit if isinstance(limit, int) and limit > 0 else None  # -1 means "no limit"
    return conv


def _message_problem(message) -> str | None:
    if not isinstance(message, dict) or message.get("role") not in VALID_ROLES:
        role = message.get("role") if isinstance(message, dict) else message
        return f"invalid role: {role!r}, expected one of system, user, assistant, tool"
    if not isinstance(message.get("content", ""), str):
        return "json: cannot unmarshal array into Go struct field Message.messages.content of type string"
    for image in message.get("images") or []:
        try:
            base64.b64decode(image, validate=True)
        except (binascii.Error, TypeError, ValueError):
            return "illegal base64 data at input byte 0"
    for call in message.get("tool_calls") or []:
        if not isinstance((call.get("function") or {}).get("arguments", {}), dict):
            return ("json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls."
                    "function.arguments of type api.ToolCallFunctionArguments")
    return None


class FakeOllama(FakeProvider):
    tag = "ollama"
    api_key = "ollama-proxy-key"

    def __init__(self, *, models=("llama3.2", "nomic-embed-text"), require_key: bool = False):
        super().__init__()
        self.models = {self._full_name(m) for m in models}
        self.require_key = require_key

    @staticmethod
    def _full_name(model: str) -> str:
        return model if ":" in model else f"{model}:latest"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/embed", self.embed)

    def refusal(self, request: web.Request, body) -> web.Response | None:
        """What Ollama (or the proxy in front of it) says before looking at the conversation."""
        auth = request.headers.get("Authorization", "")
        if self.require_key and not (auth.startswith("Bearer ") and not self.bad_key(auth[7:])):
            return web.json_response(ollama_error(401, "unauthorized"), status=401)
        if not isinstance(body, dict):
            return web.json_response(ollama_error(400, "invalid request body"), status=400)
        if not body.get("model"):
            return web.json_response(ollama_error(400, "model is required"), status=400)
        if self._full_name(body["model"]) not in self.models:
            return web.json_response(ollama_error(404, f"model '{body['model']}' not found"), status=404)
        return None

    def validate(self, body: dict) -> str | None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return "messages is required and must be a list"
        for message in messages:
            if problem := _message_problem(message):
                return problem
        fmt = body.get("format")
        if fmt is not None and fmt != "json" and not isinstance(fmt, dict):
            return 'invalid format: expected "json" or a valid JSON schema'
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        if problem := self.validate(body):
            return web.json_response(ollama_error(400, problem), status=400)
        conv = normalize(body)
        directives = parse_directives(conv.last_user_text)
        early = await self.misbehave(request, directives, ollama_error)
        if early is not None:
            return early
        reply = brain(conv, tag=self.tag)
        model = body["model"]

        def line(content: str, **extra) -> bytes:
            message = {"role": "assistant", "content": content, **extra}
            data = {"model": model, "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "message": message, "done": False}
            return orjson.dumps(data) + b"\n"

        calls = [{"function": {"name": c.name, "arguments": c.arguments}} for c in reply.tool_calls]
        final = {"done": True, "done_reason": "length" if reply.finish_reason == "length" else "stop",
                 "total_duration": 5_000_000, "load_duration": 1_000_000,
                 "prompt_eval_count": reply.prompt_tokens, "prompt_eval_duration": 1_000_000,
                 "eval_count": reply.completion_tokens, "eval_duration": 3_000_000}
        if body.get("stream") is False:
            data = orjson.loads(line(reply.text or "", **({"tool_calls": calls} if calls else {})))
            return web.json_response({**data, **final})

        response = await self.start_stream(request, "application/x-ndjson")
        if calls:
            await response.write(line("", tool_calls=calls))
        completed = await self.stream_pieces(
            request, response, reply, directives, line,
            render_error=lambda: orjson.dumps(ollama_error(500, "an error was encountered while running the model"))
            + b"\n")
        if completed:
            await response.write(orjson.dumps({**orjson.loads(line("")), **final}) + b"\n")
        return response

    async def embed(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        refused = self.refusal(request, body)
        if refused is not None:
            return refused
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else inputs if inputs is not None else []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return web.json_response(ollama_error(400, "invalid input type"), status=400)
        dims = int(body.get("dimensions") or 8)
        vectors = []
        for item in items:
            digest = hashlib.sha256(item.encode()).digest()
            raw = [digest[i % 32] / 255 - 0.5 for i in range(dims)]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            vectors.append([x / norm for x in raw])  # /api/embed returns L2-normalized vectors
        return web.json_response({"model": body["model"], "embeddings": vectors, "total_duration": 2_000_000,
                                  "load_duration": 500_000, "prompt_eval_count": sum(words(i) for i in items)})
