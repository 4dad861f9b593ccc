"""Minimal ASGI HTTP plumbing for the gateway: headers, bodies, JSON and SSE responses."""

from __future__ import annotations

import re

import orjson
from django.conf import settings

from apps.core.errors import ApiError, InvalidRequest, PayloadTooLarge

JSON = b"application/json"
# What an HTTP header value may not hold: control characters (CR and LF split headers; h11 and httptools refuse
# the others and drop the connection). Tab is allowed inside a value.
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def safe_header_value(value) -> bytes:
    """A header value that can always be sent: control characters become spaces, surrounding space is trimmed,
    non-Latin-1 characters become "?"."""
    if type(value) is str and value.isascii() and value.isprintable():  # most values: nothing to replace
        return value.strip(" ").encode("ascii")
    text = _UNSAFE_VALUE.sub(" ", str(value)).strip(" \t")
    return text.encode("latin-1", "replace")


_exposed: tuple[object, bytes] = (None, b"")


def expose_headers() -> bytes:
    """`access-control-expose-headers`: every header of ours a browser client may read (settings, one list,
    joined again only when the setting is replaced)."""
    global _exposed
    names = settings.CORS_EXPOSE_HEADERS
    if _exposed[0] is not names:
        _exposed = (names, ", ".join(names).encode("latin-1"))
    return _exposed[1]


_header_names: dict[str, bytes] = {}  # a valid header name -> its lowercase bytes


class ClientGone(Exception):
    """The client disconnected before we answered."""


def header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(scope, receive, limit: int) -> bytes:
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"Request body too large: {length} bytes (limit {limit}).")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body too large (limit {limit} bytes).")
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def read_json(scope, receive, limit: int, validator) -> dict:
    """The request's JSON body, validated; OpenAI's message for a body that is not JSON."""
    raw = await read_body(scope, receive, limit)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("We could not parse the JSON body of your request. The request body must be "
                             "valid JSON.", code="invalid_json") from None
    return validator(body)


class Responder:
    """Sends one response; knows whether headers went out (after that, errors go in-band)."""

    __slots__ = ("cors", "extra", "finalizer", "send", "started", "status")

    def __init__(self, send, *, cors: bool):
        self.send = send
        self.started = False
        self.status = 0
        # Awaited with the status right before the response's last bytes leave (the usage ledger hands its
        # record to Redis there, so a process killed after answering has not lost it).
        self.finalizer = None
        self.cors = cors
        self.extra: list[tuple[bytes, bytes]] = []

    def add_header(self, name: str, value: str) -> None:
        """Never emits an invalid header: a bad name is dropped, a value is made safe (see safe_header_value)."""
        encoded = _header_names.get(name) if isinstance(name, str) else None
        if encoded is None:
            if not isinstance(name, str) or not _TOKEN.match(name):
                return
            encoded = name.lower().encode("ascii")
            if len(_header_names) < 1024:
                _header_names[name] = encoded
        self.extra.append((encoded, safe_header_value(value)))

    def _headers(self, content_type: bytes, length: int | None) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", content_type), *self.extra]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        if self.cors:
            headers.append((b"access-control-allow-origin", b"*"))
            headers.append((b"access-control-expose-headers", expose_headers()))
        return headers

    async def json(self, status: int, payload: bytes) -> None:
        self.started = True
        self.status = status
        if self.finalizer is not None:
            await self.finalizer(status)
        await self.send({"type": "http.response.start", "status": status, "headers": self._headers(JSON, len(payload))})
        await self.send({"type": "http.response.body", "body": payload})

    async def error(self, error: ApiError, render=None) -> None:
        """OpenAI's error body, or what `render(error)` makes of it (another ingress's shape)."""
        for name, value in error.headers.items():
            self.add_header(name, value)
        await self.json(error.status, render(error) if render is not None else error.body())

    async def start_sse(self) -> None:
        self.started = True
        self.status = 200
        headers = self._headers(b"text/event-stream; charset=utf-8", None)
        headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def sse(self, data: bytes, *, last: bool = False) -> None:
        if last and self.finalizer is not None:
            await self.finalizer(self.status)
        await self.send({"type": "http.response.body", "body": data, "more_body": not last})


def sse_event(obj) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
