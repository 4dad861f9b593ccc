"""uvicorn's httptools protocol, sending a response's head and first body bytes in one write.

uvicorn writes the status line and headers on `http.response.start` and the body on `http.response.body`, and
uvloop sends each write at once: two syscalls and two TCP segments per response, and a client that wakes twice.
Holding the head until the next write (or, at the latest, the end of the event loop iteration) sends them
together. Order never changes: a held write only waits for the next one.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadHoldingTransport:
    """Delegates to the real transport; a response head waits for the bytes that follow it."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self.transport.writelines((held, data))
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n":
            self._held = data
            self._loop.call_soon(self.release)  # a head with no body this iteration still goes out
        else:
            self.transport.write(data)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def close(self) -> None:
        self.release()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def __getattr__(self, name):  # get_extra_info, set_protocol, abort, …: the real transport's
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """`manage.py serve`'s HTTP protocol (uvicorn `http=` setting)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadHoldingTransport(transport, self.loop))

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol gets the real transport: it writes frames, not HTTP responses.
        holding = self.transport
        if isinstance(holding, _HeadHoldingTransport):
            holding.release()
            self.transport = holding.transport
        super().handle_websocket_upgrade()
