"""`manage.py serve`'s HTTP protocol: a response's head leaves with its first body bytes, and never waits longer.

A real uvicorn server (uvloop) in a thread, raw sockets on loopback. What reaches the kernel is observed by
handing the protocol a recording wrapper around uvloop's transport.
"""

import asyncio
import contextlib
import socket
import threading
import time

import pytest
import uvicorn

from apps.core.http_protocol import CoalescingHttpToolsProtocol
from tests.conftest import free_port

writes: list[list[bytes]] = []  # per call to the real transport: the buffers it was given
release_body = threading.Event()


class Recording:
    def __init__(self, transport):
        self.transport = transport

    def write(self, data):
        writes.append([bytes(data)])
        self.transport.write(data)

    def writelines(self, buffers):
        buffers = [bytes(b) for b in buffers]
        writes.append(buffers)
        self.transport.writelines(buffers)

    def __getattr__(self, name):
        return getattr(self.transport, name)


class RecordingProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport):
        super().connection_made(Recording(transport))


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/later":  # the head now, the body once the test says so
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        while not release_body.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"at last"})
        return
    body = b'{"ok": true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def server():
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="uvloop", http=RecordingProtocol,
                            lifespan="on", log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield port
    instance.should_exit = True
    thread.join(10)


def exchange(port: int, request: bytes, *, until: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while until not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_a_response_head_and_body_reach_the_socket_in_one_write(server):
    writes.clear()
    answer = exchange(server, b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n", until=b'{"ok": true}')
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b'\r\n\r\n{"ok": true}')
    assert len(writes) == 1, writes
    head, body = writes[0]
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n") and body == b'{"ok": true}'


def test_keep_alive_requests_each_get_their_whole_answer(server):
    writes.clear()
    request = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(request)
            data = b""
            while not data.endswith(b'{"ok": true}'):
                data += sock.recv(65536)
            assert data.count(b"HTTP/1.1 200") == 1
    assert len(writes) == 3


def test_a_head_without_a_body_still_goes_out(server):
    answer = exchange(server, b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", until=b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 204 No Content\r\n")


def test_a_head_whose_body_comes_later_is_not_held_for_it(server):
    release_body.clear()
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
        sock.sendall(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)  # arrives while the app still waits: released at the end of its loop turn
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"at last" not in head
        release_body.set()
        rest = head
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
    assert b"at last" in rest


def test_connection_close_sends_the_head_before_closing(server):
    with contextlib.closing(socket.create_connection(("127.0.0.1", server), timeout=5)) as sock:
        sock.sendall(b"GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 204 No Content\r\n")
