"""Streaming time to first byte: one keep-alive connection per target, sequential requests, raw HTTP/1.1.

A hand-written client (asyncio streams, no HTTP library) keeps the client's own cost tiny and equal
for every target, and the targets take turns request by request, so differences between targets are
the servers'. The clock runs from writing the request to reading the first line of the response body,
i.e. the first SSE bytes: a proxy that sends its headers early but holds the first token back is not
flattered.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .stats import percentile

WARMUP_REQUESTS = 10


@dataclass
class TtfbResult:
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def measure(urls: dict[str, str], *, body: bytes, headers: dict[str, str], requests: int) -> dict[str, TtfbResult]:
    """`requests` timed stream requests per target, the targets taking turns request by request."""
    return asyncio.run(_measure(urls, body, headers, requests))


class _Client:
    """One keep-alive connection to one target, reconnecting after a broken response."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str]):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        self.raw_request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.reader = self.writer = None
        self.samples: list[float] = []
        self.errors = 0

    async def request(self, *, record: bool) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            ttfb_ms, ok = await asyncio.wait_for(_one(self.reader, self.writer, self.raw_request), timeout=10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            self.errors += 1
            self.close()
            return
        if not ok:
            self.errors += 1
        elif record:
            self.samples.append(ttfb_ms)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def result(self) -> TtfbResult:
        return TtfbResult(percentile(self.samples, 50), percentile(self.samples, 99), len(self.samples), self.errors)


async def _measure(urls: dict[str, str], body: bytes, headers: dict[str, str], requests: int) -> dict[str, TtfbResult]:
    clients = {name: _Client(url, body, headers) for name, url in urls.items()}
    try:
        # Taking turns spreads any slow patch of the shared machine over every target alike.
        for index in range(WARMUP_REQUESTS + requests):
            for client in clients.values():
                await client.request(record=index >= WARMUP_REQUESTS)
    finally:
        for client in clients.values():
            client.close()
    return {name: client.result() for name, client in clients.items()}


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw_request: bytes) -> tuple[float, bool]:
    """Send one request, time its first body bytes, read the rest so the connection can be reused."""
    started = time.perf_counter()
    writer.write(raw_request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    fields = _header_fields(head)
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        size_line = await reader.readline()  # the first chunk's size line: the first body bytes
        first_byte = time.perf_counter()
        await _drain_chunked(reader, size_line)
    else:
        length = int(fields.get(b"content-length", b"0"))
        await reader.readexactly(length)
        first_byte = time.perf_counter()
    return (first_byte - started) * 1000, 200 <= status < 300


def _header_fields(head: bytes) -> dict[bytes, bytes]:
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return fields


async def _drain_chunked(reader: asyncio.StreamReader, size_line: bytes) -> None:
    while True:
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # end of the (empty) trailer section
            return
        await reader.readexactly(size + 2)  # data and its CRLF
        size_line = await reader.readline()
