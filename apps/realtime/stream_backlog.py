"""What an LLM or completion stream has published so far, so a subscriber that joins late misses nothing.

`createCompletion(stream: true)` answers with the id after the completion has started, and a `/v1` request's id
is known only from its response headers: subscribers always join a moment late. Each published message is
appended to the stream's backlog (a Redis list, kept `TTL` seconds after the last append; in-process without
Redis — the embedded default has one process) and numbered (`seq`); a subscriber joins the group, reads the
backlog, then goes live, dropping what it has by `seq` (the pattern of the workflow event replay)."""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict

import orjson

from apps.core import redis as cb_redis

TTL = 600
_local: OrderedDict[str, list] = OrderedDict()
_LOCAL_STREAMS = 200
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _key(kind: str, tenant_id: int, stream_id: str) -> str:
    return f"cb:rt:backlog:{kind}:{tenant_id}:{stream_id}"


def _client():
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = cb_redis.async_client()
    return client


async def append(kind: str, tenant_id: int, stream_id: str, payload: dict) -> dict:
    """Store `payload` with its `seq` (1, 2, …) and return it so numbered."""
    key = _key(kind, tenant_id, stream_id)
    if not cb_redis.configured():
        items = _local.setdefault(key, [])
        _local.move_to_end(key)
        while len(_local) > _LOCAL_STREAMS:
            _local.popitem(last=False)
        numbered = {**payload, "seq": len(items) + 1}
        items.append(numbered)
        return numbered
    client = _client()
    seq = await client.incr(key + ":n")
    numbered = {**payload, "seq": seq}
    async with client.pipeline(transaction=False) as pipe:
        pipe.rpush(key, orjson.dumps(numbered))
        pipe.expire(key, TTL)
        pipe.expire(key + ":n", TTL)
        await pipe.execute()
    return numbered


async def read(kind: str, tenant_id: int, stream_id: str) -> list[dict]:
    key = _key(kind, tenant_id, stream_id)
    if not cb_redis.configured():
        return list(_local.get(key, []))
    items = [orjson.loads(raw) for raw in await _client().lrange(key, 0, -1)]
    return sorted(items, key=lambda item: item["seq"])
