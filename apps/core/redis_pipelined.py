"""One pipelined Redis connection per event loop, for the writes and reads every gateway request makes.

redis-py's asyncio client spends ~200 µs of CPU per request on the ledger's two group commits alone at c=50 (a
pooled connection checked out and in, an asyncio timeout around every reply, a task per flush); measured with
the same commands through this connection: ~20 µs (docs/performance.md). The saving comes from RESP itself:
replies arrive in the order commands were sent, so one connection carries every caller's commands and a FIFO
of waiters matches replies to callers — no pool, no per-call task or timer. Commands queued in one event-loop
turn leave in one write; hiredis (redis-py's own C parser) packs commands and parses replies.

Connecting (TCP, a unix socket or TLS, AUTH, SELECT) happens on first use and again after a failure; the
configuration is the redis-py client's (`from_client`), so both always talk to the same server. Failures are
redis-py's exception types, so callers' `REDIS_ERRORS` handling holds: a lost connection fails every waiting
call with ConnectionError, no reply within `timeout` seconds aborts the connection with TimeoutError, and an
error reply raises ResponseError for the call that sent it (the rest of its commands still ran, as in a
non-transactional pipeline).
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
from dataclasses import dataclass, field

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


@dataclass(slots=True)
class _Waiter:
    expected: int
    future: asyncio.Future
    sent: float = 0.0
    replies: list = field(default_factory=list)
    setup: bool = False  # the connection's AUTH/SELECT: an error reply fails the connection at once


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: PipelinedRedis):
        self.owner = owner
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.owner._waiting
        try:
            while (reply := self.reader.gets()) is not False:
                if not waiting:  # a reply nobody asked for: the stream is out of step, start over
                    raise hiredis.ProtocolError("unexpected reply")
                waiter = waiting[0]
                waiter.replies.append(reply)
                if len(waiter.replies) == waiter.expected:
                    waiting.popleft()
                    if waiter.setup and self.owner._refused(self, waiter.replies):
                        return
                    if not waiter.future.done():
                        waiter.future.set_result(waiter.replies)
        except hiredis.ProtocolError as exc:
            self.owner._fail(self, RedisConnectionError(f"Redis protocol error: {exc}"))

    def connection_lost(self, exc) -> None:
        self.owner._fail(self, RedisConnectionError(f"Redis connection lost: {exc or 'closed by the server'}"))


def _copy_outcome(source: asyncio.Future, target: asyncio.Future) -> None:
    if target.done():  # its caller was cancelled
        return
    if source.cancelled():
        target.cancel()
    elif (error := source.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


def raise_errors(replies: list) -> list:
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
    return replies


class PipelinedRedis:
    """See the module docstring. Belongs to the event loop it was first used on."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 6379, path: str | None = None, db: int = 0,
                 username: str | None = None, password: str | None = None, ssl: ssl_module.SSLContext | None = None,
                 connect_timeout: float = 2.0, timeout: float = 2.0):
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password, self.ssl = username, password, ssl
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the first `send`
        self._shared: dict[tuple, asyncio.Future] = {}  # send_shared's reads not yet written
        self._write_waiters: list[asyncio.Future] = []  # `written()`'s, resolved by the next write

    @classmethod
    def from_client(cls, client) -> PipelinedRedis:
        """The same server, database and credentials as a redis-py asyncio client."""
        pool = client.connection_pool
        kwargs, kind = pool.connection_kwargs, pool.connection_class
        context = None
        if issubclass(kind, SSLConnection):
            context = ssl_module.create_default_context(cafile=kwargs.get("ssl_ca_certs"))
            if kwargs.get("ssl_cert_reqs") in ("none", ssl_module.CERT_NONE):
                context.check_hostname = False
                context.verify_mode = ssl_module.CERT_NONE
        return cls(host=kwargs.get("host", "127.0.0.1"), port=int(kwargs.get("port", 6379)),
                   path=kwargs.get("path") if issubclass(kind, UnixDomainSocketConnection) else None,
                   db=int(kwargs.get("db") or 0), username=kwargs.get("username"), password=kwargs.get("password"),
                   ssl=context, connect_timeout=float(kwargs.get("socket_connect_timeout") or 2.0),
                   timeout=float(kwargs.get("socket_timeout") or 2.0))

    # ---- the API ----------------------------------------------------------------------------------------
    def send(self, *commands: tuple) -> asyncio.Future:
        """Queue the commands (tuples of str/bytes/numbers) behind those already queued, now: commands sent in
        one loop turn leave in one write, whoever sends them. The future's result is their replies, an error
        reply as a `hiredis.ReplyError` in its place (`raise_errors`)."""
        loop = self._loop
        if loop is None:  # Python 3.11's get_running_loop() makes a getpid() syscall: ask once
            loop = self._loop = asyncio.get_running_loop()
        waiter = _Waiter(len(commands), loop.create_future())
        self._outgoing.append(b"".join([hiredis.pack_command(command) for command in commands]))
        self._waiting.append(waiter)
        if self._protocol is None:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._open())
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return waiter.future

    def send_shared(self, command: tuple, *, eager: bool = False) -> asyncio.Future:
        """`send(command)`, unless the same command is still waiting to be written: then its reply is shared.
        Callers of one loop turn share one read, whose reply reflects a state no older than any of them asked
        for. For reads only (a write must happen once per caller). Each caller gets a future of its own, so one
        cancelled caller does not cancel the others. `eager`: when nothing else is waiting on the connection,
        write now rather than at the end of the loop turn, so a lone caller's round trip overlaps its own work
        (under load the turn's one write carries it, shared)."""
        source = self._shared.get(command)
        if source is None or source.done():
            idle = not self._waiting
            source = self._shared[command] = self.send(command)
            if eager and idle and self._protocol is not None and self._protocol.transport is not None:
                self._flush()
        mine = self._loop.create_future()
        source.add_done_callback(lambda source: _copy_outcome(source, mine))
        return mine

    def written(self) -> asyncio.Future:
        """A future resolved once what is queued now has been written to the connection (the loop turn's one
        write, so awaiting it costs no extra syscall): True when it is in the kernel's socket buffer, from where
        it reaches Redis even if this process dies next; False when the connection failed first (the commands'
        own futures say what became of them). Each caller gets its own, so a cancelled one cancels no other."""
        future = (self._loop or asyncio.get_running_loop()).create_future()
        if self._outgoing:
            self._write_waiters.append(future)
        else:
            future.set_result(True)
        return future

    async def execute(self, *commands: tuple) -> list:
        """`send`, awaited; an error reply raises ResponseError (the other commands still ran)."""
        return raise_errors(await self.send(*commands))

    async def close(self) -> None:
        self._loop = None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        self._fail(protocol, RedisConnectionError("Redis connection closed"))

    # ---- connection ---------------------------------------------------------------------------------------
    async def _open(self) -> None:
        """Connect, then put the connection's set-up in front of what was queued meanwhile and send it all."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.path:
                    _, protocol = await loop.create_unix_connection(lambda: _Protocol(self), self.path)
                else:
                    _, protocol = await loop.create_connection(lambda: _Protocol(self), self.host, self.port,
                                                               ssl=self.ssl)
        except TimeoutError:
            self._connecting = None
            self._fail(None, RedisTimeoutError("Timeout connecting to Redis"))
            return
        except OSError as exc:
            self._connecting = None
            self._fail(None, RedisConnectionError(f"Error connecting to Redis: {exc}"))
            return
        setup = []
        if self.password:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        if setup:
            waiter = _Waiter(len(setup), loop.create_future(), setup=True)
            self._outgoing.insert(0, b"".join([hiredis.pack_command(command) for command in setup]))
            self._waiting.appendleft(waiter)
        self._connecting = None
        self._protocol = protocol
        self._flush()

    def _refused(self, protocol: _Protocol, replies: list) -> bool:
        """A refused AUTH or SELECT fails what was queued behind it and leaves no half-set-up connection."""
        errors = [str(reply) for reply in replies if isinstance(reply, hiredis.ReplyError)]
        if not errors:
            return False
        if protocol.transport is not None:
            protocol.transport.close()
        self._fail(protocol, RedisConnectionError(f"Redis refused the connection's set-up: {errors[0]}"))
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        protocol = self._protocol
        if not self._outgoing or protocol is None:  # nothing to send, or connecting: `_open` sends it
            return
        if protocol.transport is None:
            self._fail(protocol, RedisConnectionError("Redis connection lost"))
            return
        data, self._outgoing = b"".join(self._outgoing), []
        if self._shared:  # written now: later callers must ask again
            self._shared.clear()
        now = asyncio.get_running_loop().time()
        for waiter in reversed(self._waiting):  # the ones this write carries have no send time yet
            if waiter.sent:
                break
            waiter.sent = now
        protocol.transport.write(data)
        if self._write_waiters:
            self._wrote(True)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_at(now + self.timeout, self._check_timeout)

    def _wrote(self, ok: bool) -> None:
        waiters, self._write_waiters = self._write_waiters, []
        for future in waiters:
            if not future.done():  # its caller was cancelled
                future.set_result(ok)

    def _check_timeout(self) -> None:
        """One timer for the whole connection: the oldest unanswered call decides."""
        self._watchdog = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        # The oldest call may not have left yet (its write is due later in this loop turn): it has time left.
        due = (self._waiting[0].sent or loop.time()) + self.timeout
        if due > loop.time():
            self._watchdog = loop.call_at(due, self._check_timeout)
            return
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()
        self._fail(protocol, RedisTimeoutError(f"Redis did not answer within {self.timeout:g} s"))

    def _fail(self, protocol: _Protocol | None, error: Exception) -> None:
        """Fail every waiting call; the next call connects again."""
        if protocol is not self._protocol:
            return  # an older connection's late news
        self._protocol = None
        waiting, self._waiting, self._outgoing = self._waiting, collections.deque(), []
        self._shared.clear()
        if self._write_waiters:
            self._wrote(False)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for waiter in waiting:
            if not waiter.future.done():
                waiter.future.set_exception(error)
