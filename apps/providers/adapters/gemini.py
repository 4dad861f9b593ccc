"""Google Gemini (generativelanguage v1beta): generateContent, streamGenerateContent (SSE), batchEmbedContents.

Gemini differs from OpenAI in ways that shape this module:
- roles are only "user" and "model" and must alternate, so consecutive same-role messages are merged
  (tool results become functionResponse parts of a user turn);
- a functionResponse names its function rather than citing a call id, so names are looked up from the
  earlier assistant tool_calls; Gemini's function calls carry no ids, so we mint them;
- images must be inline bytes (fileData wants URIs of files uploaded to Google), so https URLs are refused;
- tool parameter schemas are an OpenAPI subset that rejects unknown keys, so JSON Schema is trimmed to it.
The API key goes in the `x-goog-api-key` header, never in the URL (URLs end up in logs).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from urllib.parse import quote

from .base import (
    Adapter,
    ChunkFactory,
    StreamTranslator,
    Target,
    UpstreamError,
    UpstreamRequest,
    completion,
    json_body,
    loads,
    new_completion_id,
    parse_data_url,
    text_of,
    tool_arguments,
)
from .gemini_response import GeminiStream, finish_reason, gemini_error, read_parts, usage_from
from .gemini_schema import response_schema
from .reasoning import gemini_budget, reasoning_of
from .simulated import estimate_tokens

API_VERSION = "v1beta"
TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
# The OpenAPI-subset fields Gemini's Schema accepts; anything else is a 400 "Unknown name".
SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
               "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
               "minimum", "maximum", "anyOf", "propertyOrdering", "default", "example"}


# ---- request ----------------------------------------------------------------------------------------

def endpoint(target: Target, method: str) -> str:
    base = target.base_url.rstrip("/").removesuffix(f"/{API_VERSION}")
    model = target.model if "/" in target.model else f"models/{target.model}"  # tunedModels/… pass as is
    return f"{base}/{API_VERSION}/{quote(model, safe='/')}:{method}"


def headers_for(target: Target) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    for name, value in (target.options.get("headers") or {}).items():
        headers[str(name)] = str(value)
    return headers


def invalid(message: str, code: str) -> UpstreamError:
    return UpstreamError(message, status=400, type="invalid_request_error", code=code)


def _inline(url: str, what: str) -> dict:
    parsed = parse_data_url(url or "")
    if parsed is None:
        raise invalid(f"Gemini accepts {what} only as base64 data: URLs, not links; inline the bytes "
                      f"(data:<media type>;base64,...).", f"unsupported_{what.replace(' ', '_')}_url")
    return {"inlineData": {"mimeType": parsed[0], "data": parsed[1]}}


def content_parts(content) -> list[dict]:
    """An OpenAI message `content` → Gemini parts, in order; empty text is dropped (Gemini rejects it)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_inline(image.get("url") if isinstance(image, dict) else image, "image"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format') or 'wav'}",
                                         "data": audio.get("data", "")}})
        elif kind == "file":
            parts.append(_inline((part.get("file") or {}).get("file_data"), "file"))
    return parts


def sanitize_schema(schema, defs: Mapping | None = None, depth: int = 0):
    """JSON Schema → Gemini's Schema subset: inline local $refs, `type: [x, "null"]` → nullable, drop the rest."""
    if not isinstance(schema, dict) or depth > 32:
        return schema
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in defs:
        schema = {**defs[ref.rsplit("/", 1)[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key in ("oneOf", "anyOf"):
            out["anyOf"] = [sanitize_schema(s, defs, depth + 1) for s in value]
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: sanitize_schema(s, defs, depth + 1) for name, s in value.items()}
        elif key == "items":
            out["items"] = sanitize_schema(value, defs, depth + 1)
        elif key in SCHEMA_KEYS:
            out[key] = value
    return out


def function_declaration(function: dict) -> dict:
    declaration = {"name": function.get("name", "")}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = sanitize_schema(function.get("parameters"))
    # Gemini refuses an OBJECT schema without properties ("should be non-empty"); no parameters says the same.
    if isinstance(parameters, dict) and parameters.get("properties"):
        declaration["parameters"] = {**parameters, "type": "object"}
    return declaration


def _tool_config(choice) -> dict | None:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}} if name else None
    mode = TOOL_MODES.get(choice) if isinstance(choice, str) else None
    return {"functionCallingConfig": {"mode": mode}} if mode else None


