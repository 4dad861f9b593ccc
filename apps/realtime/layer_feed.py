"""Listening to channel-layer groups from a coroutine, without a consumer class: a private channel joined to
the groups, read as an async iterator, left when the iterator closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from channels.layers import get_channel_layer


async def group_messages(names: Iterable[str], *, joined=None) -> AsyncIterator[dict]:
    """Messages sent to any of `names` from the moment of joining; `joined` (a coroutine function) runs once
    the channel is in every group, before the first message is awaited (to read a backlog without a gap)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    names = list(dict.fromkeys(names))
    for name in names:
        await layer.group_add(name, channel)
    try:
        if joined is not None:
            async for item in joined():
                yield item
        while True:
            yield await layer.receive(channel)
    finally:
        for name in names:
            await layer.group_discard(name, channel)
