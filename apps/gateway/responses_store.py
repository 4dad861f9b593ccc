"""Stored Responses API responses (`store: true`, the default): what `GET /v1/responses/{id}` returns and what a
later request's `previous_response_id` continues.

One record per response, keyed by tenant and id, kept `RESPONSES_RETENTION_SECONDS` (default 30 days): the
response object and the input items it answered (its own input after those of the responses it continued), so
continuing it is one read. In Redis (`cb:responses:<tenant>:<id>`, JSON, with a TTL) every web worker sees the
same responses and they survive a restart; the embedded default (no Redis) keeps them in this process's memory,
bounded. Another tenant's id is simply not found: the key names the tenant.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import orjson
from django.conf import settings

from apps.core.errors import ServiceUnavailable
from apps.core.redis_backoff import REDIS_ERRORS

logger = logging.getLogger("apps.gateway")

MEMORY_MAX_RESPONSES = 10_000


def _key(tenant_id: int | None, response_id: str) -> str:
    return f"cb:responses:{tenant_id if tenant_id is not None else '-'}:{response_id}"


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("Stored responses are unavailable right now; retry shortly.",
                              code="responses_store_unavailable", headers={"retry-after": "1"})


class RedisResponseStore:
    def __init__(self, redis_client):
        self.redis = redis_client

    async def save(self, tenant_id: int | None, response: dict, items: list[dict]) -> bool:
        """False when Redis could not take it (logged): the answer still goes out, it is only not retrievable."""
        value = orjson.dumps({"response": response, "items": items})
        try:
            await self.redis.set(_key(tenant_id, response["id"]), value, ex=settings.RESPONSES_RETENTION_SECONDS)
        except REDIS_ERRORS as exc:
            logger.warning("could not store response %s: %s", response["id"], type(exc).__name__)
            return False
        return True

    async def load(self, tenant_id: int | None, response_id: str) -> dict | None:
        """{"response", "items"}, or None when missing, expired, deleted or another tenant's."""
        try:
            raw = await self.redis.get(_key(tenant_id, response_id))
        except REDIS_ERRORS as exc:
            logger.warning("could not read response %s: %s", response_id, type(exc).__name__)
            raise _unavailable() from None
        return orjson.loads(raw) if raw is not None else None

    async def delete(self, tenant_id: int | None, response_id: str) -> bool:
        try:
            return bool(await self.redis.delete(_key(tenant_id, response_id)))
        except REDIS_ERRORS as exc:
            logger.warning("could not delete response %s: %s", response_id, type(exc).__name__)
            raise _unavailable() from None


class MemoryResponseStore:
    """This process's memory (the embedded default runs one process): the newest MEMORY_MAX_RESPONSES."""

    def __init__(self, limit: int = MEMORY_MAX_RESPONSES):
        self.limit = limit
        self._records: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def save(self, tenant_id: int | None, response: dict, items: list[dict]) -> bool:
        key = _key(tenant_id, response["id"])
        self._records[key] = (time.monotonic() + settings.RESPONSES_RETENTION_SECONDS,
                              orjson.dumps({"response": response, "items": items}))
        self._records.move_to_end(key)
        while len(self._records) > self.limit:
            self._records.popitem(last=False)
        return True

    async def load(self, tenant_id: int | None, response_id: str) -> dict | None:
        key = _key(tenant_id, response_id)
        record = self._records.get(key)
        if record is None:
            return None
        if record[0] <= time.monotonic():
            del self._records[key]
            return None
        return orjson.loads(record[1])

    async def delete(self, tenant_id: int | None, response_id: str) -> bool:
        return await self.load(tenant_id, response_id) is not None and bool(
            self._records.pop(_key(tenant_id, response_id), None))


def response_store_for_settings(redis_client) -> RedisResponseStore | MemoryResponseStore:
    return RedisResponseStore(redis_client) if redis_client is not None else MemoryResponseStore()
