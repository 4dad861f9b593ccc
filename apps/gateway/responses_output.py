"""The gateway's chat answers → OpenAI Responses API objects: the `response` object and its stream events.

`response_from_completion` turns one `chat.completion` into a `response`; `ResponseStream` turns the chat chunks of
a stream into the Responses event sequence (`response.created`, `response.in_progress`, `response.output_item.*`,
`response.content_part.*`, `response.output_text.*`, `response.function_call_arguments.*`, then
`response.completed` / `response.incomplete`, or `error` + `response.failed`), numbered by `sequence_number`.
No I/O.
"""

from __future__ import annotations

import os
import time

import orjson

# Chat finish reasons that leave a response incomplete, and the reason Responses gives.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(24).hex()}"


def skeleton(request: dict, response_id: str, created_at: int) -> dict:
    """The response object before any output: the request's settings echoed as OpenAI echoes them."""
    fmt = (request.get("text") or {}).get("format") or {"type": "text"}
    reasoning = request.get("reasoning") or {}
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": "in_progress",
        "background": False, "completed_at": None, "error": None, "incomplete_details": None,
        "instructions": request.get("instructions"), "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"), "model": request.get("model"), "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": request.get("store", True), "temperature": request.get("temperature", 1.0),
        "text": {"format": fmt, "verbosity": (request.get("text") or {}).get("verbosity", "medium")},
        "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0), "truncation": request.get("truncation", "disabled"),
        "usage": None, "user": request.get("user"), "metadata": request.get("metadata") or {},
    }


