"""The harness every adapter test drives its adapter with: the gateway's real `Upstream` executor against a fake
upstream over real HTTP (fixtures in conftest.py), plus readers of the OpenAI chunks that come back."""

from __future__ import annotations

import asyncio

import pytest

from apps.gateway.upstream import Upstream
from apps.providers.adapters.base import Adapter, ChunkFactory, Target, UpstreamError


def run(work, timeout: float = 10.0):
    """`await work(upstream)` with a fresh Upstream, closed afterwards."""
    async def main():
        upstream = Upstream(timeout=timeout)
        try:
            return await work(upstream)
        finally:
            await upstream.close()

    return asyncio.run(main())


def chat(adapter: Adapter, target: Target, body: dict, *, timeout: float = 10.0) -> dict:
    return run(lambda upstream: upstream.chat(adapter, target, body), timeout)


def stream(adapter: Adapter, target: Target, body: dict, *, into: list | None = None, timeout: float = 10.0,
           model: str | None = None) -> list[dict]:
    """All chunks of a streamed answer; with `into`, chunks land there as they arrive (for tests expecting a
    raise). `model` names the chunks (default: the target's model)."""
    chunks = [] if into is None else into

    async def work(upstream):
        async for chunk in upstream.chat_stream(adapter, target, body, ChunkFactory(model or target.model)):
            chunks.append(chunk)
        return chunks

    return run(work, timeout)


def embed(adapter: Adapter, target: Target, body: dict, *, timeout: float = 10.0) -> dict:
    return run(lambda upstream: upstream.embeddings(adapter, target, body), timeout)


def streamed_text(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def finishes(chunks: list[dict]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]


def expect_error(fn, *args, **kwargs) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        fn(*args, **kwargs)
    return caught.value
