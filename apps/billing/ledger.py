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
    """Appends with group commit: records of requests finishing in the same event-loop turn share one
    pipelined round trip, and each caller still waits until its own record is in Redis."""

    def __init__(self, redis=None):
        self.redis = redis
        self._pending: list[tuple[bytes, asyncio.Future]] = []
        self._scheduled = False
        self._flushes: set[asyncio.Task] = set()  # the loop holds tasks weakly

    async def append(self, entry: dict) -> None:
        payload = orjson.dumps(entry, default=str)
        if self.redis is None:
            from .ingest import ingest_entries

            await asyncio.to_thread(ingest_entries, [payload])
            return
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((payload, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start_flush)
        await done

    def _start_flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._flush(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[bytes, asyncio.Future]]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for payload, _ in batch:
                pipe.xadd(STREAM, {"e": payload})
            await pipe.execute()
        except Exception as exc:
            for payload, _ in batch:
                # Not queued: keep it in the log (records carry no secret) so it can be replayed.
                logger.error("usage record not queued (%s): %s", type(exc).__name__, payload.decode())
        finally:
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