def response_usage(usage: dict | None) -> dict | None:
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    out = {"input_tokens": prompt, "output_tokens": completion,
           "total_tokens": int(usage.get("total_tokens") or prompt + completion),
           "input_tokens_details": {"cached_tokens": int(details.get("cached_tokens") or 0),
                                    "cache_write_tokens": int(details.get("cache_write_tokens") or 0)},
           "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)}}
    if "cost" in usage:  # OpenRouter's usage.cost, when the chat answer carries it
        out["cost"] = usage["cost"]
    return out


def message_item(text: str, *, status: str = "completed", refusal: str | None = None, item_id: str | None = None):
    content = [{"type": "refusal", "refusal": refusal}] if refusal else []
    if text or not refusal:
        content.insert(0, {"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    return {"id": item_id or new_id("msg"), "type": "message", "role": "assistant", "status": status,
            "content": content}


def function_call_item(call_id: str, name: str, arguments: str, *, status: str = "completed",
                       item_id: str | None = None) -> dict:
    return {"id": item_id or new_id("fc"), "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}


def finish(response: dict, output: list[dict], finish_reason: str | None, usage: dict | None,
           model: str | None) -> dict:
    """The finished response: output, status (incomplete for a cut answer), usage and the model that served."""
    reason = INCOMPLETE.get(finish_reason or "")
    response.update(output=output, usage=response_usage(usage), status="incomplete" if reason else "completed",
                    incomplete_details={"reason": reason} if reason else None, completed_at=int(time.time()))
    if model:
        response["model"] = model
    return response


def _text(content) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return content or ""


def response_from_completion(request: dict, completion: dict, response_id: str, created_at: int) -> dict:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    status = "incomplete" if choice.get("finish_reason") in INCOMPLETE else "completed"
    output = []
    text, refusal = _text(message.get("content")), message.get("refusal")
    calls = message.get("tool_calls") or []
    if text or refusal or not calls:
        output.append(message_item(text, status=status, refusal=refusal))
    for call in calls:
        function = call.get("function") or {}
        output.append(function_call_item(call.get("id") or new_id("call"), function.get("name") or "",
                                         function.get("arguments") or ""))
    return finish(skeleton(request, response_id, created_at), output, choice.get("finish_reason"),
                  completion.get("usage"), completion.get("model"))


def encode(events: list[dict]) -> bytes:
    """Server-sent events as OpenAI sends them: the event's type as `event:`, the event as `data:`."""
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


class ResponseStream:
    """The Responses events for one stream of chat chunks. Items are opened as their first delta arrives; the
    text message closes when a tool call starts, and everything open closes when the stream ends."""

    def __init__(self, request: dict, response_id: str, created_at: int):
        self.response = skeleton(request, response_id, created_at)
        self.sequence = 0
        self.items: list[dict] = []  # in output order: {"item": …, "open": bool, "text"/"calls" state}
        self.text: dict | None = None  # the open message item's entry
        self.calls: dict[int, dict] = {}  # chat tool-call index → its open entry
        self.finish_reason: str | None = None
        self.model: str | None = None

    def _event(self, kind: str, **fields) -> dict:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _snapshot(self) -> dict:
        return orjson.loads(orjson.dumps(self.response))  # events must not share (and later see) mutable state

    def start(self) -> list[dict]:
        return [self._event("response.created", response=self._snapshot()),
                self._event("response.in_progress", response=self._snapshot())]

    # ---- items -------------------------------------------------------------------------------------------------
    def _open(self, item: dict) -> tuple[dict, list[dict]]:
        entry = {"item": item, "index": len(self.items), "open": True}
        self.items.append(entry)
        return entry, [self._event("response.output_item.added", output_index=entry["index"], item=dict(item))]

    def _open_text(self) -> list[dict]:
        item = message_item("", status="in_progress")
        part = item["content"].pop()
        entry, events = self._open(item)
        entry["text"] = []
        self.text = entry
        events.append(self._event("response.content_part.added", item_id=item["id"], output_index=entry["index"],
                                  content_index=0, part=part))
        return events

    def _close_text(self, status: str) -> list[dict]:
        entry, self.text = self.text, None
        item, text = entry["item"], "".join(entry["text"])
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item.update(status=status, content=[part])
        entry["open"] = False
        where = {"item_id": item["id"], "output_index": entry["index"], "content_index": 0}
        return [self._event("response.output_text.done", **where, text=text, logprobs=[]),
                self._event("response.content_part.done", **where, part=part),
                self._event("response.output_item.done", output_index=entry["index"], item=item)]

    def _close_call(self, entry: dict) -> list[dict]:
        item = entry["item"]
        item["status"] = "completed"
        entry["open"] = False
        return [self._event("response.function_call_arguments.done", item_id=item["id"],
                            output_index=entry["index"], name=item["name"], arguments=item["arguments"]),
                self._event("response.output_item.done", output_index=entry["index"], item=dict(item))]

    def _call_delta(self, delta: dict) -> list[dict]:
        events: list[dict] = []
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        entry = self.calls.get(index)
        if entry is None:
            if self.text is not None:
                events += self._close_text("completed")
            item = function_call_item(delta.get("id") or new_id("call"), function.get("name") or "", "",
                                      status="in_progress")
            entry, opened = self._open(item)
            self.calls[index] = entry
            events += opened
        elif function.get("name") and not entry["item"]["name"]:
            entry["item"]["name"] = function["name"]
        arguments = function.get("arguments")
        if arguments:
            entry["item"]["arguments"] += arguments
            events.append(self._event("response.function_call_arguments.delta", item_id=entry["item"]["id"],
                                      output_index=entry["index"], delta=arguments))
        return events

    # ---- the stream ----------------------------------------------------------------------------------------------
    def feed(self, chunk: dict) -> list[dict]:
        """The events for one chat chunk (none for a usage-only chunk)."""
        self.model = chunk.get("model") or self.model
        events: list[dict] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if self.text is None:
                    events += self._open_text()
                self.text["text"].append(content)
                item = self.text["item"]
                events.append(self._event("response.output_text.delta", item_id=item["id"],
                                          output_index=self.text["index"], content_index=0, delta=content,
                                          logprobs=[]))
            for call in delta.get("tool_calls") or ():
                events += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _close_all(self, status: str) -> list[dict]:
        events: list[dict] = []
        if not self.items:  # an empty answer is still one (empty) message, as the non-streamed response has
            events += self._open_text()
        if self.text is not None:
            events += self._close_text(status)
        for entry in self.items:
            if entry["open"]:
                events += self._close_call(entry)
        return events

    def complete(self, usage: dict | None) -> tuple[list[dict], dict]:
        """The closing events and the finished response."""
        status = "incomplete" if self.finish_reason in INCOMPLETE else "completed"
        events = self._close_all(status)
        response = finish(self.response, [e["item"] for e in self.items], self.finish_reason, usage, self.model)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        events.append(self._event(kind, response=response))
        return events, response

    def fail(self, error, usage: dict | None) -> tuple[list[dict], dict]:
        """An upstream error after the stream started: an `error` event, then `response.failed`."""
        events = [self._event("error", code=error.code or error.type, message=error.message, param=error.param)]
        response = finish(self.response, [e["item"] for e in self.items], None, usage, self.model)
        response.update(status="failed", error={"code": error.code or error.type or "server_error",
                                                "message": error.message})
        events.append(self._event("response.failed", response=response))
        return events, response
