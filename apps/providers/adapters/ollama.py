"""Ollama's native API: /api/chat (newline-delimited JSON when streaming) and /api/embed.

Ollama itself has no keys; a configured key is sent as a Bearer token (Ollama behind an authenticating
proxy, or ollama.com's hosted API). Images travel as bare base64 strings on the message, so only data:
URLs can be sent. Tool calls carry their arguments as objects and have no ids: we make ids up for the
client, and on the way back turn the client's `tool_call_id` into the `tool_name` Ollama understands.
"""

from __future__ import annotations

import base64
import secrets
import struct
from collections.abc import Mapping

import orjson

from .base import (
    Adapter,
    ChunkFactory,
    NDJSONDecoder,
    StreamTranslator,
    Target,
    UpstreamError,
    UpstreamRequest,
    completion,
    json_body,
    loads,
    parse_data_url,
    text_of,
    tool_arguments,
    usage_dict,
)
from .openai import extra_headers

# OpenAI sampling fields that Ollama's `options` accepts under the same name.
SAME_NAME_OPTIONS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
# Provider-level settings worth exposing: Ollama's default context window silently truncates long prompts.
PROVIDER_OPTIONS = ("num_ctx",)


def headers_for(target: Target) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    headers.update(extra_headers(target))
    return headers


def _invalid(message: str, code: str, param: str | None = None) -> UpstreamError:
    return UpstreamError(message, status=400, type="invalid_request_error", code=code, param=param)


def _images(content) -> list[str]:
    if not isinstance(content, list):
        return []
    images = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "image_url":
            continue
        image = part.get("image_url")
        url = image.get("url", "") if isinstance(image, dict) else str(image or "")
        parsed = parse_data_url(url)
        if parsed is None:
            raise _invalid("Ollama accepts only inline images: send the image as a base64 data: URL, "
                           "not a web address.", "unsupported_image_url", "messages")
        images.append(parsed[1])
    return images


def _messages(body: dict) -> list[dict]:
    names: dict[str, str] = {}  # tool_call_id → function name, learnt from earlier assistant turns
    out = []
    for message in body.get("messages") or []:
        role, content = message.get("role"), message.get("content")
        text = text_of(content)
        if role in ("system", "developer"):
            out.append({"role": "system", "content": text})
        elif role in ("tool", "function"):
            item = {"role": "tool", "content": text}
            name = names.get(message.get("tool_call_id")) or message.get("name")
            if name:
                item["tool_name"] = name
            out.append(item)
        else:
            item = {"role": role, "content": text}
            if images := _images(content):
                item["images"] = images
            calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict) and c.get("function")]
            if calls:
                item["tool_calls"] = [{"function": {"name": c["function"].get("name", ""),
                                                    "arguments": tool_arguments(c["function"].get("arguments"))}}
                                      for c in calls]
                names.update({c.get("id"): c["function"].get("name", "") for c in calls})
            out.append(item)
    return out


def _options(body: dict, target: Target) -> dict:
    options = {key: body[key] for key in SAME_NAME_OPTIONS if body.get(key) is not None}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        options["num_predict"] = limit
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    options.update({key: target.options[key] for key in PROVIDER_OPTIONS if target.options.get(key)})
    return options


def chat_body(body: dict, target: Target, *, stream: bool) -> dict:
    # `stream` is always explicit: Ollama streams unless told otherwise.
    out: dict = {"model": target.model, "messages": _messages(body), "stream": stream}
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools and body.get("tool_choice") != "none":  # Ollama has no tool_choice; "none" = offer no tools
        out["tools"] = tools
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        out["format"] = "json"
    elif response_format.get("type") == "json_schema":
        out["format"] = (response_format.get("json_schema") or {}).get("schema") or "json"
    if options := _options(body, target):
        out["options"] = options
    if target.options.get("keep_alive") is not None:
        out["keep_alive"] = target.options["keep_alive"]
    return out


def _call_id() -> str:
    return "call_" + secrets.token_hex(12)


def _finish(data: dict, tool_calls: bool) -> str:
    if tool_calls:
        return "tool_calls"
    # done_reason is "stop", "length", or "load"/"unload" for model management; only "length" means cut off.
    return "length" if data.get("done_reason") == "length" else "stop"


def _usage(data: dict) -> dict:
    # prompt_eval_count is absent when the whole prompt came from Ollama's cache.
    return usage_dict(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))


def _arguments(function: Mapping) -> str:
    arguments = function.get("arguments")
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()


def _stream_error(data: dict) -> UpstreamError:
    return UpstreamError(f"Ollama error mid-stream: {data.get('error')}", status=502, type="upstream_error",
                         code="upstream_stream_error", retryable=True)


