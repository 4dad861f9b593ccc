"""The HTTP/1.1 client every upstream call goes through: keep-alive connections pooled per origin, llhttp
(httptools, the parser uvicorn serves us with) reading the responses.

Why not aiohttp: measured by instruction count on the gateway's request path (docs/performance.md), aiohttp's
client cost ~440 k instructions per upstream call — 30 % of the gateway's whole JSON request — and this client
~50 k, because it does only what an upstream call needs: one write of the request, the parser's callbacks into a
buffer, one future per response. aiosonic, the other maintained asyncio client, measured above aiohttp.

What it does: HTTP and HTTPS (the system's CA store unless given a context), IPv4 and IPv6,
Content-Length and chunked bodies, bodies delimited by the connection's close, gzip/deflate answers (we ask for
none, servers may still send them), interim 1xx answers skipped, connections reused while idle for less than
`keepalive_timeout` and not closed by the server. Timeouts: `connect` for a new connection, `total` for a whole
exchange, `read` between two reads of a stream. Header names and values that would split the request are refused
(ValueError) before anything is sent. Not done, because no upstream call needs it: redirects, cookies, proxies,
request bodies that are not bytes, HTTP/2.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl as ssl_module
import zlib
from urllib.parse import quote, urlsplit

import httptools

USER_AGENT = "cbplatform"
STREAM_BUFFER_BYTES = 1 << 18  # a stream's unread body beyond this pauses reading from the socket
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers that frame the message are ours alone: a caller's (a provider's configured extra headers) is dropped.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer"})
_SEND, _DROP, _AGENT = 0, 1, 2  # what to do with a header name (see HttpClient._encode)
_SAFE_PATH = "/:@!$&'()*+,;=-._~%?"


class ConnectFailed(OSError):
    """No connection to the upstream (refused, unresolvable, TLS handshake refused)."""


class ConnectionBroken(OSError):
    """The connection failed or closed before the whole answer arrived, or the answer was not HTTP."""


class _Origin:
    """A URL's parts the client needs, parsed once per distinct URL."""

    __slots__ = ("host", "key", "port", "start", "tls")

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.key = (parts.scheme, self.host, self.port)
        target = quote(parts.path or "/", safe=_SAFE_PATH) + (f"?{quote(parts.query, safe=_SAFE_PATH)}"
                                                              if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host += f":{parts.port}"
        # What every request to this URL starts with, but the method.
        self.start = f" {target} HTTP/1.1\r\nHost: {host}\r\n"


class Response:
    """One answer. Its body is buffered as it arrives; `read` waits for all of it, `iter_chunks` hands over what
    arrived since the last step. `close` abandons an unfinished answer (and its connection)."""

    __slots__ = ("_chunks", "_connection", "_decoder", "_error", "_size", "_streaming", "_waiter", "complete",
                 "headers", "status")

    def __init__(self, connection: _Connection):
        self._connection = connection
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._decoder = None
        self._streaming = False  # read in steps: a consumer that falls behind pauses the socket

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def read(self) -> bytes:
        while not self.complete:
            await self._wait()
        return self._take()

    async def iter_chunks(self):
        self._streaming = True
        while True:
            if self._chunks:
                yield self._take()
            elif self.complete:
                return
            else:
                await self._wait()

    @property
    def drained(self) -> bool:
        """Complete, and every byte of it handed over: nothing more will come."""
        return self.complete and not self._chunks

    def close(self) -> None:
        if not self.complete and self._connection is not None:
            self._connection.abandon()
        self._connection = None

    # ---- fed by the connection --------------------------------------------------------------------------
    def _body(self, data: bytes) -> None:
        if self._decoder is not None:
            data = self._decoder.decompress(data)
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._streaming and self._size > STREAM_BUFFER_BYTES and self._connection is not None:
            self._connection.pause()
        self._wake()

    def _finish(self, error: BaseException | None = None) -> None:
        if error is None and self._decoder is not None and (rest := self._decoder.flush()):
            self._chunks.append(rest)
        self._error = error
        self.complete = error is None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter
        if self._error is not None:
            raise self._error

    def _take(self) -> bytes:
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        if self._size > STREAM_BUFFER_BYTES and self._connection is not None:
            self._connection.resume()
        self._size = 0
        return data


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time."""

    def __init__(self, client: HttpClient, key: tuple):
        self.client, self.key = client, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None  # the exchange in progress
        self.head: asyncio.Future | None = None  # resolves when its status and headers are in
        self.closed = False
        self.idle_since = 0.0
        self.paused = False
        self._until_close = False  # the body ends when the connection does (no length, not chunked)
        self._header_name = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.last_read = 0.0

    # ---- the client's side --------------------------------------------------------------------------------
    def start(self, request: bytes, response: Response, head: asyncio.Future) -> None:
        self.response, self.head = response, head
        self._raw_headers = []
        try:
            self.transport.write(request)
        except RuntimeError:  # the transport was closed under us (uvloop refuses the write)
            self._fail(ConnectionBroken("The upstream connection closed before the request was sent."))

    def abandon(self) -> None:
        self.response = None
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    # ---- asyncio's side -----------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.last_read = self.client.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionBroken("The upstream switched protocols."))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"The upstream's answer is not valid HTTP: {exc}"))

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.response is not None and self._until_close and self.head is None:
            self._complete()  # the connection's end is the body's end
            return
        self._fail(ConnectionBroken("The upstream closed the connection before answering in full"
                                    + (f" ({exc})." if exc else ".")))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost then ends or fails the exchange

    # ---- the parser's callbacks ---------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 100 Continue and friends: the real answer follows
            self._raw_headers = []
            return
        response = self.response
        if response is None:
            return
        headers: dict[str, str] = {}
        for name, value in self._raw_headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        response.status, response.headers = status, headers
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            response._decoder = zlib.decompressobj(47)  # 32 + 15: gzip or zlib, detected from the header
        elif encoding != "identity":
            self._fail(ConnectionBroken(f"The upstream answered with content-encoding {encoding!r}, which we "
                                        f"did not ask for and cannot decode."))
            return
        self._until_close = ("content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", "").lower() and status not in (204, 304))
        head, self.head = self.head, None
        if head is not None and not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self.response is not None and self.parser.get_status_code() >= 200:
            self.response._body(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:
            return
        self._complete()

    # ---- endings ------------------------------------------------------------------------------------------
    def _complete(self) -> None:
        response, self.response = self.response, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if response is not None:
            response._connection = None
            response._finish()
        if self.closed or self._until_close or not self.parser.should_keep_alive():
            self.close()
        else:
            # Reading may have been paused for this answer (its reader fell behind) and the answer still ended
            # in the same read; the next exchange must be read.
            self.resume()
            self.client._idle(self)

    def _fail(self, error: BaseException) -> None:
        response, head = self.response, self.head
        self.response = self.head = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if head is not None and not head.done():
            head.set_exception(error)
        if response is not None:
            response._finish(error)
        self.close()


class HttpClient:
    """See the module docstring. Its connections belong to the event loop of the last request: a request on
    another loop starts from an empty pool (the old loop's connections cannot serve it)."""

    def __init__(self, *, keepalive_timeout: float = 30.0, ssl: ssl_module.SSLContext | None = None):
        self.keepalive_timeout = keepalive_timeout
        self._ssl = ssl
        self._idle_connections: dict[tuple, collections.deque[_Connection]] = {}
        self._origins: dict[str, _Origin] = {}
        self._names: dict[str, int] = {}  # header name -> _SEND, _DROP or _AGENT, decided once per name
        self._sweeper: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections_made = 0  # tests and the benchmark read it: keep-alive means this stays small

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, *,
                      connect: float, total: float | None = None, read: float | None = None) -> Response:
        """Send, and return once the answer's status and headers are in. `total` also bounds reading the body
        (`Response.read`); `read` bounds each wait for more of a stream."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # first use, or a new loop: connections of another loop cannot serve this one
            self._idle_connections.clear()
            self.loop, self._sweeper = loop, None
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) > 4096:
                self._origins.clear()
            origin = self._origins[url] = _Origin(url)
        payload = self._encode(method, origin, headers, body)
        deadline = loop.time() + total if total is not None else None
        connection = self._take_idle(origin.key, loop.time())
        if connection is None:
            connection = await self._connect(origin, connect if deadline is None else min(connect, total))
        response = Response(connection)
        head = loop.create_future()
        connection.start(payload, response, head)
        if deadline is not None:
            connection.timer = loop.call_at(deadline, _timed_out, connection, "total")
        elif read is not None:
            connection.last_read = loop.time()
            connection.timer = loop.call_at(connection.last_read + read, _read_watch, connection, read)
        try:
            return await head
        except asyncio.CancelledError:
            connection.abandon()
            raise

    async def close(self) -> None:
        for idle in self._idle_connections.values():
            for connection in idle:
                connection.close()
        self._idle_connections.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # ---- requests -------------------------------------------------------------------------------------------
    def _encode(self, method: str, origin: _Origin, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [method, origin.start]
        agent = True
        for name, value in headers.items():
            kind = self._names.get(name)
            if kind is None:
                kind = self._names[name] = _header_kind(name)
            if kind == _DROP:
                continue
            if kind == _AGENT:
                agent = False
            lines.append(f"{name}: {value}\r\n")
        if agent:
            lines.append(f"User-Agent: {USER_AGENT}\r\n")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        # Exactly one line break per line: a value holding CR or LF would start a header (or a request) of its
        # own. The start holds two (request line, Host), every other line one.
        breaks = len(lines)  # lines minus [method, start], plus the start's two
        if head.count("\n") != breaks or head.count("\r") != breaks:
            raise ValueError("a header value holds a line break")
        data = head.encode("latin-1")
        return data + body if body else data

    # ---- the pool -------------------------------------------------------------------------------------------
    def _take_idle(self, key: tuple, now: float) -> _Connection | None:
        idle = self._idle_connections.get(key)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have been closed by the server
            # A closing transport's connection_lost comes a loop turn later: `closed` may not say so yet.
            if (not connection.closed and not connection.transport.is_closing()
                    and now - connection.idle_since < self.keepalive_timeout):
                return connection
            connection.close()
        return None

    def _idle(self, connection: _Connection) -> None:
        connection.idle_since = self.loop.time()
        idle = self._idle_connections.get(connection.key)
        if idle is None:
            idle = self._idle_connections[connection.key] = collections.deque()
        idle.append(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.keepalive_timeout, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for longer than keepalive_timeout (the oldest are at each deque's left end)."""
        self._sweeper = None
        cutoff = self.loop.time() - self.keepalive_timeout
        for idle in self._idle_connections.values():
            while idle and (idle[0].closed or idle[0].idle_since <= cutoff):
                idle.popleft().close()
        if any(self._idle_connections.values()):
            self._sweeper = self.loop.call_later(self.keepalive_timeout, self._sweep)

    async def _connect(self, origin: _Origin, timeout: float) -> _Connection:
        context = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = ssl_module.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(max(0.001, timeout)):
                _, connection = await self.loop.create_connection(
                    lambda: _Connection(self, origin.key), origin.host, origin.port, ssl=context,
                    server_hostname=origin.host if context else None)
        except TimeoutError:
            raise
        except OSError as exc:  # refused, unreachable, unresolvable, TLS refused (ssl.SSLError is an OSError)
            raise ConnectFailed(f"Cannot connect to {origin.host}:{origin.port}: {exc}") from None
        self.connections_made += 1
        return connection


def _header_kind(name: str) -> int:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    lowered = name.lower()
    return _DROP if lowered in _FRAMING else _AGENT if lowered == "user-agent" else _SEND


def _timed_out(connection: _Connection, which: str) -> None:
    connection.timer = None
    connection._fail(TimeoutError(f"upstream {which} timeout"))


def _read_watch(connection: _Connection, read: float) -> None:
    """One timer per stream, moved on lazily: reads only note their time (see `data_received`)."""
    loop = connection.client.loop
    due = connection.last_read + read
    if connection.paused:  # we stopped reading ourselves: the upstream is not late
        due = loop.time() + read
    if due > loop.time():
        connection.timer = loop.call_at(due, _read_watch, connection, read)
        return
    _timed_out(connection, "read")
