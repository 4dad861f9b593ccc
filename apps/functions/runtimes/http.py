"""`http`: POST the input as JSON to the function's URL, HMAC-signed; the JSON object answered is the output.

Signature (docs/architecture.md, "Functions"): `X-CB-Timestamp: <unix seconds>` and
`X-CB-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>`. A receiver recomputes it over
the raw body, compares in constant time and refuses old timestamps (replays). Redirects are not followed (one
could lead to an internal address), and the URL is checked again before every attempt like a provider's."""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import orjson
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.http import validate_upstream_url

from ..errors import RunError
from .base import Result, RunContext, string_map_problems

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
SIGNATURE_HEADER = "X-CB-Signature"
TIMESTAMP_HEADER = "X-CB-Timestamp"
_RESERVED = {"content-type", "content-length", "host", SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower()}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def config_problems(config: dict) -> list[str]:
    url = config.get("url")
    if not isinstance(url, str) or not url:
        return ["url is required"]
    problems = []
    try:
        validate_upstream_url(url, allow_private=settings.FUNCTIONS_ALLOW_PRIVATE_URLS)
    except ValidationError as exc:
        problems += [f"url: {m}" for m in exc.messages]
    problems += string_map_problems(config.get("headers"), "headers")
    if any(name.lower() in _RESERVED for name in config.get("headers") or {}):
        problems.append("headers must not set Content-Type, Host or the signature headers")
    unknown = set(config) - {"url", "headers"}
    if unknown:
        problems.append(f"unknown key {sorted(unknown)[0]!r}")
    return problems


def run(function, data: dict, ctx: RunContext) -> Result:
    try:
        url = validate_upstream_url(function.config["url"], allow_private=settings.FUNCTIONS_ALLOW_PRIVATE_URLS)
    except ValidationError as exc:
        raise RunError(f"URL refused: {'; '.join(exc.messages)}", code="not_allowed") from None
    body = orjson.dumps(data)
    timestamp = str(int(time.time()))
    headers = {**(function.config.get("headers") or {}), "Content-Type": "application/json",
               "User-Agent": "cbplatform-functions", "X-CB-Function-Id": ctx.function_id,
               "X-CB-Execution-Id": ctx.execution_id, "X-CB-Attempt": str(ctx.attempt),
               "X-CB-Trigger": ctx.trigger, TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: signature(function.secret(), timestamp, body)}
    try:
        with httpx.Client(timeout=ctx.timeout, follow_redirects=False) as client, \
                client.stream("POST", url, content=body, headers=headers) as response:
            raw = _read(response, ctx.timeout)
            status = response.status_code
    except httpx.TimeoutException:
        raise RunError(f"No answer from {url} within {ctx.timeout:g}s.", code="timeout") from None
    except httpx.TransportError as exc:
        raise RunError(f"Could not reach {url}: {type(exc).__name__}", code="connection") from None
    text = raw.decode("utf-8", errors="replace")
    if status >= 300:
        code = "http_5xx" if status >= 500 else "http_429" if status == 429 else "http_4xx"
        raise RunError(f"{url} answered HTTP {status}: {text[:300]}", code=code, stdout=text)
    try:
        output = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RunError(f"{url} answered something that is not JSON: {text[:200]!r}", code="bad_output",
                       stdout=text) from None
    if not isinstance(output, dict):
        raise RunError(f"{url} answered JSON {type(output).__name__}, not an object.", code="bad_output", stdout=text)
    return Result(output=output)


def _read(response: httpx.Response, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout  # httpx's timeout is per read; a trickling answer must end too
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise RunError(f"The answer is larger than {MAX_RESPONSE_BYTES} bytes.", code="bad_output")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise RunError(f"The answer took longer than {timeout:g}s.", code="timeout")
    return b"".join(chunks)