def generation_config(body: dict) -> dict:
    config = {}
    for source, name in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"), ("seed", "seed"),
                         ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
                         ("n", "candidateCount")):
        if body.get(source) is not None:
            config[name] = body[source]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["responseSchema"] = response_schema(schema)
    reasoning = reasoning_of(body)
    if reasoning is not None:
        budget = gemini_budget(reasoning)
        config["thinkingConfig"] = {"thinkingBudget": budget}
        if budget and not reasoning.exclude:
            config["thinkingConfig"]["includeThoughts"] = True
    return config


class _Contents:
    """Builds `contents`, merging consecutive same-role turns because Gemini requires alternation."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, role: str, parts: list[dict]) -> None:
        if not parts:
            return
        if not self.items or self.items[-1]["role"] != role:
            self.items.append({"role": role, "parts": parts})
            return
        previous = self.items[-1]["parts"]
        first_text = next((p for p in parts if "text" in p), None)
        if first_text is not None and any(p.get("text") for p in previous):
            # Gemini concatenates a turn's text parts; keep the two messages from running together.
            first_text["text"] = "\n" + first_text["text"]
        previous.extend(parts)


def _function_call_part(call: dict) -> dict:
    function = call.get("function") or call
    part = {"functionCall": {"name": function.get("name", ""), "args": tool_arguments(function.get("arguments"))}}
    # Thinking models sign their function calls and want the signature back on the next turn; we hand it
    # to the client where Google's own OpenAI-compatible endpoint does (extra_content.google).
    signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
    if signature:
        part["thoughtSignature"] = signature
    return part


def chat_body(body: dict, target: Target) -> dict:
    system: list[str] = []
    contents = _Contents()
    names: dict[str, str] = {}  # tool_call_id → function name, from the assistant turns seen so far
    for message in body.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role == "user":
            contents.add("user", content_parts(message.get("content")))
        elif role == "assistant":
            parts = [{"text": text}] if (text := text_of(message.get("content"))) else []
            calls = list(message.get("tool_calls") or [])
            if message.get("function_call"):  # legacy single function call
                calls.append({"function": message["function_call"]})
            for call in calls:
                if call.get("id"):
                    names[call["id"]] = (call.get("function") or {}).get("name", "")
                parts.append(_function_call_part(call))
            contents.add("model", parts)
        elif role in ("tool", "function"):
            name = names.get(message.get("tool_call_id") or "") or message.get("name")
            if not name:
                raise invalid(f"The tool message with tool_call_id {message.get('tool_call_id')!r} does not answer "
                              f"any earlier assistant tool call; Gemini needs the function's name.",
                              "invalid_tool_call_id")
            response = {"name": name, "response": {"content": text_of(message.get("content"))}}
            contents.add("user", [{"functionResponse": response}])
    out: dict = {"contents": contents.items}
    if system_text := "\n\n".join(s for s in system if s):
        out["systemInstruction"] = {"parts": [{"text": system_text}]}
    functions = [t.get("function") or {} for t in body.get("tools") or [] if t.get("type", "function") == "function"]
    functions = functions or list(body.get("functions") or [])
    if functions:
        out["tools"] = [{"functionDeclarations": [function_declaration(f) for f in functions]}]
        config = _tool_config(body.get("tool_choice", body.get("function_call")))
        if config:
            out["toolConfig"] = config
    if config := generation_config(body):
        out["generationConfig"] = config
    if target.options.get("safety_settings"):
        out["safetySettings"] = list(target.options["safety_settings"])
    return out


class GeminiAdapter(Adapter):
    name = "gemini"
    provider_type = "gemini"
    label = "Google Gemini"
    default_base_url = "https://generativelanguage.googleapis.com"
    prefixes = ("google", "gemini")
    supports_embeddings = True

    def chat_request(self, body: dict, target: Target, *, stream: bool) -> UpstreamRequest:
        url = f"{endpoint(target, 'streamGenerateContent')}?alt=sse" if stream else endpoint(target, "generateContent")
        return UpstreamRequest("POST", url, headers_for(target), json_body(chat_body(body, target)))

    def chat_response(self, payload: bytes, target: Target) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or not ("candidates" in data or "promptFeedback" in data):
            raise UpstreamError("Upstream returned a malformed completion.", status=502, retryable=True)
        usage = usage_from(data.get("usageMetadata"))
        completion_id = f"chatcmpl-{data['responseId']}" if data.get("responseId") else new_completion_id()
        candidates = data.get("candidates") or []
        if not candidates:  # the prompt itself was blocked (promptFeedback.blockReason)
            return completion(id=completion_id, model=target.model, usage=usage, finish_reason="content_filter",
                              message={"role": "assistant", "content": ""})
        choices = []
        for position, candidate in enumerate(candidates):
            text, calls, thoughts = read_parts(candidate)
            message = {"role": "assistant", "content": text if text or not calls else None}
            if thoughts:
                message["reasoning"] = thoughts
            if calls:
                message["tool_calls"] = calls
            choices.append({"index": candidate.get("index", position), "message": message, "logprobs": None,
                            "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls))})
        result = completion(id=completion_id, model=target.model, usage=usage, message=choices[0]["message"],
                            finish_reason=choices[0]["finish_reason"])
        result["choices"] = choices
        return result

    def chat_stream(self, target: Target, chunks: ChunkFactory) -> StreamTranslator:
        return GeminiStream(chunks)

    def embeddings_request(self, body: dict, target: Target) -> UpstreamRequest:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if not all(isinstance(item, str) for item in items):
            raise invalid("Gemini embeds text only; token-id inputs are not supported.", "unsupported_input")
        model = target.model if "/" in target.model else f"models/{target.model}"
        requests = []
        for item in items:
            request = {"model": model, "content": {"parts": [{"text": item}]}}
            if body.get("dimensions"):
                request["outputDimensionality"] = body["dimensions"]
            requests.append(request)
        return UpstreamRequest("POST", endpoint(target, "batchEmbedContents"), headers_for(target),
                               json_body({"requests": requests}))

    def embeddings_response(self, payload: bytes, target: Target, body: dict) -> dict:
        data = loads(payload)
        if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
            raise UpstreamError("Upstream returned malformed embeddings.", status=502, retryable=True)
        base64_wanted = body.get("encoding_format") == "base64"
        out = []
        for index, item in enumerate(data["embeddings"]):
            values = item.get("values") or []
            if base64_wanted:  # OpenAI's base64 form: little-endian float32
                values = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
            out.append({"object": "embedding", "index": index, "embedding": values})
        # batchEmbedContents reports no token usage: estimate it (4 characters a token) so costs are not zero.
        inputs = body.get("input")
        tokens = int((data.get("usageMetadata") or {}).get("promptTokenCount") or 0) or sum(
            estimate_tokens(text) for text in ([inputs] if isinstance(inputs, str) else inputs or []))
        return {"object": "list", "data": out, "model": target.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def error(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None) -> UpstreamError:
        data = loads(payload)
        if isinstance(data, list) and data and isinstance(data[0], dict):  # JSON-array stream framing
            data = data[0]
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return gemini_error(data["error"], status, headers)
        return super().error(status, payload, headers)
