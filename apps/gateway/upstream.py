"""Sending adapter requests upstream: one pooled HTTP client per process (`upstream_http`), errors made uniform
and scrubbed.

Every upstream error leaves through here, so this is where the credentials we sent are scrubbed from it
(`redaction`): the request's own, every other configured credential of the provider (the callers pass them as
`secrets`), and every credential this process has sent to the same origin (a proxy or a provider that echoes
headers, even an earlier request's).

The pool: at most `pool_size` connections in use at once (our own gate, so that waiting for one is told apart
from the upstream's time). The gateway's default is one per admitted request, so nobody waits; with a smaller
pool, a request that cannot get a connection before its deadline is a 503 naming the pool, never an upstream
timeout, and says nothing about the deployment's health.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from urllib.parse import urlsplit

from apps.providers.adapters.base import Adapter, ChunkFactory, Target, UpstreamError, UpstreamRequest
from apps.providers.adapters.openai import OpenAIStream

from .redaction import request_secrets, scrub_error
from .upstream_http import ConnectFailed, HttpClient, Response


def pool_exhausted(pool_size: int, waited: float) -> UpstreamError:
    # Not retryable: another deployment needs a connection from the same pool, and the deployment is not at fault.
    return UpstreamError(f"No upstream connection became free within {waited:.1f} s: all {pool_size} connections "
                         f"of this gateway process's pool (CONNECTION_POOL_SIZE) are in use; retry shortly.",
                         status=503, type="server_error", code="connection_pool_exhausted", retryable=False,
                         headers={"retry-after": "1"})


class LastBatch(list):
    """A stream's last batch, handed over once the upstream has finished: the iterator ends without waiting for
    anything more (`sse.relay` then needs no task and no disconnect watcher)."""

    __slots__ = ()


class Upstream:
    """Owns the HTTP connection pool (keep-alive, HTTP/1.1) to every upstream."""

    def __init__(self, *, pool_size: int = 10000, timeout: float = 60.0):
        self.pool_size = pool_size
        self.timeout = timeout
        self._client: HttpClient | None = None
        self._slots = asyncio.Semaphore(pool_size)
        self.sent_secrets: set[str] = set()  # every credential sent (the log filter scrubs these)
        self._origin_secrets: dict[str, set[str]] = {}
        self._secrets_memo: dict[tuple, frozenset[str]] = {}  # _secrets_for's answers while no credential is new

    @property
    def client(self) -> HttpClient:
        # No connection limit of its own: the semaphore is the pool's gate.
        if self._client is None:
            self._client = HttpClient(keepalive_timeout=30.0)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None

    # ---- credentials -------------------------------------------------------------------------------------
    def _secrets_for(self, request: UpstreamRequest, target: Target | None = None,
                     extra: Iterable[str] = ()) -> frozenset[str]:
        """Remember the request's credentials; all those known for its origin (plus `extra`) to scrub with."""
        extra = tuple(extra)
        key = (request.url, tuple(request.headers.items()), target.api_key if target is not None else None, extra)
        known = self._secrets_memo.get(key)
        if known is not None:  # the same request shape as before, and no credential learnt since
            return known
        mine = request_secrets(request.headers)
        if target is not None and target.api_key:
            mine.add(target.api_key)
        mine.update(s for s in extra if s)
        parts = urlsplit(request.url)
        origin = self._origin_secrets.setdefault(f"{parts.scheme}://{parts.netloc}", set())
        if not (mine <= origin and mine <= self.sent_secrets):
            origin.update(mine)
            self.sent_secrets.update(mine)
            self._secrets_memo.clear()  # other shapes' origins may now know more
        if len(self._secrets_memo) >= 4096:
            self._secrets_memo.clear()
        known = self._secrets_memo[key] = frozenset(origin)
        return known

    # ---- the pool ------------------------------------------------------------------------------------
    async def _slot(self, limit: float) -> float:
        """Take a pool slot within `limit` seconds; returns the time spent waiting."""
        if not self._slots.locked():
            await self._slots.acquire()
            return 0.0
        began = time.perf_counter()
        try:
            await asyncio.wait_for(self._slots.acquire(), max(0.001, limit))
        except TimeoutError:
            raise pool_exhausted(self.pool_size, time.perf_counter() - began) from None
        return time.perf_counter() - began

    async def _open(self, request: UpstreamRequest, *, total: float | None = None,
                    read: float | None = None, connect: float) -> Response:
        try:
            return await self.client.request(request.method, request.url, request.headers, request.body,
                                             connect=connect, total=total, read=read)
        except TimeoutError:  # before OSError: TimeoutError is one
            raise UpstreamError("Upstream provider timed out.", status=504, type="timeout",
                                code="upstream_timeout", retryable=True) from None
        except ConnectFailed:
            raise UpstreamError("Upstream provider is unreachable.", status=502, type="upstream_error",
                                code="upstream_unreachable", retryable=True) from None
        except OSError:
            raise UpstreamError("Upstream connection failed.", status=502, type="upstream_error",
                                code="upstream_connection_error", retryable=True) from None
        except ValueError as exc:  # a header that would split the request, a URL that is not http(s)
            raise UpstreamError(f"The upstream request cannot be sent: {exc}.", status=502, type="upstream_error",
                                code="upstream_request_invalid", retryable=False) from None

    async def _read(self, response: Response) -> bytes:
        try:
            return await response.read()
        except TimeoutError:
            raise UpstreamError("Upstream provider timed out.", status=504, type="timeout",
                                code="upstream_timeout", retryable=True) from None
        except OSError:
            raise UpstreamError("Upstream connection failed mid-response.", status=502, type="upstream_error",
                                code="upstream_connection_error", retryable=True) from None
        finally:
            response.close()

    # ---- whole responses -------------------------------------------------------------------------------
    async def fetch(self, adapter: Adapter, request: UpstreamRequest, *, timeout: float | None = None,
                    target: Target | None = None, secrets: Iterable[str] = ()) -> bytes:
        """Send, read the whole body; an upstream error status becomes the adapter's UpstreamError."""
        known = self._secrets_for(request, target, secrets)
        limit = timeout or self.timeout
        try:
            waited = await self._slot(limit)
            try:
                left = max(0.001, limit - waited)
                response = await self._open(request, total=left, connect=left)
                payload = await self._read(response)
            finally:
                self._slots.release()
            if response.status >= 400:
                raise adapter.error(response.status, payload, response.headers)
            return payload
        except UpstreamError as error:
            raise scrub_error(error, known) from None

    async def chat(self, adapter: Adapter, target: Target, body: dict, *, timeout: float | None = None,
                   secrets: Iterable[str] = ()) -> dict:
        """`secrets`: the provider's other configured credentials, scrubbed too."""
        if adapter.local:
            return await adapter.complete(body, target)
        request = adapter.chat_request(body, target, stream=False)
        payload = await self.fetch(adapter, request, timeout=timeout, target=target, secrets=secrets)
        try:
            return adapter.chat_response(payload, target)
        except UpstreamError as error:
            raise scrub_error(error, self._secrets_for(request, target, secrets)) from None

    async def embeddings(self, adapter: Adapter, target: Target, body: dict, *, timeout: float | None = None,
                         secrets: Iterable[str] = ()) -> dict:
        if adapter.local:
            return await adapter.embed(body, target)
        request = adapter.embeddings_request(body, target)
        payload = await self.fetch(adapter, request, timeout=timeout, target=target, secrets=secrets)
        try:
            return adapter.embeddings_response(payload, target, body)
        except UpstreamError as error:
            raise scrub_error(error, self._secrets_for(request, target, secrets)) from None

    # ---- streams -----------------------------------------------------------------------------------------
    async def open_stream(self, adapter: Adapter, request: UpstreamRequest, *,
                          timeout: float | None = None) -> Response:
        """Connect and check the status; the caller iterates the body and then calls `close_stream`. Errors
        before the body raise here (unscrubbed: `stream_request_batches` scrubs)."""
        limit = timeout or self.timeout
        waited = await self._slot(limit)
        try:
            limit = max(0.001, limit - waited)
            response = await self._open(request, connect=limit, read=limit)
            if response.status >= 400:
                payload = await self._read(response)
                raise adapter.error(response.status, payload, response.headers)
        except BaseException:
            self._slots.release()
            raise
        return response

    def close_stream(self, response: Response) -> None:
        response.close()
        self._slots.release()

    async def chat_stream(self, adapter: Adapter, target: Target, body: dict, chunks: ChunkFactory, *,
                          timeout: float | None = None) -> AsyncIterator[dict]:
        """OpenAI chunks from the upstream stream. Closing the generator closes the upstream connection."""
        batches = self.chat_stream_batches(adapter, target, body, chunks, timeout=timeout)
        try:
            async for batch in batches:
                for chunk in batch:
                    yield chunk
        finally:
            await batches.aclose()

    async def chat_stream_batches(self, adapter: Adapter, target: Target, body: dict, chunks: ChunkFactory, *,
                                  timeout: float | None = None, secrets: Iterable[str] = (),
                                  relay: bool = False) -> AsyncIterator[list[dict]]:
        """The same, one list per upstream read, so the gateway can write each read with one send. `relay`: an
        upstream speaking OpenAI's format hands most chunks over as undecoded JSON bytes (`OpenAIStream`)."""
        if adapter.local:
            async for chunk in adapter.stream(body, target, chunks):
                yield [chunk]
            return
        request = adapter.chat_request(body, target, stream=True)
        translator = adapter.chat_stream(target, chunks)
        if relay and isinstance(translator, OpenAIStream):
            translator.relay = True
        async for batch in self.stream_request_batches(adapter, request, translator,
                                                       timeout=timeout, target=target, secrets=secrets):
            yield batch

    async def stream_request(self, adapter: Adapter, request: UpstreamRequest, translator, *,
                             timeout: float | None = None) -> AsyncIterator[dict]:
        batches = self.stream_request_batches(adapter, request, translator, timeout=timeout)
        try:
            async for batch in batches:
                for chunk in batch:
                    yield chunk
        finally:
            await batches.aclose()

    async def stream_request_batches(self, adapter: Adapter, request: UpstreamRequest, translator, *,
                                     timeout: float | None = None, target: Target | None = None,
                                     secrets: Iterable[str] = ()) -> AsyncIterator[list[dict]]:
        known = self._secrets_for(request, target, secrets)
        try:
            response = await self.open_stream(adapter, request, timeout=timeout)
        except UpstreamError as error:
            raise scrub_error(error, known) from None
        relaying = isinstance(translator, OpenAIStream) and translator.relay
        try:
            async for data in response.iter_chunks():
                batch = translator.feed(data)
                if relaying and response.drained and (last := _last(translator, batch)) is not None:
                    if last:
                        yield last
                    return
                if batch:
                    yield batch
            batch = translator.close()
            if batch:
                yield batch
        except UpstreamError as error:  # the upstream's in-stream error event
            raise scrub_error(error, known) from None
        except TimeoutError:
            raise UpstreamError("Upstream provider timed out mid-stream.", status=504, type="timeout",
                                code="upstream_timeout", retryable=True) from None
        except OSError:
            raise UpstreamError("Upstream connection failed mid-stream.", status=502, type="upstream_error",
                                code="upstream_connection_error", retryable=True) from None
        finally:
            self.close_stream(response)


def _last(translator: OpenAIStream, batch: list) -> LastBatch | None:
    """`batch` with what closing the translator adds, once the upstream has finished; None when closing raises
    (a cut stream, an error read with the content), so that the content goes first and the error after it, as
    the next read's `close` raises it again."""
    try:
        rest = translator.close()
    except UpstreamError:
        return None
    return LastBatch([*batch, *rest])
