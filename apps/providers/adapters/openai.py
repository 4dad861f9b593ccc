"""OpenAI and every OpenAI-compatible server (vLLM, Groq, Together, OpenRouter…): near pass-through."""

from __future__ import annotations

from .base import (
    Adapter,
    ChunkFactory,
    SSEDecoder,
    StreamTranslator,
    Target,
    UpstreamError,
    UpstreamRequest,
    json_body,
    loads,
)
from .reasoning import is_openai_reasoning_model, openai_effort, reasoning_of


def extra_headers(target: Target) -> dict[str, str]:
    """Headers configured on the provider (`options.headers`); they go last so they can override ours."""
    return {str(name): str(value) for name, value in (target.options.get("headers") or {}).items()}


def headers_for(target: Target) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    if target.options.get("organization"):
        headers["OpenAI-Organization"] = str(target.options["organization"])
    headers.update(extra_headers(target))
    return headers


def chat_body(body: dict, target: Target, *, stream: bool) -> dict:
    out = dict(body)
    out["model"] = target.model
    if "reasoning" in out:  # OpenRouter's object: only reasoning models take an effort, and only by that name
        reasoning = reasoning_of(out)
        del out["reasoning"]
        effort = openai_effort(reasoning) if is_openai_reasoning_model(target.model) else None
        if effort and "reasoning_effort" not in out:
            out["reasoning_effort"] = effort
    if stream:
        out["stream"] = True
        # Always ask for usage so costs are exact; the gateway strips it unless the client asked.
        out["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        out.pop("stream", None)
        out.pop("stream_options", None)
    return out


def relayable(data: bytes) -> bool:
    """Whether a chunk's JSON may be relayed as the upstream wrote it: a single-choice chunk with a delta, no
    finish reason yet, no usage (null at most, compactly written), no error and no `provider` of its own — the
    bulk of every stream. Anything else is decoded. Key names inside JSON strings are escaped (`\\"usage\\"`),
    so these byte tests cannot be fooled by content."""
    return (data[:1] == b"{" and data[-1:] == b"}" and b'"finish_reason":null' in data and b'"delta"' in data
            and data.count(b'"finish_reason"') == 1 and b'"error"' not in data and b'"provider"' not in data
            and (b'"usage"' not in data or data.count(b'"usage"') == data.count(b'"usage":null') == 1))


class RelayableRun(bytes):
    """Whole SSE events of one upstream read, exactly as the upstream wrote them (`data: {…}\n\n` each), every
    one `relayable`: the /v1 relay rewrites a run with a byte replacement or two instead of chunk by chunk."""

    __slots__ = ()


# Where the events that must be decoded begin: a finish reason, usage, an error, the end.
_DECODE_FROM = (b'"finish_reason":"', b'"usage":{', b"data: [DONE]", b'"error"')


def relayable_run(data: bytes) -> int:
    """The length of the longest prefix of `data` made of whole events that are each `relayable`, 0 if none
    (or if telling would take a walk event by event: the caller's decoder does that).

    Checked by counting over the whole prefix, which costs a few byte scans rather than a few per event: with
    `\n\n` only ever between events (JSON strings escape newlines), k events each begin `data: {`, end `}`,
    are one line, and have one non-empty `choices` array; as many `"index"`, `"delta"` and
    `"finish_reason":null` as events and no other finish reason means one choice each, with a delta, unfinished;
    `"error"` and `"provider"` appear in none, and `"usage"` only as `"usage":null`."""
    end = len(data)
    for marker in _DECODE_FROM:
        at = data.find(marker, 0, end)
        if at != -1:
            end = at
    end = data.rfind(b"\n\n", 0, end) + 2
    if end < 2:
        return 0
    run = data[:end] if end < len(data) else data
    k = run.count(b"\n\n")
    if not (run[:7] == b"data: {" and run.count(b"\n\ndata: {") == k - 1 and run.count(b"}\n\n") == k
            and run.count(b"\n") == 2 * k and b"\r" not in run and b'"provider"' not in run
            and run.count(b'"choices":[{') == k and run.count(b'"index"') == k and run.count(b'"delta"') == k
            and run.count(b'"finish_reason"') == k and run.count(b'"finish_reason":null') == k):
        return 0
    usage = run.count(b'"usage"')
    if usage and (usage > k or run.count(b'"usage":null') != usage):
        return 0
    return end


class OpenAIStream(StreamTranslator):
    """SSE `data:` chunks as they are. A stream that ends without `[DONE]` or a finish_reason was cut off.

    `relay`: hand chunks that pass `relayable` over as their JSON bytes, undecoded, and a read's leading run of
    such events as one `RelayableRun` (the /v1/chat/completions relay inserts its fields at the byte level and
    decodes only what it must; apps/gateway/sse.py)."""

    __slots__ = ("decoder", "finished", "pending", "relay")

    def __init__(self, relay: bool = False):
        self.decoder = SSEDecoder()
        self.finished = False
        self.pending: UpstreamError | None = None  # an error read together with content, raised next time
        self.relay = relay

    def _translate(self, events) -> list:
        if self.pending is not None:
            raise self.pending
        out = []
        relay = self.relay
        for _event, data in events:
            if relay and relayable(data):
                out.append(data)
                continue
            if data == b"[DONE]":
                self.finished = True
                continue
            chunk = loads(data)
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
                error = UpstreamError(str(err.get("message") or "upstream stream error"), status=502,
                                      type=err.get("type") or "upstream_error", code=err.get("code"), retryable=True)
                if out:  # deliver what came before the error first
                    self.pending = error
                    return out
                raise error
            if any(choice.get("finish_reason") for choice in chunk.get("choices") or ()):
                self.finished = True
            out.append(chunk)
        return out

    def feed(self, data: bytes) -> list[dict]:
        if self.relay and self.pending is None and self.decoder.idle():
            end = relayable_run(data)
            if end == len(data):
                return [RelayableRun(data)]
            if end:
                run = RelayableRun(data[:end])
                try:
                    return [run, *self._translate(self.decoder.feed(data[end:]))]
                except UpstreamError as error:  # deliver what came before the error first
                    self.pending = error
                    return [run]
        return self._translate(self.decoder.feed(data))

    def close(self) -> list[dict]:
        out = self._translate(self.decoder.close())
        if not self.finished:
            raise UpstreamError("The upstream stream ended before it was complete.", status=502,
                                type="upstream_error", code="upstream_stream_truncated", retryable=True)
        return out


class OpenAIAdapter(Adapter):
    name = "openai"
    provider_type = "openai"
    label = "OpenAI"
    default_base_url = "https://api.openai.com/v1"
    prefixes = ("openai",)
    supports_embeddings = True
    supports_completions = True

    def chat_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{target.base_url}/chat/completions", headers_for(target),
                               json_body(chat_body(body, target, stream=stream)))

    def chat_response(self, payload: bytes, target: Target) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError("Upstream returned a malformed completion.", status=502, retryable=True)
        return data

    def chat_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        return OpenAIStream()

    def embeddings_request(self, body: dict, target: Target) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{target.base_url}/embeddings", headers_for(target),
                               json_body({**body, "model": target.model}))

    def embeddings_response(self, payload: bytes, target: Target, body: dict) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or "data" not in data:
            raise UpstreamError("Upstream returned malformed embeddings.", status=502, retryable=True)
        return data

    def completions_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{target.base_url}/completions", headers_for(target),
                               json_body(chat_body(body, target, stream=stream)))

    def completions_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        # `text_completion` chunks pass through as they are, exactly like chat chunks.
        return OpenAIStream()


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Any server speaking OpenAI's API (vLLM, LM Studio, LiteLLM, Together…): the user's own base URL,
    and a key only if that server wants one."""

    provider_type = "openai_compatible"
    label = "OpenAI-compatible"
    default_base_url = ""
    base_url_required = True
    needs_key = False
    prefixes = ("custom",)
