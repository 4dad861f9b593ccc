"""The usage ledger's write path: the gateway appends one entry per /v1 request to a Redis stream.

Appending happens before the response's final bytes leave (see the gateway), so a web process killed after
answering has already handed the record over. `ingest.py` moves entries into Postgres in batches, idempotently
by request id. Without Redis (the embedded default) entries are written in-process.

- **Redis fails** (down, restarting): the batch goes to this host's spool (`ledger_spool.py`, fsynced) before
  the requests are answered, and a background task delivers it when Redis answers again; files left by a
  process that died are delivered by the next one on the host. No answered request goes unrecorded.
- **In flight** (`begin`): a marker is written before the upstream call and removed in the same pipeline that
  appends the request's record. A web process killed mid-request leaves its markers; the periodic
  `billing.reconcile_inflight` task bills them at their estimated cost (`ledger_inflight.py`).
- At start, a warning names a ledger Redis that does not persist with AOF (a restart would lose records not
  yet ingested).

Both writes are queued at once on the process's pipelined connection (apps/core/redis_pipelined.py): every
record and marker of one event-loop turn, and whatever else the gateway sends in that turn (the configuration
version check), goes in one write, and each caller waits until its own is in Redis (or in the spool: the ops
of a failed write are spooled together, whether or not their callers still wait).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
from django.conf import settings
from redis.exceptions import ResponseError

from apps.core.redis_backoff import REDIS_ERRORS
from apps.core.redis_pipelined import PipelinedRedis, raise_errors

from .ingest import ingest_entries
from .ledger_spool import LedgerSpool
from .ledger_stream import INFLIGHT, INFLIGHT_STARTED, STREAM

logger = logging.getLogger(__name__)

SPOOL_RETRY_SECONDS = 2.0


def spool_dir() -> Path:
    configured = getattr(settings, "LEDGER_SPOOL_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "ledger-spool"


@dataclass(slots=True)
class _Op:
    kind: str  # "e": a finished request's record, "b": a started request's marker
    request_id: str
    payload: bytes
    started: float


async def _nothing() -> None:
    return None


async def check_persistence(redis) -> bool | None:
    """Warn (one line) when the ledger's Redis does not persist with AOF. True: AOF on, False: off, None:
    CONFIG is not available (managed Redis often disables it)."""
    try:
        appendonly = (await redis.config_get("appendonly")).get("appendonly")
        save = (await redis.config_get("save")).get("save")
    except REDIS_ERRORS as exc:
        logger.info("ledger: cannot check whether Redis persists (%s); make sure it runs with appendonly yes",
                    type(exc).__name__)
        return None
    appendonly = appendonly.decode() if isinstance(appendonly, bytes) else appendonly
    save = save.decode() if isinstance(save, bytes) else save
    if appendonly == "yes":
        return True
    snapshots = f"RDB snapshots only ({save!r}): a restart loses the last minutes" if save else "no RDB either"
    logger.warning("ledger: the Redis holding usage records does not persist with AOF (appendonly=%s; %s): a Redis "
                   "restart loses records not yet ingested into the ledger. Run it with --appendonly yes "
                   "(docs/deploy.md).", appendonly, snapshots)
    return False


class LedgerWriter:
    """See the module docstring. `redis` None: the embedded default (written in-process, no markers)."""

    def __init__(self, redis=None, *, spool: LedgerSpool | None = None, retry_seconds: float = SPOOL_RETRY_SECONDS,
                 wire: PipelinedRedis | None = None):
        self.redis = redis
        # The hot path's group commits go through one pipelined connection to the same server as `redis` (the
        # gateway passes the one its other per-request commands share).
        self.wire = wire or (PipelinedRedis.from_client(redis) if redis is not None else None)
        self.spool = spool if spool is not None or redis is None else LedgerSpool(spool_dir())
        self.retry_seconds = retry_seconds
        self._failed: list[tuple[_Op, asyncio.Future]] = []  # ops of a failed write, spooled together
        self._tasks: set[asyncio.Task] = set()  # the loop holds tasks weakly
        self._delivery: asyncio.Task | None = None
        self._started = False
        self._finished_while_spooling: set[str] = set()
        self._begun: set[str] = set()  # request ids with a marker to retire (append of others adds no command)

    # ---- the API ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check Redis persistence and deliver what earlier processes of this host left in the spool. Runs on
        first use by itself; the gateway may call it at start-up."""
        if self._started or self.redis is None:
            return
        self._started = True
        await check_persistence(self.redis)
        if await asyncio.to_thread(self.spool.pending):
            self._deliver_later()

    def begin(self, request_id: str, *, tenant_id: int | None, api_key_id: int | None = None,
              endpoint: str = "chat", model_requested: str = "", model_served: str = "", provider: str = "",
              estimated_cost: Decimal | str | int = 0, prompt_tokens: int = 0, streamed: bool = False,
              user_label: str = "", project_label: str = "", workflow_id: str = "", agent_id: str = "",
              created_at: float | None = None) -> Awaitable[None]:
        """Mark a request as started, durably, before its upstream call: if this process dies before
        `append`, the reconciler bills `estimated_cost` for it (flagged estimated). The marker is queued on the
        pipelined connection at once (so it leaves in the same write as whatever else this loop turn sends);
        await the result to know it is in Redis or, when Redis fails, in this host's spool."""
        if self.redis is None:
            return _nothing()
        started = time.time() if created_at is None else float(created_at)
        marker = {"request_id": request_id, "created_at": started, "tenant_id": tenant_id, "api_key_id": api_key_id,
                  "endpoint": endpoint, "model_requested": model_requested, "model_served": model_served,
                  "provider": provider, "cost": str(estimated_cost), "prompt_tokens": int(prompt_tokens or 0),
                  "streamed": bool(streamed), "user_label": user_label, "project_label": project_label,
                  "workflow_id": workflow_id, "agent_id": agent_id}
        if len(self._begun) > 100_000:  # appends that never came (a bug elsewhere): forget, the reconciler
            self._begun.clear()  # checks the ledger before billing a marker
        self._begun.add(request_id)
        return self._commit(_Op("b", request_id, orjson.dumps(marker, default=str), started))

    def append(self, entry: dict) -> Awaitable[None]:
        """Hand a finished request's record over (and retire its marker), queued at once like `begin`; the
        result is there once it is in Redis or, when Redis fails, in this host's spool."""
        payload = orjson.dumps(entry, default=str)
        if self.redis is None:
            return asyncio.to_thread(ingest_entries, [payload])
        request_id = str(entry.get("request_id") or "")
        if request_id in self._begun:
            self._begun.discard(request_id)
        else:
            request_id = ""  # no marker of this process to retire: the write carries the XADD alone
        return self._commit(_Op("e", request_id, payload, 0.0))

    def written(self) -> Awaitable[bool]:
        """True once what was queued (a marker from `begin`) is in the kernel's socket buffer on its way to Redis,
        False when the connection failed first (`PipelinedRedis.written`)."""
        return self.wire.written()

    async def close(self) -> None:
        for task in [*self._tasks, self._delivery]:
            if task is not None:
                task.cancel()
        if self.wire is not None:
            await self.wire.close()

    # ---- writes -----------------------------------------------------------------------------------------
    def _commit(self, op: _Op) -> asyncio.Future:
        """Queue the op's commands; the returned future resolves once they are in Redis or the op is spooled.
        Spooling does not depend on the caller: a caller cancelled meanwhile still has its record kept."""
        if not self._started:
            self._track(asyncio.ensure_future(self.start()))
        sent = self.wire.send(*self._commands(op.kind, op.request_id, op.payload, op.started))
        done = sent.get_loop().create_future()
        sent.add_done_callback(lambda sent: self._sent(op, sent, done))
        return done

    def _sent(self, op: _Op, sent: asyncio.Future, done: asyncio.Future) -> None:
        error = sent.exception() if not sent.cancelled() else asyncio.CancelledError()
        if error is None:
            try:
                raise_errors(sent.result())
            except ResponseError as exc:  # e.g. Redis out of memory: the record must not be lost either
                error = exc
        if error is None:
            if op.kind == "e" and self._delivery is not None and not self._delivery.done():
                self._finished_while_spooling.add(op.request_id)
            if not done.done():
                done.set_result(None)
            return
        # Every op of a failed write fails in the same loop turn: they are spooled together.
        if not self._failed:
            asyncio.get_running_loop().call_soon(self._spool_failed, error)
        self._failed.append((op, done))

    def _spool_failed(self, error: BaseException) -> None:
        failed, self._failed = self._failed, []
        self._track(asyncio.ensure_future(self._spool_and_release(failed, error)))

    async def _spool_and_release(self, failed: list[tuple[_Op, asyncio.Future]], error: BaseException) -> None:
        try:
            await self._spool([op for op, _ in failed], error)
        finally:
            for _, done in failed:
                if not done.done():
                    done.set_result(None)

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _commands(kind: str, request_id: str, payload: bytes, started: float) -> list[tuple]:
        if kind == "b":
            return [("HSET", INFLIGHT, request_id, payload), ("ZADD", INFLIGHT_STARTED, started, request_id)]
        commands = [("XADD", STREAM, "*", "e", payload)]
        if request_id:
            commands += [("HDEL", INFLIGHT, request_id), ("ZREM", INFLIGHT_STARTED, request_id)]
        return commands

    # ---- the spool --------------------------------------------------------------------------------------
    async def _spool(self, batch: list[_Op], exc: BaseException) -> None:
        lines = [op.kind.encode() + b" " + op.payload for op in batch]
        try:
            await asyncio.to_thread(self.spool.write, lines)
        except OSError as spool_exc:
            for op in batch:
                # Neither Redis nor the disk took it: keep it in the log (records carry no secret) for replay.
                logger.error("usage record not queued (%s; spool: %s): %s", type(exc).__name__,
                             type(spool_exc).__name__, op.payload.decode())
            return
        logger.warning("ledger: Redis failed (%s: %s); %d record(s) spooled to %s until it answers",
                       type(exc).__name__, str(exc)[:120], len(batch), self.spool.directory)
        self._deliver_later()

    def _deliver_later(self) -> None:
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.ensure_future(self._deliver_loop())

    async def _deliver_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.retry_seconds)
                if await self.deliver_spool():
                    return
        finally:
            self._finished_while_spooling.clear()

    async def deliver_spool(self) -> bool:
        """Deliver every spooled record this process may deliver. True when nothing is left."""
        claimed = await asyncio.to_thread(self.spool.claim)
        for index, path in enumerate(claimed):
            ops = await asyncio.to_thread(self.spool.read, path)
            finished = {self._request_id(payload) for kind, payload in ops if kind == "e"}
            finished |= self._finished_while_spooling
            try:
                pipe = self.redis.pipeline(transaction=False)
                for kind, payload in ops:
                    request_id = self._request_id(payload)
                    if kind == "b" and request_id in finished:
                        continue  # its record is here or already in Redis: no marker to resurrect
                    started = float(orjson.loads(payload).get("created_at") or 0) if kind == "b" else 0.0
                    for command in self._commands(kind, request_id, payload, started):  # records retire markers
                        pipe.execute_command(*command)
                await pipe.execute()
            except REDIS_ERRORS as exc:
                logger.warning("ledger: spool delivery failed (%s); retrying in %.0fs", type(exc).__name__,
                               self.retry_seconds)
                for rest in claimed[index:]:
                    await asyncio.to_thread(self.spool.unclaim, rest)
                return False
            await asyncio.to_thread(self.spool.done, path)
            logger.info("ledger: %d spooled record(s) delivered from %s", len(ops), path.name)
        return not await asyncio.to_thread(self.spool.pending)

    @staticmethod
    def _request_id(payload: bytes) -> str:
        try:
            return str(orjson.loads(payload).get("request_id") or "")
        except orjson.JSONDecodeError:
            return ""
