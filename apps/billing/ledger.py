"""The usage ledger's write path: the gateway appends one entry per /v1 request to a Redis stream.

Appending happens before the response's final bytes leave (see GatewayApp), so a web process killed after
answering has already handed the record to Redis. `ingest.py` moves entries into Postgres in batches,
idempotently by request id. Without Redis (the embedded default) entries are written in-process.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

logger = logging.getLogger(__name__)

STREAM = "cb:usage"
FIELDS = (
    "request_id", "created_at", "tenant_id", "api_key_id", "user_label", "project_label", "workflow_id", "agent_id",
    "endpoint", "provider", "deployment", "model_requested", "model_served", "strategy", "attempts",
    "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost",
    "latency_ms", "ttft_ms", "status", "error_type", "streamed", "usage_estimated",
)


class LedgerWriter:
    def __init__(self, redis=None):
        self.redis = redis

    async def append(self, entry: dict) -> None:
        payload = orjson.dumps(entry, default=str)
        if self.redis is None:
            from .ingest import ingest_entries

            await asyncio.to_thread(ingest_entries, [payload])
            return
        try:
            await self.redis.xadd(STREAM, {"e": payload})
        except Exception as exc:
            # The record cannot reach the stream: keep it in the log (it carries no secret) so it can be replayed.
            logger.error("usage record not queued (%s): %s", type(exc).__name__, payload.decode())
