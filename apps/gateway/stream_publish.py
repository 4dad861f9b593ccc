"""Publishing a /v1 chat request's output for `llmStream(requestId)` subscribers, when the request asks
(`circuit_breaker.publish_stream: true` or the header `x-cb-publish-stream: 1`).

The gateway imports no Channels: the real-time app registers the publisher (`set_publisher`, from its
AppConfig.ready). A publisher is `publisher(tenant_id, request_id) -> sink` with `sink.chunk(chunk)` (called
for each relayed chunk; must not block: it queues) and `sink.finish(usage=, cost=, error=)`. Requests that
do not ask pay one header lookup and one attribute read."""

from __future__ import annotations

from collections.abc import Callable

from .http import header

_publisher: Callable | None = None


def set_publisher(publisher: Callable | None) -> None:
    global _publisher
    _publisher = publisher


def sink_for(ctx, scope):
    """The sink of a request that asked to publish its stream, else None."""
    if _publisher is None:
        return None
    asked = ctx.options is not None and ctx.options.publish_stream
    if not asked and header(scope, b"x-cb-publish-stream") not in ("1", "true"):
        return None
    return _publisher(ctx.tenant_id, ctx.request_id)
