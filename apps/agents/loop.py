"""One long-lived event loop per process for the gateway's in-process API.

`completion_api`'s runtime (configuration snapshot, pooled HTTP clients) belongs to the loop that first used it,
so agent runs share one loop on a daemon thread instead of paying `asyncio.run` (a new runtime) per task. In a
process that already serves /v1 (the embedded default's web process) runs go to that loop, whose runtime (and
in-memory budget counters) /v1 uses. `shutdown()` (Celery's worker_process_shutdown, atexit) closes the
runtime, then the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from concurrent.futures import Future

from apps.gateway import completion_api
from apps.gateway.app import gateway_app

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _own_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run():
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=run, name="agents-loop", daemon=True)
            _thread.start()
            ready.wait(10)
            _loop = loop
        return _loop


def loop() -> asyncio.AbstractEventLoop:
    shared = gateway_app.runtime.loop
    if shared is not None and shared.is_running() and not shared.is_closed():
        return shared
    return _own_loop()


def submit(coroutine) -> Future:
    """Schedule `coroutine` on the process's loop; the concurrent Future cancels it when cancelled."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop())


def shutdown(*_args, **_kwargs) -> None:
    global _loop, _thread
    with _lock:
        loop_, thread = _loop, _thread
        _loop = _thread = None
    if loop_ is None or loop_.is_closed():
        return
    with contextlib.suppress(Exception):  # shutting down: nothing left to tell
        asyncio.run_coroutine_threadsafe(completion_api.close(), loop_).result(10)
    loop_.call_soon_threadsafe(loop_.stop)
    if thread is not None:
        thread.join(10)
    loop_.close()


atexit.register(shutdown)
