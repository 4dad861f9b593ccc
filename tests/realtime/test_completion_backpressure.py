"""Back-pressure on the completion protocol: a client that stops reading stalls its stream's writer, the
bounded per-stream queue fills, and the server stops reading the upstream — the fake provider can write no
more pieces, and the server's memory does not grow with the answer. Once the client reads again, the whole
answer arrives, in order."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
import websockets

from tests.fakes.base import long_piece

from .conftest import run, ws_url
from .test_completion_socket import auth, completion

pytestmark = pytest.mark.django_db

# 20,000 pieces of 2 KB: 40 MB each way, several times what the sockets' kernel buffers hold (a few MB each)
PIECES, PIECE = 20_000, 2000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def plateau(read, *, settle=0.5, timeout=8.0):
    """Once `read()` has moved, wait until it stays put for `settle` seconds; its value then."""
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        await asyncio.sleep(settle)
        now = read()
        if now == value and now > 0:
            return value
        value = now
    raise AssertionError(f"still moving after {timeout} s: {value}")


def small_receive_socket(url: str) -> socket.socket:
    host, port = url.split("//", 1)[1].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window stays small
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


def test_a_slow_reader_pauses_the_upstream_and_bounds_server_memory(world):
    fake, server = world["fake"], world["server"]
    ask = f"a long answer !long {PIECES} {PIECE}"

    async def scenario():
        # max_queue=1: the client library stops reading its socket after one unread frame. No compression:
        # the padded pieces would deflate to a few bytes and fit in the socket buffers whatever the server does.
        async with websockets.connect(ws_url(server, "/ws"), additional_headers=auth(world), max_queue=1,
                                      max_size=2**20, compression=None,
                                      sock=small_receive_socket(server.url)) as sock:
            ack = json.loads(await sock.recv())
            assert ack["type"] == "connection_ack", ack
            await sock.send(completion("warm", "warm up"))
            while json.loads(await sock.recv())["type"] != "completed":
                pass
            baseline_rss = rss_kib(server.proc.pid)
            before = fake.pieces_written
            await sock.send(completion("big", ask))
            # not reading: what the upstream could write stops growing, far short of the answer
            stalled_at = await plateau(lambda: fake.pieces_written - before)
            await asyncio.sleep(1.0)
            still = fake.pieces_written - before
            rss_growth = rss_kib(server.proc.pid) - baseline_rss
            messages = []
            while True:
                message = json.loads(await asyncio.wait_for(sock.recv(), 20))
                messages.append(message)
                if message["type"] in ("completed", "error"):
                    break
            return stalled_at, still, rss_growth, messages

    stalled_at, still, rss_growth_kib, messages = run(scenario(), timeout=60)
    print(f"upstream pieces written while the reader stalled: {stalled_at} of {PIECES + 9}; "
          f"server RSS growth {rss_growth_kib} KiB")
    assert still == stalled_at  # the upstream read stayed paused
    assert stalled_at < PIECES // 3
    assert rss_growth_kib < PIECES * PIECE // 1024 // 2  # well under the answer's size (40 MB)
    assert messages[-1]["type"] == "completed", messages[-1]
    assert all(m["id"] == "big" for m in messages)
    text = "".join(m["content"] for m in messages if m["type"] == "content_chunk")
    assert text == f"[openai] You said: {ask}" + "".join(long_piece(i, PIECE) for i in range(PIECES))
