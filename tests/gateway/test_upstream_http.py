"""The upstream HTTP client (`apps.gateway.upstream_http`) against raw HTTP/1.1 servers on loopback, so every
byte on the wire is the test's choice: keep-alive, framing (length, chunked, until close, gzip, 1xx), timeouts,
refused and broken connections, headers that would split a request, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.gateway import upstream_http
from apps.gateway.upstream import Upstream
from apps.gateway.upstream_http import ConnectFailed, ConnectionBroken, HttpClient
from apps.providers.adapters import registry
from apps.providers.adapters.base import UpstreamError, UpstreamRequest


class RawServer:
    """Reads each request (head and Content-Length body) and answers with `respond(request) -> bytes | None`
    (None: say nothing). Records requests and connections."""

    def __init__(self, respond, *, ssl_context=None):
        self.respond, self.ssl_context = respond, ssl_context
        self.requests: list[dict] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        for writer in self.writers:
            writer.close()
        self.server.close()

    def url(self, path: str = "/v1/chat/completions", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
                length = sum(int(v) for k, v in headers if k.lower() == "content-length")
                body = await reader.readexactly(length) if length else b""
                request = {"method": method, "target": target, "headers": headers, "body": body, "raw": head}
                self.requests.append(request)
                answer = self.respond(request)
                if answer is None:
                    await asyncio.sleep(3600)
                if callable(answer):
                    await answer(writer)
                else:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(respond, **kwargs):
    """A RawServer and a client of it, both closed afterwards."""
    async with RawServer(respond, **kwargs) as server:
        client = HttpClient()
        try:
            yield server, client
        finally:
            await client.close()


def ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_connections_are_kept_alive_and_reused():
    async def main():
        async with serving(lambda r: ok()) as (server, client):
            for _ in range(5):
                response = await client.request("POST", server.url(), {"Authorization": "Bearer k"}, b"{}",
                                                connect=5, total=5)
                assert (response.status, await response.read()) == (200, b'{"ok":true}')
            return server, client

    server, client = run(main())
    assert server.connections == 1 and client.connections_made == 1
    first = server.requests[0]
    assert first["method"] == "POST" and first["target"] == "/v1/chat/completions" and first["body"] == b"{}"
    assert ("Host", f"127.0.0.1:{server.port}") in first["headers"]
    assert ("Authorization", "Bearer k") in first["headers"]
    assert ("User-Agent", "cbplatform") in first["headers"]


def test_chunked_gzip_interim_and_until_close_bodies_arrive_whole():
    payload = b'{"text":"' + b"x" * 5000 + b'"}'
    zipped = gzip.compress(payload)

    def respond(request):
        kind = request["target"].rsplit("/", 1)[1]
        if kind == "chunked":
            return (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (payload[:7], payload[7:]))
                    + b"0\r\n\r\n")
        if kind == "gzip":
            return ok(zipped, "Content-Encoding: gzip\r\n")

        async def until_close(writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + payload)
            await writer.drain()
            writer.close()
        return until_close

    async def main():
        async with serving(respond) as (server, client):
            bodies = {}
            for kind in ("chunked", "gzip", "close", "chunked"):
                response = await client.request("GET", server.url(f"/x/{kind}"), {}, None, connect=5, total=5)
                bodies[kind] = await response.read()
            return bodies, server

    bodies, server = run(main())
    assert bodies == {"chunked": payload, "gzip": payload, "close": payload}
    assert server.connections == 2  # the body delimited by the close could not leave its connection for reuse


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    def respond(request):
        return ok(extra="Connection: close\r\n") if request["target"].endswith("bye") else ok()

    async def main():
        async with serving(respond) as (server, client):
            for path in ("/bye", "/again", "/again"):
                response = await client.request("POST", server.url(path), {}, b"{}", connect=5, total=5)
                assert await response.read() == b'{"ok":true}'
            return server.connections

    assert run(main()) == 2


def test_headers_that_would_split_the_request_are_refused_before_anything_is_sent():
    async def main():
        async with serving(lambda r: ok()) as (server, client):
            for headers in ({"X-Evil": "a\r\nX-Injected: 1"}, {"X-Evil": "a\nb"}, {"Bad Name": "v"},
                            {"X-Evil": "a\rb"}):
                with pytest.raises(ValueError):
                    await client.request("POST", server.url(), headers, b"{}", connect=5, total=5)
            # A caller's framing headers are dropped: the length sent is the body's.
            response = await client.request("POST", server.url(), {"Content-Length": "1", "Host": "evil",
                                                                   "User-Agent": "mine"}, b"{}", connect=5,
                                            total=5)
            await response.read()
            return server.requests, server.port

    requests, port = run(main())
    assert len(requests) == 1
    headers = requests[0]["headers"]
    assert [v for k, v in headers if k.lower() == "content-length"] == ["2"]
    assert [v for k, v in headers if k.lower() == "host"] == [f"127.0.0.1:{port}"]
    assert [v for k, v in headers if k.lower() == "user-agent"] == ["mine"]


def test_timeouts_refusals_and_broken_answers_become_upstream_errors():
    adapter = registry.get("openai")

    def respond(request):
        path = request["target"]
        if path.endswith("silent"):
            return None
        if path.endswith("garbage"):
            return b"SMTP ready\r\n\r\n"

        async def cut(writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")
            await writer.drain()
            writer.transport.abort()
        return cut

    async def main():
        async with RawServer(respond) as server:
            upstream = Upstream(timeout=0.5)
            errors = {}
            for path in ("silent", "garbage", "cut"):
                request = UpstreamRequest("POST", server.url(f"/{path}"), {"Authorization": "Bearer sk-secret"},
                                          b"{}")
                with pytest.raises(UpstreamError) as caught:
                    await upstream.fetch(adapter, request)
                errors[path] = caught.value
            closed = UpstreamRequest("POST", "http://127.0.0.1:9/refused", {}, b"{}")  # discard port: refused
            with pytest.raises(UpstreamError) as caught:
                await upstream.fetch(adapter, closed)
            errors["refused"] = caught.value
            bad = UpstreamRequest("POST", server.url("/x"), {"X-Org": "a\r\nb"}, b"{}")
            with pytest.raises(UpstreamError) as caught:
                await upstream.fetch(adapter, bad)
            errors["header"] = caught.value
            await upstream.close()
            return errors

    errors = run(main())
    assert (errors["silent"].status, errors["silent"].code) == (504, "upstream_timeout")
    assert (errors["garbage"].status, errors["garbage"].code) == (502, "upstream_connection_error")
    assert (errors["cut"].status, errors["cut"].code) == (502, "upstream_connection_error")
    assert (errors["refused"].status, errors["refused"].code) == (502, "upstream_unreachable")
    assert (errors["header"].status, errors["header"].code, errors["header"].retryable) == (
        502, "upstream_request_invalid", False)
    assert all(error.retryable for name, error in errors.items() if name != "header")


def test_a_stream_arrives_as_sent_and_a_stalled_one_times_out_between_reads():
    events = [b"data: {\"n\":%d}\n\n" % i for i in range(3)]

    def respond(request):
        stall = request["target"].endswith("stall")

        async def stream(writer):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for event in events:
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.05)
            if stall:
                await asyncio.sleep(3600)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return stream

    async def main():
        async with serving(respond) as (server, client):
            response = await client.request("POST", server.url("/ok"), {}, b"{}", connect=5, read=1)
            assert response.content_type == "text/event-stream"
            received = b"".join([chunk async for chunk in response.iter_chunks()])
            stalled = await client.request("POST", server.url("/stall"), {}, b"{}", connect=5, read=0.3)
            got = []
            with pytest.raises(TimeoutError):
                async for chunk in stalled.iter_chunks():
                    got.append(chunk)
            return received, b"".join(got), server.connections

    received, partial, connections = run(main())
    assert received == b"".join(events)
    assert partial == b"".join(events)  # what arrived before the stall was handed over
    assert connections == 1  # the finished stream's connection carried the next request


def test_an_abandoned_answer_closes_its_connection_and_a_large_body_arrives_intact():
    big = bytes(range(256)) * 8_000  # 2 MB: beyond the stream buffer, so reading pauses and resumes

    def respond(request):
        return ok(big) if request["target"].endswith("big") else ok(b"x" * 100)

    async def main():
        async with serving(respond) as (server, client):
            response = await client.request("GET", server.url("/big"), {}, None, connect=5, read=5)
            first = b""
            async for chunk in response.iter_chunks():
                first = chunk
                break
            response.close()  # abandoned part-way: the connection cannot carry another request
            response = await client.request("GET", server.url("/big"), {}, None, connect=5, read=5)
            parts = [chunk async for chunk in response.iter_chunks()]
            response = await client.request("GET", server.url("/big"), {}, None, connect=5, total=5)
            read = await response.read()
            return first, b"".join(parts), read, server.connections

    first, streamed, read, connections = run(main())
    assert first and big.startswith(first)
    assert streamed == big and read == big
    assert connections == 2


def _certificate(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_verifies_the_server_certificate(tmp_path):
    cert_path, key_path = _certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)

    async def main():
        async with RawServer(lambda r: ok(), ssl_context=server_context) as server:
            trusting = HttpClient(ssl=ssl.create_default_context(cafile=str(cert_path)))
            response = await trusting.request("POST", server.url(scheme="https"), {}, b"{}", connect=5, total=5)
            body = await response.read()
            await trusting.close()
            default = HttpClient()  # the system's CA store does not know our self-signed certificate
            with pytest.raises(ConnectFailed):
                await default.request("POST", server.url(scheme="https"), {}, b"{}", connect=5, total=5)
            await default.close()
            return body

    assert run(main()) == b'{"ok":true}'


def test_an_answer_in_an_encoding_we_cannot_read_is_an_error():
    async def main():
        async with serving(lambda r: ok(b"\x00\x01", "Content-Encoding: br\r\n")) as (server, client):
            with pytest.raises(ConnectionBroken):
                await client.request("GET", server.url(), {}, None, connect=5, total=5)

    run(main())


def test_a_connection_paused_for_a_slow_reader_reads_again_when_reused(monkeypatch):
    """Reading pauses when a stream's reader falls behind; when the answer also ends in that read, the connection
    goes back to the pool and must be read again for the next request (it used to hang)."""
    monkeypatch.setattr(upstream_http, "STREAM_BUFFER_BYTES", 100)
    rest = b"y" * 1000

    def respond(request):
        if not request["target"].endswith("stream"):
            return ok()

        async def stream(writer):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))  # past the buffer, and the end, in one read
            await writer.drain()
        return stream

    async def main():
        async with serving(respond) as (server, client):
            response = await client.request("POST", server.url("/stream"), {}, b"{}", connect=5, read=5)
            chunks = response.iter_chunks()
            first = await anext(chunks)
            await asyncio.sleep(0.5)  # the reader falls behind while the rest arrives
            body = first + b"".join([chunk async for chunk in chunks])
            again = await client.request("POST", server.url("/next"), {}, b"{}", connect=5, total=2)
            answer = await again.read()
            return body, answer, server.connections

    body, answer, connections = run(main())
    assert body == b"first" + rest
    assert answer == b'{"ok":true}' and connections == 1


def test_an_idle_connection_whose_transport_is_closing_is_not_reused():
    """A transport can be closing before its connection_lost has run (that comes a loop turn later): such a
    connection must not carry the next request (its write would go nowhere, or raise)."""
    async def main():
        async with serving(lambda r: ok()) as (server, client):
            first = await client.request("POST", server.url(), {}, b"{}", connect=5, total=2)
            await first.read()
            [idle] = [c for pool in client._idle_connections.values() for c in pool]
            idle.transport.close()  # no loop turn yet: idle.closed is still False
            again = await client.request("POST", server.url(), {}, b"{}", connect=5, total=2)
            return await again.read(), client.connections_made

    assert run(main()) == (b'{"ok":true}', 2)
