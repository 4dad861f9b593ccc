"""The built-in simulated provider: answers offline, deterministically, for the embedded default and demos.

It echoes the last user message, answers JSON mode with a JSON object, calls the first tool when
tools are offered (and answers from the tool's result on the next turn), and reports token usage
estimated at four characters per token, as real tokenizers roughly do for English.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator

import orjson

from .base import Adapter, ChunkFactory, Target, completion, new_completion_id, text_of, usage_dict


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _prompt_tokens(body: dict) -> int:
    total = 0
    for message in body.get("messages") or []:
        total += 4 + estimate_tokens(text_of(message.get("content")))
    return total + 3


def _answer(body: dict) -> tuple[str | None, list[dict] | None]:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    tools = body.get("tools") or []
    if last.get("role") == "tool":
        return f"The tool answered: {text_of(last.get('content'))}", None
    user_text = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    if tools and body.get("tool_choice") != "none":
        function = tools[0].get("function", {})
        call_id = "call_" + hashlib.sha256(user_text.encode()).hexdigest()[:16]
        arguments = orjson.dumps({"input": user_text}).decode()
        return None, [{"id": call_id, "type": "function", "function": {"name": function.get("name", "tool"),
                                                                       "arguments": arguments}}]
    response_format = (body.get("response_format") or {}).get("type")
    if response_format in ("json_object", "json_schema"):
        return orjson.dumps({"echo": user_text}).decode(), None
    images = sum(1 for m in messages if isinstance(m.get("content"), list)
                 for p in m["content"] if isinstance(p, dict) and p.get("type") == "image_url")
    seen = f" (with {images} image{'s' if images != 1 else ''})" if images else ""
    return f"Simulated reply{seen}: {user_text}", None


def _limit(text: str, body: dict) -> tuple[str, str]:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit and estimate_tokens(text) > limit:
        return text[: int(limit) * 4], "length"
    return text, "stop"


class SimulatedAdapter(Adapter):
    name = "simulated"
    provider_type = "simulated"
    label = "Simulated (built-in)"
    needs_key = False  # answers in-process
    prefixes = ("simulated",)
    local = True
    supports_embeddings = True

    async def complete(self, body: dict, target: Target) -> dict:
        text, tool_calls = _answer(body)
        prompt = _prompt_tokens(body)
        if tool_calls:
            message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
            completion_tokens = estimate_tokens(orjson.dumps(tool_calls).decode())
            finish = "tool_calls"
        else:
            text, finish = _limit(text, body)
            message = {"role": "assistant", "content": text}
            completion_tokens = estimate_tokens(text)
        return completion(id=new_completion_id(), model=target.model, message=message, finish_reason=finish,
                          usage=usage_dict(prompt, completion_tokens))

    async def stream(self, body: dict, target: Target, chunks: ChunkFactory) -> AsyncIterator[dict]:
        delay = float(target.options.get("delay_ms", 0)) / 1000
        text, tool_calls = _answer(body)
        yield chunks.chunk({"role": "assistant", "content": ""})
        if tool_calls:
            call = tool_calls[0]
            yield chunks.chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                "function": {"name": call["function"]["name"], "arguments": ""}}]})
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 8):
                piece = arguments[start:start + 8]
                yield chunks.chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            finish, completion_tokens = "tool_calls", estimate_tokens(arguments)
        else:
            text, finish = _limit(text, body)
            words = text.split(" ")
            for i, word in enumerate(words):
                if delay:
                    await asyncio.sleep(delay)
                yield chunks.chunk({"content": word if i == 0 else " " + word})
            completion_tokens = estimate_tokens(text)
        yield chunks.chunk({}, finish_reason=finish)
        yield chunks.usage(usage_dict(_prompt_tokens(body), completion_tokens))

    async def embed(self, body: dict, target: Target) -> dict:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = int(body.get("dimensions") or 16)
        data = []
        tokens = 0
        for index, item in enumerate(items):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += estimate_tokens(text)
            digest = hashlib.sha256(text.encode()).digest()
            vector = [((digest[i % len(digest)] / 255.0) * 2 - 1) for i in range(dimensions)]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        return {"object": "list", "data": data, "model": target.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