class OllamaStream(StreamTranslator):
    __slots__ = ("calls", "chunks", "decoder", "done", "pending_error", "started")

    def __init__(self, chunks: ChunkFactory):
        self.chunks = chunks
        self.decoder = NDJSONDecoder()
        self.started = self.done = False
        self.calls = 0
        self.pending_error: UpstreamError | None = None

    def _translate(self, lines: list) -> list[dict]:
        if self.pending_error is not None:
            raise self.pending_error
        out = []
        for line in lines:
            if not isinstance(line, dict) or self.done:
                continue
            if "error" in line:
                # Hand out what arrived before the error in the same read first; raise on the next call.
                self.pending_error = _stream_error(line)
                if not out:
                    raise self.pending_error
                break
            if not self.started:
                self.started = True
                out.append(self.chunks.chunk({"role": "assistant", "content": ""}))
            message = line.get("message") or {}
            if message.get("content"):
                out.append(self.chunks.chunk({"content": message["content"]}))
            # Ollama sends each tool call whole, so it becomes one opening delta and one arguments delta.
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                index, self.calls = self.calls, self.calls + 1
                out.append(self.chunks.chunk({"tool_calls": [{
                    "index": index, "id": call.get("id") or _call_id(), "type": "function",
                    "function": {"name": function.get("name", ""), "arguments": ""}}]}))
                out.append(self.chunks.chunk({"tool_calls": [{"index": index,
                                                              "function": {"arguments": _arguments(function)}}]}))
            if line.get("done"):
                self.done = True
                out.append(self.chunks.chunk({}, finish_reason=_finish(line, self.calls > 0)))
                out.append(self.chunks.usage(_usage(line)))
        return out

    def feed(self, data: bytes) -> list[dict]:
        return self._translate(self.decoder.feed(data))

    def close(self) -> list[dict]:
        out = self._translate(self.decoder.close())
        if not self.done:
            raise UpstreamError("Ollama's stream ended before its final message.", status=502,
                                type="upstream_error", code="upstream_stream_truncated", retryable=True)
        return out


def _embedding(vector: list[float], encoding_format: str | None):
    if encoding_format == "base64":  # OpenAI's packing: little-endian float32
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


class OllamaAdapter(Adapter):
    name = "ollama"
    provider_type = "ollama"
    label = "Ollama"
    default_base_url = "http://localhost:11434"
    needs_key = False  # a local server
    prefixes = ("ollama",)
    supports_embeddings = True

    def chat_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{target.base_url}/api/chat", headers_for(target),
                               json_body(chat_body(body, target, stream=stream)))

    def chat_response(self, payload: bytes, target: Target) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise UpstreamError("Upstream returned a malformed completion.", status=502, retryable=True)
        upstream = data["message"]
        calls = [{"id": call.get("id") or _call_id(), "type": "function",
                  "function": {"name": (call.get("function") or {}).get("name", ""),
                               "arguments": _arguments(call.get("function") or {})}}
                 for call in upstream.get("tool_calls") or []]
        message = {"role": "assistant", "content": upstream.get("content") or ("" if not calls else None)}
        if calls:
            message["tool_calls"] = calls
        return completion(id=None, model=target.model, message=message, finish_reason=_finish(data, bool(calls)),
                          usage=_usage(data))

    def chat_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        return OllamaStream(chunks)

    def embeddings_request(self, body: dict, target: Target) -> UpstreamRequest:
        inputs = body.get("input")
        if not (isinstance(inputs, str) or (isinstance(inputs, list) and all(isinstance(i, str) for i in inputs))):
            raise _invalid("Ollama embeds text only: `input` must be a string or a list of strings.",
                           "unsupported_input", "input")
        out = {"model": target.model, "input": inputs}
        if body.get("dimensions"):
            out["dimensions"] = body["dimensions"]
        return UpstreamRequest("POST", f"{target.base_url}/api/embed", headers_for(target), json_body(out))

    def embeddings_response(self, payload: bytes, target: Target, body: dict) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
            raise UpstreamError("Upstream returned malformed embeddings.", status=502, retryable=True)
        encoding_format = body.get("encoding_format")
        tokens = int(data.get("prompt_eval_count") or 0)
        return {"object": "list", "model": target.model,
                "data": [{"object": "embedding", "index": index, "embedding": _embedding(vector, encoding_format)}
                         for index, vector in enumerate(data["embeddings"])],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def error(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None) -> UpstreamError:
        # Ollama's body is {"error": "<text>"}, which the default parser already reads.
        error = super().error(status, payload, headers)
        if status == 404 and "not found" in error.message:
            error.code = error.code or "model_not_found"
        return error
