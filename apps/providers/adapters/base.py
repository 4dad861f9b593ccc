"""The adapter contract: pure translation between OpenAI's Chat Completions shapes and one wire protocol.

Adapters do no I/O (the gateway's `upstream` module sends the bytes), which keeps them testable on
their own and lets the gateway own timeouts, retries and cancellation. The exception is a `local`
adapter (the simulated provider), which answers in-process.

Vocabulary:
- `body`: the validated OpenAI request as a dict, `model` already replaced by the upstream name.
- chunk: an OpenAI `chat.completion.chunk` dict. Stream translators return lists of them; a chunk with
  `"choices": []` and a `usage` object carries the final usage, as OpenAI's `include_usage` does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import orjson

from apps.core.errors import OPENAI_TYPES, UpstreamError

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one upstream attempt goes."""

    provider_slug: str
    provider_type: str
    base_url: str  # without trailing slash
    api_key: str | None
    model: str  # upstream model name (Azure: deployment name)
    options: Mapping = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the key
        return f"Target({self.provider_slug!r}, {self.provider_type!r}, {self.base_url!r}, model={self.model!r})"


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def error_from_status(status: int, message: str, *, code: str | None = None, param: str | None = None,
                      retry_after: float | None = None) -> UpstreamError:
    """Map an upstream HTTP status to what the client sees and whether a retry can help."""
    if status == 429:
        return UpstreamError(message, status=429, type="rate_limit_error", code=code or "rate_limit_exceeded",
                             param=param, upstream_status=status, retryable=True, retry_after=retry_after)
    if status in (401, 403):
        # The provider refused *our* key: the client's request was fine, another key may work.
        return UpstreamError(f"Upstream provider rejected the credentials: {message}", status=502,
                             type="upstream_error", code="upstream_auth_error", upstream_status=status,
                             retryable=True)
    if 400 <= status < 500:
        # 404: this deployment does not have the model (or deployment) — another candidate may; the rest of
        # the 4xx range is about the request itself and would fail everywhere.
        return UpstreamError(message, status=status, type=OPENAI_TYPES.get(status, "invalid_request_error"),
                             code=code, param=param, upstream_status=status, retryable=status in (404, 408, 409))
    return UpstreamError(f"Upstream provider error ({status}): {message}", status=502, type="upstream_error",
                         code=code or "upstream_error", upstream_status=status, retryable=True,
                         retry_after=retry_after)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def loads(payload: bytes | str):
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


class ChunkFactory:
    """Builds OpenAI chunks with one id/created/model for a whole stream."""

    __slots__ = ("created", "id", "model")

    def __init__(self, model: str, id: str | None = None, created: int | None = None):
        self.id = id or new_completion_id()
        self.created = created or int(time.time())
        self.model = model

    def chunk(self, delta: dict | None = None, finish_reason: str | None = None, index: int = 0) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}]}

    def usage(self, usage: dict) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage}


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(18)


def usage_dict(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0,
               cache_write: int = 0) -> dict:
    """OpenAI's usage object; cached/reasoning details included when known."""
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if cache_write:
        usage["prompt_tokens_details"]["cache_write_tokens"] = cache_write
    usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


