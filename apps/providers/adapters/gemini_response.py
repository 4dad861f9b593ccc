"""Reading Gemini's answers: finish reasons, usage, function calls, errors, and the SSE stream translator.

Split from `gemini.py` (requests and the adapter) to keep each module short; see that module for how Gemini
differs from OpenAI.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import orjson

from .base import (
    ChunkFactory,
    SSEDecoder,
    StreamTranslator,
    UpstreamError,
    error_from_status,
    loads,
    parse_retry_after,
    usage_dict,
)

FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


def finish_reason(reason: str | None, tool_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if tool_calls else "stop"


def usage_from(meta: dict | None) -> dict:
    meta = meta or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return usage_dict(int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
                      int(meta.get("candidatesTokenCount") or 0) + thoughts,
                      cached=int(meta.get("cachedContentTokenCount") or 0), reasoning=thoughts)


def tool_call(part: dict) -> dict:
    call = part["functionCall"]
    out = {"id": call.get("id") or f"call_{secrets.token_hex(12)}", "type": "function",
           "function": {"name": call.get("name", ""), "arguments": orjson.dumps(call.get("args") or {}).decode()}}
    if part.get("thoughtSignature"):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def read_parts(candidate: dict) -> tuple[str, list[dict], str]:
    """A candidate's visible text, its function calls and its thought summaries (OpenRouter's `reasoning`:
    not part of the answer)."""
    text, calls, thoughts = [], [], []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "functionCall" in part:
            calls.append(tool_call(part))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
    return "".join(text), calls, "".join(thoughts)


def gemini_error(err: dict, status: int, headers: Mapping[str, str] | None = None) -> UpstreamError:
    message = str(err.get("message") or f"HTTP {status}").strip()
    details = [d for d in err.get("details") or [] if isinstance(d, dict)]
    if any(d.get("reason") == "API_KEY_INVALID" for d in details):
        # Gemini answers a bad key with 400; it is our credential's fault, not the client's request.
        error = error_from_status(401, message)
        error.upstream_status = status
        return error
    retry_after = parse_retry_after(headers)
    delay = next((d["retryDelay"] for d in details if isinstance(d.get("retryDelay"), str)), None)
    if retry_after is None and delay:
        try:
            retry_after = float(delay.rstrip("s"))
        except ValueError:
            retry_after = None
    code = str(err["status"]).lower() if err.get("status") and 400 <= status < 500 and status != 429 else None
    return error_from_status(status, message, code=code, retry_after=retry_after)


class GeminiStream(StreamTranslator):
    """Each SSE `data:` is a whole GenerateContentResponse carrying the next parts; there is no [DONE]:
    a finishReason is the only sign the answer is complete."""

    __slots__ = ("chunks", "decoder", "failure", "finished", "started", "tools", "usage")

    def __init__(self, chunks: ChunkFactory):
        self.chunks = chunks
        self.decoder = SSEDecoder()
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.tools: dict[int, int] = {}  # candidate index → tool calls seen
        self.usage: dict | None = None
        self.failure: UpstreamError | None = None

    def _start(self, index: int) -> list[dict]:
        if index in self.started:
            return []
        self.started.add(index)
        return [self.chunks.chunk({"role": "assistant", "content": ""}, index=index)]

    def _candidate(self, candidate: dict) -> list[dict]:
        index = int(candidate.get("index") or 0)
        out = self._start(index)
        text, calls, thoughts = read_parts(candidate)
        if thoughts:
            out.append(self.chunks.chunk({"reasoning": thoughts}, index=index))
        if text:
            out.append(self.chunks.chunk({"content": text}, index=index))
        for call in calls:
            position = self.tools.get(index, 0)
            self.tools[index] = position + 1
            arguments = call["function"].pop("arguments")
            out.append(self.chunks.chunk({"tool_calls": [{"index": position, **call,
                                                          "function": {**call["function"], "arguments": ""}}]},
                                         index=index))
            out.append(self.chunks.chunk({"tool_calls": [{"index": position, "function": {"arguments": arguments}}]},
                                         index=index))
        if candidate.get("finishReason"):
            out.append(self.chunks.chunk({}, finish_reason(candidate["finishReason"], index in self.tools), index))
            self.finished.add(index)
        return out

    def _translate(self, events) -> list[dict]:
        out = []
        for _event, data in events:
            event = loads(data)
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("error"), dict):
                err = event["error"]
                code = err.get("code") if isinstance(err.get("code"), int) and err["code"] >= 400 else 500
                self.failure = gemini_error(err, code)
                break
            if event.get("usageMetadata"):
                self.usage = usage_from(event["usageMetadata"])
            candidates = event.get("candidates") or []
            if not candidates and (event.get("promptFeedback") or {}).get("blockReason"):
                out += self._start(0) + [self.chunks.chunk({}, "content_filter")]
                self.finished.add(0)
            for candidate in candidates:
                out += self._candidate(candidate)
        return out

    def feed(self, data: bytes) -> list[dict]:
        if self.failure is not None:
            raise self.failure
        out = self._translate(self.decoder.feed(data))
        # Content that came in the same read as an error event goes out first; the error on the next call.
        if self.failure is not None and not out:
            raise self.failure
        return out

    def close(self) -> list[dict]:
        out = self._translate(self.decoder.close()) if self.failure is None else []
        if self.failure is not None:
            raise self.failure
        if not self.started or self.started - self.finished:
            raise UpstreamError("Upstream stream ended before Gemini sent a finish reason.", status=502,
                                type="upstream_error", code="upstream_stream_truncated", retryable=True)
        return [*out, self.chunks.usage(self.usage or usage_dict(0, 0))]


