"""Which tenant a completion or request stream belongs to, so a subscriber of another tenant gets NotFound
rather than silence. Recorded (in the cache: Redis when configured) when a stream starts publishing; a stream
nobody has started yet may be subscribed to in advance — its events go to tenant-scoped groups anyway."""

from __future__ import annotations

from django.core.cache import cache

from apps.core.errors import NotFound

TTL = 24 * 3600


def _key(kind: str, stream_id: str) -> str:
    return f"cb:rt:owner:{kind}:{stream_id}"


async def claim(kind: str, stream_id: str, tenant_id: int) -> bool:
    """Record the owner; False when another tenant already owns this id (the caller must not publish)."""
    key = _key(kind, stream_id)
    if await cache.aadd(key, tenant_id, TTL):
        return True
    return await cache.aget(key) == tenant_id


async def check(kind: str, stream_id: str, tenant_id: int, label: str) -> None:
    owner = await cache.aget(_key(kind, stream_id))
    if owner is not None and owner != tenant_id:
        raise NotFound(f"No {label} with id {stream_id!r}.")
