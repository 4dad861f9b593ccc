"""Fake LLM providers: real HTTP servers on loopback that speak each provider's wire protocol.

Each protocol module (openai.py, anthropic.py, …) subclasses `FakeProvider`: it parses its protocol's
request into a `Conversation`, asks the shared `brain` for a deterministic `Reply`, and renders that
in its protocol, JSON or streaming. Only the providers are faked; our code runs for real.

Directives in the last user message make a fake misbehave on command:
  !status 500                 answer that HTTP status with the protocol's error body
  !status 429 retry-after=2   … with a Retry-After header
  !hang 30                    sleep that many seconds before answering (timeouts)
  !reset                      close the connection without an answer
  !die-after 3                stream 3 content pieces, then drop the connection
  !error-after 2              stream 2 content pieces, then the protocol's in-stream error event
  !filter                     the provider's content-filter / safety block
  !slow 0.05                  wait that long between stream pieces
  !whole                      (OpenAI format) the whole stream and its end in one write, as a proxy in front of a
                              loaded server reads it
  !long 20000 2000            the answer goes on with that many more pieces, one chunk each: ` w0`, ` w1`, …
                              (padded with `-` to the optional length: ` w0------…`)

`hostile = True` makes a fake (or a proxy in front of it) echo credentials into every error body and in-stream
error: the Authorization / x-api-key / api-key headers it received, and every key it has ever seen, bare,
URL-encoded and as base64 of `user:key` (as Basic auth carries it).
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson
from aiohttp import web

CREDENTIAL_HEADERS = ("Authorization", "x-api-key", "api-key", "x-goog-api-key")


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class Turn:
    role: str  # "user" | "assistant" | "tool"
    text: str = ""
    images: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None


@dataclass
class Conversation:
    system: str = ""
    turns: list[Turn] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # function names offered
    tool_choice_none: bool = False
    json_mode: bool = False
    max_tokens: int | None = None
    model: str = ""
    schema: dict | None = None  # a response schema the provider enforces (json_schema / responseSchema / format)
    forced_tool_schema: dict | None = None  # the input schema of a tool the request forces the model to call
    thinking: bool = False  # the request asks for (visible) reasoning
    stop: list[str] = field(default_factory=list)  # stop sequences: the answer ends before the first one

    @property
    def last_user_text(self) -> str:
        return next((t.text for t in reversed(self.turns) if t.role == "user"), "")

    @property
    def images(self) -> int:
        return sum(t.images for t in self.turns)


@dataclass
class Reply:
    text: str | None
    tool_calls: list[ToolCall]
    finish_reason: str  # OpenAI vocabulary: stop | length | tool_calls | content_filter
    prompt_tokens: int
    completion_tokens: int
    pieces: list[str]  # how a stream splits the text
    stop_sequence: str | None = None  # the stop sequence that ended the answer
    thinking: str = ""  # reasoning text, when the conversation asked for it (counted in completion_tokens)


@dataclass
class Directives:
    status: int | None = None
    retry_after: str | None = None
    hang: float = 0.0
    reset: bool = False
    die_after: int | None = None
    error_after: int | None = None
    filter: bool = False
    slow: float = 0.0
    whole: bool = False  # a stream's every event and its end in one write (what a loaded server's proxy reads)


def long_piece(index: int, length: int = 0) -> str:
    """Piece `index` of a `!long` answer."""
    return " " + f"w{index}".ljust(length - 1, "-")


def words(text: str) -> int:
    return len(text.split())


def parse_directives(text: str) -> Directives:
    d = Directives()
    if m := re.search(r"!status (\d{3})(?: retry-after=(\S+))?", text):
        d.status, d.retry_after = int(m.group(1)), m.group(2)
    if m := re.search(r"!hang ([\d.]+)", text):
        d.hang = float(m.group(1))
    d.reset = "!reset" in text
    if m := re.search(r"!die-after (\d+)", text):
        d.die_after = int(m.group(1))
    if m := re.search(r"!error-after (\d+)", text):
        d.error_after = int(m.group(1))
    d.filter = "!filter" in text
    if m := re.search(r"!slow ([\d.]+)", text):
        d.slow = float(m.group(1))
    d.whole = "!whole" in text
    return d


class Held:
    """A stream response whose writes are held and sent, with the stream's end, in one write (`!whole`)."""

    def __init__(self, response: web.StreamResponse):
        self.response, self.parts = response, []

    async def write(self, data: bytes) -> None:
        self.parts.append(data)

    async def send(self) -> None:
        await self.response.write_eof(b"".join(self.parts))


