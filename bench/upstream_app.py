"""A fast fake OpenAI upstream: raw ASGI, precomputed answers, no framework, no sleeps.

It has to be much faster than anything it stands behind, or the benchmark would measure it instead of
the proxies. So every response body is built once at import; a request costs one orjson parse.

`/v1/chat/completions` always answers. `/flaky-<percent>/v1/chat/completions` (a provider whose base URL
is `…/flaky-50/v1`) answers HTTP 500 with an OpenAI-style `server_error` for a random <percent> % of
requests (chosen per request): a deployment that fails half the time, for the routed case.
"""

from __future__ import annotations

import random

import orjson

MODEL = "gpt-4o"
CREATED = 1_700_000_000
CONTENT_CHUNKS = 20
USAGE = {"prompt_tokens": 9, "completion_tokens": CONTENT_CHUNKS, "total_tokens": 9 + CONTENT_CHUNKS}

COMPLETION = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED, "model": MODEL,
    "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! " * CONTENT_CHUNKS, "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": USAGE,
})


def _sse(obj) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _chunk(choices: list, **extra) -> bytes:
    return _sse({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
                 "system_fingerprint": "fp_bench", "choices": choices, **extra})


# First chunk carries the role, like OpenAI's; then one token per chunk, the finish chunk, usage, [DONE].
STREAM_CONTENT = [_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])] + [
    _chunk([{"index": 0, "delta": {"content": "Hello! "}, "finish_reason": None}]) for _ in range(CONTENT_CHUNKS)
]
STREAM_FINISH = _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
STREAM_USAGE = _chunk([], usage=USAGE)
STREAM_DONE = b"data: [DONE]\n\n"

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

CHAT_PATH = "/v1/chat/completions"
FLAKY_PREFIX = "/flaky-"
FAILURE = (b'{"error":{"message":"injected failure (bench fake upstream)","type":"server_error",'
           b'"param":null,"code":null}}')
_fail_rates: dict[str, float | None] = {CHAT_PATH: 0.0}  # path -> share of requests answered 500; None: 404
_random = random.Random()  # noqa: S311 - fault injection, not security


def fail_rate(path: str) -> float | None:
    """The share of requests a chat path fails (0.0 for the plain path); None when it is no chat path."""
    if path in _fail_rates:
        return _fail_rates[path]
    rate = None
    if path.startswith(FLAKY_PREFIX) and path.endswith(CHAT_PATH):
        percent = path[len(FLAKY_PREFIX):-len(CHAT_PATH)]
        if percent.isdigit() and int(percent) <= 100:
            rate = int(percent) / 100
    if len(_fail_rates) < 100:  # memoised; stray paths cannot grow it without bound
        _fail_rates[path] = rate
    return rate


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return None
    body = await _read_body(receive)
    rate = fail_rate(scope["path"])
    if scope["method"] != "POST" or rate is None:
        return await _json(send, 404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
    if rate and _random.random() < rate:
        return await _json(send, 500, FAILURE)
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return await _json(send, 400, b'{"error":{"message":"invalid JSON","type":"invalid_request_error"}}')
    if request.get("stream") is True:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return await _stream(send, include_usage)
    return await _json(send, 200, COMPLETION)


async def _read_body(receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _json(send, status: int, payload: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _stream(send, include_usage: bool) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    # Separate body messages, as a real token stream arrives; the proxies must relay each one.
    events = [*STREAM_CONTENT, STREAM_FINISH, *([STREAM_USAGE] if include_usage else []), STREAM_DONE]
    for event in events:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
