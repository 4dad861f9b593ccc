"""OpenAI stream chunks → the completion protocol's messages (`thinking_status`, `content_chunk`,
`tool_call`, `completed`, `error`), shared by the WebSocket stream and background completions."""

from __future__ import annotations

from apps.core.errors import ApiError


class ChunkTranslator:
    """Feed it chunks in order; it returns the messages each one makes (tool calls once their arguments are
    complete, at the end) and the final `completed` from what the gateway billed."""

    def __init__(self, stream_id: str):
        self.id = stream_id
        self.tools: dict[int, dict] = {}
        self.finish_reason = None
        self.content_started = False

    def chunk(self, chunk: dict) -> list[dict]:
        out = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                out.append({"type": "thinking_status", "id": self.id, "status": "reasoning", "content": reasoning})
            if delta.get("content"):
                if not self.content_started:
                    self.content_started = True
                    out.append({"type": "thinking_status", "id": self.id, "status": "responding"})
                out.append({"type": "content_chunk", "id": self.id, "content": delta["content"]})
            for call in delta.get("tool_calls") or []:
                slot = self.tools.setdefault(call.get("index", len(self.tools)), {"call_id": None, "tool": "",
                                                                                   "arguments": ""})
                slot["call_id"] = call.get("id") or slot["call_id"]
                function = call.get("function") or {}
                slot["tool"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def finish(self, report: dict) -> list[dict]:
        out = [{"type": "tool_call", "id": self.id, "index": index, **slot}
               for index, slot in sorted(self.tools.items())]
        cost = report.get("cost")
        out.append({"type": "completed", "id": self.id, "usage": report.get("usage"),
                    "cost": money(cost), "model": report.get("model"),
                    "provider": report.get("provider"), "request_id": report.get("request_id"),
                    "finish_reason": self.finish_reason})
        return out


def money(amount) -> str | None:
    """A Decimal as plain digits (`0`, `0.000105`), never `0E-12`."""
    return None if amount is None else format(amount.normalize(), "f")


def error_message(stream_id, error: ApiError) -> dict:
    return {"type": "error", "id": stream_id, "code": error.code or error.type, "message": error.message,
            "status": error.status, "param": error.param}
