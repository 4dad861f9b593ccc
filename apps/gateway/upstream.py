"""Sending adapter requests upstream: one pooled aiohttp session per process, errors made uniform."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from apps.providers.adapters.base import Adapter, ChunkFactory, Target, UpstreamError, UpstreamRequest

USER_AGENT = "cbplatform"


class Upstream:
    """Owns the HTTP connection pool (keep-alive, HTTP/1.1) to every upstream."""

    def __init__(self, *, pool_size: int = 100, timeout: float = 60.0):
        self.pool_size = pool_size
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, limit_per_host=self.pool_size,
                                             ttl_dns_cache=300, keepalive_timeout=30, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                                  headers={"User-Agent": USER_AGENT}, auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _open(self, request: UpstreamRequest, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        try:
            return await self.session.request(request.method, request.url, headers=request.headers,
                                              data=request.body, timeout=timeout, allow_redirects=False)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamError("Upstream provider timed out.", status=504, type="timeout",
                                code="upstream_timeout", retryable=True) from None
        except aiohttp.ClientConnectorError:
            raise UpstreamError("Upstream provider is unreachable.", status=502, type="upstream_error",
                                code="upstream_unreachable", retryable=True) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("Upstream connection failed.", status=502, type="upstream_error",
                                code="upstream_connection_error", retryable=True) from None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamError("Upstream provider timed out.", status=504, type="timeout",
                                code="upstream_timeout", retryable=True) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("Upstream connection failed mid-response.", status=502, type="upstream_error",
                                code="upstream_connection_error", retryable=True) from None
        finally:
            response.release()

    async def fetch(self, adapter: Adapter, request: UpstreamRequest, *, timeout: float | None = None) -> bytes:
        """Send, read the whole body; an upstream error status becomes the adapter's UpstreamError."""
        response = await self._open(request, aiohttp.ClientTimeout(total=timeout or self.timeout))
        payload = await self._read(response)
        if response.status >= 400:
            raise adapter.error(response.status, payload, response.headers)
        return payload

    async def chat(self, adapter: Adapter, target: Target, body: dict, *, timeout: float | None = None) -> dict:
        if adapter.local:
            return await adapter.complete(body, target)
        payload = await self.fetch(adapter, adapter.chat_request(body, target, stream=False), timeout=timeout)
        return adapter.chat_response(payload, target)

    async def embeddings(self, adapter: Adapter, target: Target, body: dict, *, timeout: float | None = None) -> dict:
        if adapter.local:
            return await adapter.embed(body, target)
        payload = await self.fetch(adapter, adapter.embeddings_request(body, target), timeout=timeout)
        return adapter.embeddings_response(payload, target, body)

    async def open_stream(self, adapter: Adapter, request: UpstreamRequest, *,
                          timeout: float | None = None) -> aiohttp.ClientResponse:
        """Connect and check the status; the caller iterates the body. Errors before the body raise here."""
        limit = timeout or self.timeout
        response = await self._open(request, aiohttp.ClientTimeout(total=None, connect=limit, sock_read=limit))
        if response.status >= 400:
            payload = await self._read(response)
            raise adapter.error(response.status, payload, response.headers)
        return response

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
                                  timeout: float | None = None) -> AsyncIterator[list[dict]]:
        """The same, one list per upstream read, so the gateway can write each read with one send."""
        if adapter.local:
            async for chunk in adapter.stream(body, target, chunks):
                yield [chunk]
            return
        request = adapter.chat_request(body, target, stream=True)
        async for batch in self.stream_request_batches(adapter, request, adapter.chat_stream(target, chunks),
                                                       timeout=timeout):
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
                                     timeout: float | None = None) -> AsyncIterator[list[dict]]:
        response = await self.open_stream(adapter, request, timeout=timeout)
        try:
            async for data in response.content.iter_any():
                batch = translator.feed(data)
                if batch:
                    yield batch
            batch = translator.close()
            if batch:
                yield batch
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamError("Upstream provider timed out mid-stream.", status=504, type="timeout",
                                code="upstream_timeout", retryable=True) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError("Upstream connection failed mid-stream.", status=502, type="upstream_error",
                                code="upstream_connection_error", retryable=True) from None
        finally:
            response.close()
