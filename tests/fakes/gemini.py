"""A fake of Google's Gemini API (generativelanguage v1beta): generateContent, streamGenerateContent
(alt=sse, and the default JSON-array framing) and batchEmbedContents.

It is as strict as the real service where our adapter could go wrong: the key in `x-goog-api-key`,
roles user/model only, non-empty contents and parts, no empty text, strict user/model alternation,
a functionResponse only right after a model turn calling the same functions, and tool schemas limited
to Gemini's OpenAPI subset (unknown keys, empty OBJECT properties rejected). It accepts only the
camelCase field names (the real API also takes their snake_case spellings; our adapter never sends them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter

import orjson
from aiohttp import web

from .base import Conversation, FakeProvider, ToolCall, Turn, brain, parse_directives, words

STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
MESSAGES = {429: "You exceeded your current quota, please check your plan and billing details.",
            500: "An internal error has occurred. Please retry or report in "
                 "https://developers.generativeai.google/guide/troubleshooting",
            503: "The model is overloaded. Please try again later."}
REQUEST_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                "cachedContent"}
GENERATION_KEYS = {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "candidateCount",
                   "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty",
                   "responseLogprobs", "logprobs", "thinkingConfig", "responseModalities", "mediaResolution"}
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult"}
PART_EXTRA = {"thought", "thoughtSignature", "videoMetadata"}
SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
               "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
               "minimum", "maximum", "anyOf", "propertyOrdering", "default", "example"}
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
SIGNATURE = base64.b64encode(b"fake-thought-signature").decode()


def gemini_error(status: int, message: str | None = None, *, reason: str | None = None) -> dict:
    error = {"code": status, "message": message or MESSAGES.get(status, f"fake gemini error {status}"),
             "status": STATUSES.get(status, "UNKNOWN")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com",
                             "metadata": {"service": "generativelanguage.googleapis.com"}}]
    return {"error": error}


def unknown(name: str, where: str = "") -> str:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'


def _check_schema(schema, where: str) -> str | None:
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}': expected a Schema object."
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            return unknown(key, where)
        if key == "properties":
            for name, sub in value.items():
                if problem := _check_schema(sub, f"{where}.properties[{name}].value"):
                    return problem
        elif key == "items" and (problem := _check_schema(value, f"{where}.items")):
            return problem
    return None


def _check_tools(tools) -> str | None:
    for ti, tool in enumerate(tools if isinstance(tools, list) else []):
        for di, decl in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{ti}].function_declarations[{di}]"
            if not FUNCTION_NAME.fullmatch(str(decl.get("name") or "")):
                return (f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter or "
                        f"an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.) or dashes "
                        f"(-), with a maximum length of 64.\n")
            parameters = decl.get("parameters")
            if parameters is None:
                continue
            if problem := _check_schema(parameters, f"{where}.parameters"):
                return problem
            if str(parameters.get("type", "")).upper() == "OBJECT" and not parameters.get("properties"):
                return f"* GenerateContentRequest.{where}.parameters.properties: should be non-empty for OBJECT type\n"
    return None


def _check_part(part, where: str, role: str) -> str | None:
    if not isinstance(part, dict):
        return f"Invalid value at '{where}': expected a Part object."
    for key in part:
        if key not in PART_DATA | PART_EXTRA:
            return unknown(key, where)
    data = [key for key in part if key in PART_DATA]
    if len(data) != 1:
        return f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one initialized field\n"
    if part.get("text") == "":
        return ("Unable to submit request because it has an empty text parameter. Add a value to the parameter "
                "and try again.")
    if "inlineData" in part:
        inline = part["inlineData"]
        if not inline.get("mimeType"):
            return f"* GenerateContentRequest.{where}.inline_data.mime_type: mime_type is not specified\n"
        try:
            base64.b64decode(inline.get("data") or "", validate=True)
        except binascii.Error:
            return f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
    if "functionCall" in part and (role != "model" or not part["functionCall"].get("name")):
        return f"* GenerateContentRequest.{where}.function_call: a function call needs a name, in a model turn\n"
    if "functionResponse" in part and (role != "user" or not part["functionResponse"].get("name")):
        return f"* GenerateContentRequest.{where}.function_response: a function response needs a name, in a user turn\n"
    return None


def _check_contents(contents) -> str | None:
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    previous = None
    for ci, content in enumerate(contents):
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty.\n"
        for pi, part in enumerate(parts):
            if problem := _check_part(part, f"contents[{ci}].parts[{pi}]", role):
                return problem
        if previous is not None and (previous.get("role") or "user") == role:
            return "Please ensure that multiturn requests alternate between user and model."
        responses = Counter(p["functionResponse"]["name"] for p in parts if "functionResponse" in p)
        if responses:
            calls = Counter(p["functionCall"]["name"] for p in (previous or {}).get("parts", []) if "functionCall" in p)
            if not calls:
                return "Please ensure that function response turn comes immediately after a function call turn."
            if sum(responses.values()) != sum(calls.values()):
                return ("Please ensure that the number of function response parts is equal to the number of "
                        "function call parts of the function call turn.")
            if responses != calls:
                return "Please ensure that each function response names a function called in the previous turn."
        previous = content
    return None


def validate(body) -> str | None:
    """The real API's 400 message for what it would refuse in a generateContent body, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    for key in body:
        if key not in REQUEST_KEYS:
            return unknown(key)
    config = body.get("generationConfig") or {}
    for key in config:
        if key not in GENERATION_KEYS:
            return unknown(key, "generation_config")
    if "responseSchema" in config and config.get("responseMimeType") != "application/json":
        return ("* GenerateContentRequest.generation_config.response_schema: requires response_mime_type "
                "application/json\n")
    if "responseSchema" in config and (problem := _check_schema(config["responseSchema"],
                                                                "generation_config.response_schema")):
        return problem
    thinking = config.get("thinkingConfig") or {}
    for key in thinking:
        if key not in ("thinkingBudget", "includeThoughts", "thinkingLevel"):
            return unknown(key, "generation_config.thinking_config")
    if not 1 <= config.get("candidateCount", 1) <= 8:
        return "* GenerateContentRequest.generation_config.candidate_count: must be between 1 and 8\n"
    if config.get("maxOutputTokens", 1) < 1:
        return "* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n"
    system = body.get("systemInstruction")
    if system is not None and not all("text" in p for p in system.get("parts") or [{}]):
        return "* GenerateContentRequest.system_instruction.parts: only text parts are supported\n"
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode is not None and mode not in ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"):
        return ("Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/"
                f"google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{mode}\"")
    return _check_tools(body.get("tools")) or _check_contents(body.get("contents"))