def shaped(schema, text: str, root: dict | None = None, depth: int = 0, *, preset: dict | None = None):
    """A value that satisfies `schema` (JSON Schema, or Gemini's Schema with upper-case types): strings are
    `text`, numbers its word count, arrays one item, objects every listed property — at the root, a property
    named in `preset` takes that value when it is a string the schema wants as a string."""
    root = root if root is not None else schema
    if preset and isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
        value = shaped({k: v for k, v in schema.items() if k != "properties"} | {"properties": {}}, text, root,
                       depth)
        for name, sub in schema["properties"].items():
            wanted = str((sub or {}).get("type", "")).lower() if isinstance(sub, dict) else ""
            value[name] = preset[name] if name in preset and wanted == "string" else shaped(sub, text, root,
                                                                                            depth + 1)
        return value
    if not isinstance(schema, dict) or depth > 20:
        return text
    if isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        return shaped({**(root.get("$defs") or root.get("definitions") or {}).get(name, {})}, text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return shaped(schema[key][0], text, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind or ("object" if "properties" in schema else "string")).lower()
    if kind == "object":
        return {name: shaped(sub, text, root, depth + 1) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [shaped(schema.get("items") or {}, text, root, depth + 1)]
    if kind == "integer":
        return words(text)
    if kind == "number":
        return words(text) + 0.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def brain(conv: Conversation, *, tag: str) -> Reply:
    """Deterministic behaviour every fake shares, so one SDK test suite runs against all of them.

    - the last turn is a tool result → answer "Tool said: <result>"
    - tools are offered (and not refused) → call the first tool with {"query": <last user text>}
    - a tool call forced with its schema → that tool called with input shaped by the schema (`shaped`)
    - a response schema → a JSON value shaped by it
    - JSON mode → a JSON object {"echo": <last user text>, "provider": tag}
    - thinking asked → reasoning text "Thinking about: <last user text>" besides the answer
    - else "[<tag>] You said: <last user text>", plus " (saw N images)" when images were sent
    - the text ends before the first stop sequence found in it (`stop_sequence` says which)
    Usage: words of everything sent (system + turns) and of the answer.
    """
    prompt_tokens = words(conv.system) + sum(words(t.text) + 1 for t in conv.turns) + conv.images * 85
    last = conv.turns[-1] if conv.turns else Turn("user")
    thinking = f"Thinking about: {conv.last_user_text}" if conv.thinking else ""
    if conv.forced_tool_schema is not None and conv.tools and last.role != "tool":
        call = ToolCall(id=f"call_{abs(hash(conv.last_user_text)) % 10**12:012d}", name=conv.tools[0],
                        arguments=shaped(conv.forced_tool_schema, conv.last_user_text,
                                         preset={"echo": conv.last_user_text, "provider": tag}))
        return Reply(None, [call], "tool_calls", prompt_tokens, 12 + words(thinking), [], thinking=thinking)
    if last.role == "tool":
        text = f"Tool said: {last.text}"
    elif conv.schema is not None:
        # the JSON-mode answer where the schema has room for it, schema-shaped values elsewhere
        text = orjson.dumps(shaped(conv.schema, conv.last_user_text,
                                   preset={"echo": conv.last_user_text, "provider": tag})).decode()
    elif conv.tools and not conv.tool_choice_none:
        call = ToolCall(id=f"call_{abs(hash(conv.last_user_text)) % 10**12:012d}", name=conv.tools[0],
                        arguments={"query": conv.last_user_text})
        return Reply(None, [call], "tool_calls", prompt_tokens, 12, [])
    elif conv.json_mode:
        text = orjson.dumps({"echo": conv.last_user_text, "provider": tag}).decode()
    else:
        text = f"[{tag}] You said: {conv.last_user_text}"
        if m := re.search(r"!long (\d+)(?: (\d+))?", conv.last_user_text):
            text += "".join(long_piece(i, int(m.group(2) or 0)) for i in range(int(m.group(1))))
        if conv.images:
            text += f" (saw {conv.images} image{'s' if conv.images != 1 else ''})"
    finish, matched = "stop", None
    hits = [(text.find(s), s) for s in conv.stop if s and s in text]
    if hits:
        at, matched = min(hits)
        text = text[:at]
    if conv.max_tokens is not None and words(text) > conv.max_tokens:
        text = " ".join(text.split()[: conv.max_tokens])
        finish, matched = "length", None
    pieces = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
    if conv.json_mode or conv.schema is not None:
        pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    return Reply(text, [], finish, prompt_tokens, words(text) + words(thinking), pieces, matched, thinking)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeProvider:
    """An aiohttp app on its own thread and event loop. Subclasses add routes in `routes()`."""

    tag = "fake"
    api_key = "test-upstream-key"

    def __init__(self):
        self.port = free_port()
        self.requests: list[dict] = []  # every request received: method, path, query, headers, json
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.active_streams = 0
        self.cancelled_streams = 0
        self.pieces_written = 0  # stream pieces handed to the socket, every stream (back-pressure tests watch it)
        self.forced = ""  # directives applied to every request, e.g. "!status 500" for a deployment that is down
        self.hostile = False  # echo credentials into error bodies (see the module's docstring)
        self.seen_keys: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # lifecycle
    def start(self) -> FakeProvider:
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.tag}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"fake {self.tag} did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # helpers for subclasses
    async def record(self, request: web.Request) -> dict | None:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers), "json": body})
        for name in CREDENTIAL_HEADERS:
            value = request.headers.get(name, "")
            key = value[7:] if value.startswith("Bearer ") else value
            if key and key not in self.seen_keys:
                self.seen_keys.append(key)
        return body

    def echo(self, request: web.Request, message: str) -> str:
        """`message`, plus every credential received when the fake is hostile."""
        if not self.hostile:
            return message
        parts = [f"{name}: {request.headers.get(name, '')}" for name in CREDENTIAL_HEADERS]
        for key in self.seen_keys:
            basic = base64.b64encode(f"proxy-user:{key}".encode()).decode()
            parts.append(f"seen {key} urlencoded {quote(key, safe='')} basic {basic}")
        return f"{message} [request had {'; '.join(parts)}]"

    async def misbehave(self, request: web.Request, directives: Directives, error_body) -> web.StreamResponse | None:
        """Apply !hang/!reset/!status; returns a response to send, or None to carry on."""
        if directives.hang:
            await asyncio.sleep(directives.hang)
        if directives.reset:
            request.transport.close()
            raise asyncio.CancelledError
        if directives.status:
            headers = {"Retry-After": directives.retry_after} if directives.retry_after else {}
            return web.json_response(error_body(directives.status), status=directives.status, headers=headers)
        return None

    async def start_stream(self, request: web.Request, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type,
                                                           "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    async def stream_pieces(self, request, response, reply: Reply, directives: Directives, render_piece, *,
                            render_error=None) -> bool:
        """Write the reply's pieces with `render_piece(piece) -> bytes`. False when the stream was cut short."""
        self.active_streams += 1
        try:
            for index, piece in enumerate(reply.pieces):
                if directives.die_after is not None and index >= directives.die_after:
                    request.transport.close()
                    return False
                if directives.error_after is not None and index >= directives.error_after and render_error:
                    await response.write(render_error())
                    return False
                await response.write(render_piece(piece))  # waits while the reader's TCP window is full
                self.pieces_written += 1
                await asyncio.sleep(directives.slow)
            return True
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled_streams += 1
            raise
        finally:
            self.active_streams -= 1

    def bad_key(self, presented: str | None) -> bool:
        return presented != self.api_key
