"""When every planned candidate is an Anthropic provider, a Messages request needs no translation: the client's
body goes upstream as received (the model replaced by the deployment's name, our own routing fields removed,
`anthropic-version` and `anthropic-beta` passed on) and Anthropic's answer comes back unchanged — the JSON body
as is, the stream's events with their data bytes untouched. The pipeline still chose, failed over, limited and
budgeted the request; usage is read from the answer for the ledger. An in-stream `error` event is not relayed
raw: it is rebuilt from the scrubbed error, since an upstream may echo credentials into it."""

from __future__ import annotations

from apps.core.errors import UpstreamError
from apps.providers.adapters import registry
from apps.providers.adapters.anthropic import ERROR_STATUSES, headers_for, messages_url
from apps.providers.adapters.base import SSEDecoder, Target, UpstreamRequest, json_body, loads

from ..attempts import attempt
from ..context import RequestContext
from ..http import header
from ..pipeline import GATEWAY_FIELDS, open_chat_stream, provider_secrets
from ..resolve import Candidate
from ..runtime import GatewayRuntime

ANTHROPIC = "anthropic"


def eligible(ordered: list[Candidate]) -> bool:
    return bool(ordered) and all(c.provider.type == ANTHROPIC for c in ordered)


def _headers(scope, target: Target) -> dict[str, str]:
    headers = headers_for(target)
    if version := header(scope, b"anthropic-version"):
        headers["anthropic-version"] = version
    if beta := header(scope, b"anthropic-beta"):
        configured = headers.get("anthropic-beta")
        headers["anthropic-beta"] = f"{configured},{beta}" if configured else beta
    return headers


def request(scope, body: dict, target: Target, *, path: str = "") -> UpstreamRequest:
    out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
    out["model"] = target.model
    return UpstreamRequest("POST", messages_url(target) + path, _headers(scope, target), json_body(out))


def openai_usage(anthropic: dict | None) -> dict:
    """Anthropic usage → the OpenAI usage the ledger, budgets and limits read (prompt includes cache tokens)."""
    anthropic = anthropic or {}
    read = int(anthropic.get("cache_read_input_tokens") or 0)
    write = int(anthropic.get("cache_creation_input_tokens") or 0)
    prompt = int(anthropic.get("input_tokens") or 0) + read + write
    completion = int(anthropic.get("output_tokens") or 0)
    details = {"cached_tokens": read, **({"cache_write_tokens": write} if write else {})}
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": details}


async def send(rt: GatewayRuntime, ctx: RequestContext, scope, body: dict, ordered: list[Candidate]) -> bytes:
    """One non-streamed message, failing over across `ordered`: Anthropic's JSON body as it came."""
    adapter = registry.get(ANTHROPIC)

    async def call(candidate: Candidate, target: Target, timeout: float) -> bytes:
        payload = await rt.upstream.fetch(adapter, request(scope, body, target), timeout=timeout, target=target,
                                          secrets=provider_secrets(candidate))
        data = loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise UpstreamError("Upstream returned a malformed message.", status=502, retryable=True)
        ctx.usage = openai_usage(data.get("usage"))
        return payload

    return await attempt(ctx, ordered, call)


class Events:
    """Anthropic's SSE body → its frames (data bytes untouched), noting usage and text for the ledger; an
    `error` event raises (the upstream module scrubs it), after the frames that came before it."""

    __slots__ = ("ctx", "decoder", "done", "error", "usage")

    def __init__(self, ctx: RequestContext):
        self.ctx = ctx
        self.decoder = SSEDecoder()
        self.done = False
        self.error: UpstreamError | None = None
        self.usage: dict = {}

    def _frames(self, events) -> list[bytes]:
        out: list[bytes] = []
        for name, data in events:
            event = loads(data)
            kind = event.get("type") if isinstance(event, dict) else name
            if kind == "error":
                err_type = ((event.get("error") or {}) if isinstance(event, dict) else {}).get("type")
                self.error = err = registry.get(ANTHROPIC).error(ERROR_STATUSES.get(err_type, 500), data)
                if not out:
                    raise err
                break
            if kind == "message_start":
                self.usage.update((event.get("message") or {}).get("usage") or {})
            elif kind == "message_delta":
                self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            elif kind == "content_block_delta":
                text = (event.get("delta") or {}).get("text")
                if text:
                    self.ctx.streamed_text.append(text)
            elif kind == "message_stop":
                self.done = True
                self.ctx.usage = openai_usage(self.usage)
            out.append(b"event: " + (name or kind or "message").encode() + b"\ndata: " + data + b"\n\n")
        return out

    def feed(self, data: bytes) -> list[bytes]:
        if self.error:
            raise self.error
        return self._frames(self.decoder.feed(data))

    def close(self) -> list[bytes]:
        if self.error:
            raise self.error
        out = self._frames(self.decoder.close())
        if not self.done:
            raise UpstreamError("Upstream stream ended before Anthropic's message_stop event.", status=502,
                                type="upstream_error", code="upstream_stream_truncated", retryable=True)
        return out


async def open_stream(rt: GatewayRuntime, ctx: RequestContext, scope, body: dict, ordered: list[Candidate]):
    """The first batch of frames and the iterator of the rest, failing over until the first byte."""
    adapter = registry.get(ANTHROPIC)

    def open_batches(candidate: Candidate, target: Target, timeout: float):
        return rt.upstream.stream_request_batches(adapter, request(scope, body, target), Events(ctx),
                                                  timeout=timeout, target=target,
                                                  secrets=provider_secrets(candidate))

    return await open_chat_stream(rt, ctx, body, ordered, open_batches=open_batches)