def normalize(body: dict) -> Conversation:
    """A generateContent body → the shared Conversation (the model is in the URL; the handler fills it in)."""
    conv = Conversation()
    conv.system = "".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts") or [])
    for content in body.get("contents") or []:
        role = "assistant" if content.get("role") == "model" else "user"
        current = None
        for part in content.get("parts") or []:
            if "functionResponse" in part:
                response = part["functionResponse"].get("response")
                text = response.get("content") if isinstance(response, dict) else None
                conv.turns.append(Turn("tool", text if isinstance(text, str) else orjson.dumps(response).decode()))
                current = None
                continue
            if current is None:
                current = Turn(role)
                conv.turns.append(current)
            if isinstance(part.get("text"), str) and not part.get("thought"):
                current.text += part["text"]
            elif str((part.get("inlineData") or {}).get("mimeType", "")).startswith("image/"):
                current.images += 1
            elif "functionCall" in part:
                call = part["functionCall"]
                current.tool_calls.append(ToolCall(call.get("id", ""), call["name"], call.get("args") or {}))
    conv.tools = [d["name"] for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    conv.tool_choice_none = calling.get("mode") == "NONE"
    if calling.get("mode") == "ANY" and calling.get("allowedFunctionNames"):
        conv.tools = [name for name in conv.tools if name in calling["allowedFunctionNames"]]
    config = body.get("generationConfig") or {}
    conv.json_mode = config.get("responseMimeType") == "application/json"
    conv.schema = config.get("responseSchema")
    conv.max_tokens = config.get("maxOutputTokens")
    thinking = config.get("thinkingConfig") or {}
    conv.thinking = bool(thinking.get("includeThoughts")) and thinking.get("thinkingBudget") != 0
    conv.stop = list(config.get("stopSequences") or [])
    return conv


class FakeGemini(FakeProvider):
    tag = "gemini"
    api_key = "AIza-fake-gemini-key"

    def routes(self, app: web.Application) -> None:
        # The method follows a colon in the last path segment: /v1beta/models/gemini-2.5-flash:generateContent
        app.router.add_post("/v1beta/models/{target}", self.dispatch)

    def refuse_key(self, request: web.Request) -> web.Response | None:
        presented = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not presented:
            return web.json_response(gemini_error(
                403, "Method doesn't allow unregistered callers (callers without established identity). Please use "
                     "API key or other form of API consumer identity to call this API."), status=403)
        if self.bad_key(presented) and presented not in getattr(self, "api_key_alternatives", set()):
            return web.json_response(gemini_error(400, "API key not valid. Please pass a valid API key.",
                                                  reason="API_KEY_INVALID"), status=400)
        return None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = await self.record(request)
        if refused := self.refuse_key(request):
            return refused
        embedding_model = "embedding" in model
        if method == "batchEmbedContents" and embedding_model:
            return self.embeddings(body, model)
        if method in ("generateContent", "streamGenerateContent") and not embedding_model:
            return await self.generate(request, body, model, stream=method == "streamGenerateContent")
        return web.json_response(gemini_error(404, f"models/{model} is not found for API version v1beta, or is not "
                                                   f"supported for {method}."), status=404)

    def response(self, model: str, rid: str, candidate: dict, prompt: int, completion: int | None) -> dict:
        usage = {"promptTokenCount": prompt, "totalTokenCount": prompt + (completion or 0),
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
        if completion:  # Gemini leaves out zero counts
            usage["candidatesTokenCount"] = completion
        return {"candidates": [{"index": 0, **candidate}], "usageMetadata": usage, "modelVersion": model,
                "responseId": rid}

    async def generate(self, request: web.Request, body, model: str, *, stream: bool) -> web.StreamResponse:
        problem = validate(body)
        if problem:
            return web.json_response(gemini_error(400, problem), status=400)
        conv = normalize(body)
        conv.model = model
        directives = parse_directives(conv.last_user_text)
        early = await self.misbehave(request, directives, lambda status: gemini_error(
            status, self.echo(request, MESSAGES.get(status, f"fake gemini error {status}"))))
        if early is not None:
            return early
        reply = brain(conv, tag=self.tag)
        rid = hashlib.sha1(conv.last_user_text.encode()).hexdigest()[:16]
        prompt = reply.prompt_tokens
        if directives.filter:
            final = self.response(model, rid, {"finishReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}, prompt, None)
            reply.pieces = []
        else:
            reason = "MAX_TOKENS" if reply.finish_reason == "length" else "STOP"
            parts = [{"functionCall": {"name": c.name, "args": c.arguments}, "thoughtSignature": SIGNATURE}
                     for c in reply.tool_calls] or [{"text": reply.text}]
            thoughts = words(reply.thinking)
            if reply.thinking:  # a thought summary first; its tokens are reported apart (thoughtsTokenCount)
                parts = [{"text": reply.thinking, "thought": True}, *parts]
            final = self.response(model, rid, {"content": {"parts": parts, "role": "model"}, "finishReason": reason},
                                  prompt, reply.completion_tokens - thoughts)
            if thoughts:
                final["usageMetadata"]["thoughtsTokenCount"] = thoughts
                final["usageMetadata"]["totalTokenCount"] += thoughts
        if not stream:
            return web.json_response(final)
        if request.query.get("alt") != "sse":  # the default framing: one JSON array of responses
            return web.json_response([final])

        def event(data: dict) -> bytes:
            return b"data: " + orjson.dumps(data) + b"\r\n\r\n"

        sent: list[str] = []

        def render_piece(piece: str) -> bytes:
            sent.append(piece)
            if len(sent) == len(reply.pieces):  # the last text arrives with the finish reason and full usage
                return event({**final, "candidates": [{**final["candidates"][0],
                                                       "content": {"parts": [{"text": piece}], "role": "model"}}]})
            return event(self.response(model, rid, {"content": {"parts": [{"text": piece}], "role": "model"}},
                                       prompt, words("".join(sent))))

        response = await self.start_stream(request, "text/event-stream")
        if reply.thinking and reply.pieces:  # the thought summary streams ahead of the answer
            await response.write(event(self.response(model, rid, {"content": {"parts": [
                {"text": reply.thinking, "thought": True}], "role": "model"}}, prompt, None)))
            final["candidates"][0]["content"]["parts"] = [
                p for p in final["candidates"][0]["content"]["parts"] if not p.get("thought")]
        if not reply.pieces:  # a tool call or a safety block: one event
            await response.write(event(final))
            return response
        await self.stream_pieces(request, response, reply, directives, render_piece,
                                 render_error=lambda: event(gemini_error(
                                     500, self.echo(request, MESSAGES.get(500, "fake gemini error 500")))))
        return response

    def embeddings(self, body, model: str) -> web.Response:
        requests = (body or {}).get("requests")
        if not isinstance(requests, list) or not requests:
            return web.json_response(gemini_error(400, "* BatchEmbedContentsRequest.requests: requests is not "
                                                       "specified\n"), status=400)
        vectors = []
        for index, item in enumerate(requests):
            if item.get("model") != f"models/{model}":
                return web.json_response(gemini_error(
                    400, f"* BatchEmbedContentsRequest.requests[{index}].model: the model in the request must match "
                         f"the model in the URL (models/{model}).\n"), status=400)
            text = "".join(p.get("text", "") for p in (item.get("content") or {}).get("parts") or [])
            if not text:
                return web.json_response(gemini_error(
                    400, f"* BatchEmbedContentsRequest.requests[{index}].content.parts: contents.parts must not be "
                         f"empty.\n"), status=400)
            digest = hashlib.sha256(text.encode()).digest()
            dims = int(item.get("outputDimensionality") or 8)
            vectors.append({"values": [digest[i % 32] / 255 for i in range(dims)]})
        return web.json_response({"embeddings": vectors})