class SSEDecoder:
    """Incremental Server-Sent Events parser: bytes in, (event, data) pairs out. Handles \\r\\n and split lines."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self):
        self._buffer = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def idle(self) -> bool:
        """Between events: nothing of a partial event is held."""
        return not self._buffer and not self._data and self._event is None

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if self._data or self._event is not None or b"\r" in buffer:
            *lines, self._buffer = buffer.split(b"\n")
            return self._lines(lines)
        # The usual stream: whole events of one `data: ` line each, split once per read (not line by line).
        *blocks, self._buffer = buffer.split(b"\n\n")
        events: list[tuple[str | None, bytes]] = []
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                events.append((None, block[6:]))
            elif block:
                events += self._lines([*block.split(b"\n"), b""])
        return events

    def _lines(self, lines: list[bytes]) -> list[tuple[str | None, bytes]]:
        events: list[tuple[str | None, bytes]] = []
        for raw in lines:
            line = raw[:-1] if raw[-1:] == b"\r" else raw
            if not line:
                if self._data or self._event:
                    events.append((self._event, b"\n".join(self._data)))
                self._event, self._data = None, []
            elif line[:1] == b":":
                continue
            else:
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    self._data.append(value)
                elif name == b"event":
                    self._event = value.decode()
        return events

    def close(self) -> list[tuple[str | None, bytes]]:
        rest = self.feed(b"\n\n") if self._buffer.strip() else []
        if self._data:
            rest.append((self._event, b"\n".join(self._data)))
            self._event, self._data = None, []
        return rest


class NDJSONDecoder:
    """Incremental newline-delimited JSON parser (Ollama streams)."""

    __slots__ = ("_buffer",)

    def __init__(self):
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[object]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [obj for line in lines if line.strip() and (obj := loads(line)) is not None]

    def close(self) -> list[object]:
        rest, self._buffer = self._buffer, b""
        return [obj] if rest.strip() and (obj := loads(rest)) is not None else []


class StreamTranslator:
    """Turns an upstream streaming body into OpenAI chunks. Raise UpstreamError on an in-stream error."""

    def feed(self, data: bytes) -> list[dict]:
        raise NotImplementedError

    def close(self) -> list[dict]:
        """The upstream body ended; return what is left (e.g. a final usage chunk)."""
        return []


class Adapter:
    """Base class. Subclasses set `name` and implement the chat methods; embeddings are optional.

    Each concrete adapter class serves one provider type and declares what the rest of the product says about
    it (the `Provider.type` choices, default endpoints, which types work without a key, the `provider/model`
    prefixes users write); `registry` lists them, so adding a protocol is one module and one registry line.
    """

    name = ""  # the wire protocol (OpenAI-compatible servers speak "openai")
    provider_type = ""  # the `Provider.type` value this adapter serves
    label = ""  # how the type is shown to people (admin, API schema)
    default_base_url = ""  # blank: the provider needs a base URL of the user's own
    base_url_required = False  # True: no public endpoint exists (Azure resources, self-hosted servers)
    needs_key = True  # False: works without a key (local servers) or may have none (self-hosted APIs)
    prefixes: tuple[str, ...] = ()  # what users write before the slash in `provider/model` names
    local = False  # True: answers in-process via complete()/stream()/embed() instead of HTTP
    supports_embeddings = False
    supports_completions = False

    # chat
    def chat_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        raise NotImplementedError

    def chat_response(self, payload: bytes, target: Target) -> dict:
        """The upstream's JSON body → an OpenAI `chat.completion` dict."""
        raise NotImplementedError

    def chat_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        raise NotImplementedError

    # embeddings
    def embeddings_request(self, body: dict, target: Target) -> UpstreamRequest:
        raise NotImplementedError

    def embeddings_response(self, payload: bytes, target: Target, body: dict) -> dict:
        """→ OpenAI `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`."""
        raise NotImplementedError

    # legacy completions
    def completions_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        raise NotImplementedError

    def completions_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        """The translator for a streamed /v1/completions body (only where `supports_completions`)."""
        raise NotImplementedError

    # errors
    def error(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None) -> UpstreamError:
        """Default: OpenAI-shaped `{"error": {"message", "type", "code", "param"}}` or a bare message."""
        data = loads(payload)
        message = None
        code = param = None
        if isinstance(data, dict):
            err = data.get("error", data)
            if isinstance(err, dict):
                message = err.get("message")
                code = err.get("code") if isinstance(err.get("code"), str) else None
                param = err.get("param") if isinstance(err.get("param"), str) else None
            elif isinstance(err, str):
                message = err
        if not message:
            message = payload[:300].decode(errors="replace").strip() or f"HTTP {status}"
        return error_from_status(status, str(message), code=code, param=param,
                                 retry_after=parse_retry_after(headers))

    # local adapters only
    async def complete(self, body: dict, target: Target) -> dict:
        raise NotImplementedError

    def stream(self, body: dict, target: Target, chunks: ChunkFactory) -> AsyncIterator[dict]:
        raise NotImplementedError

    async def embed(self, body: dict, target: Target) -> dict:
        raise NotImplementedError


# ---- helpers shared by adapters ------------------------------------------------------------------

def json_body(data: dict) -> bytes:
    return orjson.dumps(data)


def text_of(content) -> str:
    """The text of an OpenAI message `content` (string or parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:image/png;base64,AAAA` → ("image/png", "AAAA"); None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        return None
    return media_type or "application/octet-stream", data


def tool_arguments(value) -> dict:
    """OpenAI tool-call `arguments` (a JSON string) → dict for protocols that want objects."""
    if isinstance(value, dict):
        return value
    parsed = loads(value or "{}")
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def completion(*, id: str | None, model: str, message: dict, finish_reason: str, usage: dict,
               created: int | None = None, system_fingerprint: str | None = None) -> dict:
    return {
        "id": id or new_completion_id(),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
        "system_fingerprint": system_fingerprint,
    }
