"""One long-lived event loop per process for sync code that must await the platform's async APIs.

Sync Django views (the GraphQL view) call `run(coroutine, timeout=…)`: the coroutine runs on `loop` when the
caller names one that is running in another thread (the ASGI server's loop, which owns the gateway runtime),
else on this process's background loop, started on first use in a daemon thread (and again after a fork, so
each uvicorn or Celery worker has its own). Never `asyncio.run` per request: each new loop would start its own
gateway runtime (configuration load, connection pools).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """This process's background loop (started on first use)."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="cb-background-loop", daemon=True)
            thread.start()
            _loop, _pid = loop, os.getpid()
        return _loop


def run(coroutine: Coroutine, *, timeout: float | None, loop: asyncio.AbstractEventLoop | None = None):
    """The coroutine's result, run on `loop` (when running, and not this thread's) or the background loop.
    On timeout the coroutine is cancelled and TimeoutError raised."""
    target = loop if _usable(loop) else background_loop()
    future = asyncio.run_coroutine_threadsafe(coroutine, target)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"gave up after {timeout} s") from None


def submit(coroutine: Coroutine, *, loop: asyncio.AbstractEventLoop | None = None) -> concurrent.futures.Future:
    """Start the coroutine without waiting for it (work that outlives the request)."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop if _usable(loop) else background_loop())


def _usable(loop) -> bool:
    if loop is None or loop.is_closed() or not loop.is_running():
        return False
    try:
        return asyncio.get_running_loop() is not loop
    except RuntimeError:
        return True
