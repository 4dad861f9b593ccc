"""The gateway's pipelined Redis connection against real Redis servers: many callers' commands share writes and
each gets its own replies, error replies fail only their caller, and a lost, silent or refusing server fails the
waiting calls with redis-py's exception types (what the ledger's spool and the health store's backoff catch),
after which the next call connects again."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.core.redis_pipelined import PipelinedRedis
from tests.billing.own_redis import OwnRedis
from tests.conftest import free_port


def run(coro):
    return asyncio.run(coro)


def test_concurrent_callers_get_their_own_replies_in_one_connection():
    own = OwnRedis().start()
    try:
        async def main():
            wire = PipelinedRedis(port=own.port)
            try:
                async def caller(i: int):
                    replies = await wire.execute(("SET", f"k{i}", f"v{i}"), ("INCRBY", "total", i), ("GET", f"k{i}"))
                    return replies[0], replies[2]

                results = await asyncio.gather(*(caller(i) for i in range(500)))
                clients = await wire.execute(("CLIENT", "LIST"))
                return results, clients[0], (await wire.execute(("GET", "total")))[0]
            finally:
                await wire.close()

        results, clients, total = run(main())
        assert results == [(b"OK", f"v{i}".encode()) for i in range(500)]
        assert total == str(sum(range(500))).encode()
        assert clients.count(b"cmd=") == 1  # every caller went through the one connection
    finally:
        own.stop()


def test_an_error_reply_fails_only_its_caller_and_the_rest_of_its_commands_ran():
    own = OwnRedis().start()
    try:
        async def main():
            wire = PipelinedRedis(port=own.port)
            try:
                await wire.execute(("SET", "text", "abc"))
                bad = wire.execute(("INCR", "text"), ("SET", "after", "1"))
                good = wire.execute(("GET", "text"))
                outcome = await asyncio.gather(bad, good, return_exceptions=True)
                return outcome, (await wire.execute(("GET", "after")))[0]
            finally:
                await wire.close()

        (bad, good), after = run(main())
        assert isinstance(bad, ResponseError) and "not an integer" in str(bad)
        assert good == [b"abc"] and after == b"1"
    finally:
        own.stop()


def test_a_server_that_goes_away_fails_the_calls_and_the_next_call_reconnects():
    own = OwnRedis().start()
    try:
        async def main():
            wire = PipelinedRedis(port=own.port, connect_timeout=0.5)
            try:
                assert await wire.execute(("PING",)) == [b"PONG"]
                own.stop()
                with pytest.raises(RedisConnectionError):
                    await wire.execute(("PING",))
                with pytest.raises(RedisConnectionError):  # refused while it is down
                    await wire.execute(("PING",))
                own.start()  # same port
                return await wire.execute(("PING",))
            finally:
                await wire.close()

        assert run(main()) == [b"PONG"]
    finally:
        own.stop()


def test_a_server_that_never_answers_times_out_every_waiting_call():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        async def main():
            wire = PipelinedRedis(port=listener.getsockname()[1], timeout=0.3)
            loop = asyncio.get_running_loop()
            began = loop.time()
            outcome = await asyncio.gather(wire.execute(("PING",)), wire.execute(("GET", "x")),
                                           return_exceptions=True)
            return outcome, loop.time() - began

        outcome, took = run(main())
        assert all(isinstance(error, RedisTimeoutError) for error in outcome)
        assert took < 2
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()


def test_password_and_database_come_from_the_redis_py_client():
    own = OwnRedis("--requirepass", "s3cret").start()
    try:
        async def main(url: str):
            client = aioredis.Redis.from_url(url)
            wire = PipelinedRedis.from_client(client)
            try:
                await wire.execute(("SET", "where", "db4"))
                return await client.get("where")
            finally:
                await wire.close()
                await client.aclose()

        assert run(main(f"redis://:s3cret@127.0.0.1:{own.port}/4")) == b"db4"
        assert redis.Redis(port=own.port, password="s3cret", db=0).get("where") is None

        async def refused():
            wire = PipelinedRedis.from_client(aioredis.Redis.from_url(f"redis://:wrong@127.0.0.1:{own.port}/0"))
            with pytest.raises(RedisConnectionError, match="set-up"):
                await wire.execute(("PING",))

        run(refused())
    finally:
        own.stop()


def test_a_unix_socket_url_is_followed(tmp_path):
    path = tmp_path / "redis.sock"
    own = OwnRedis("--unixsocket", str(path), port=free_port()).start()
    try:
        async def main():
            client = aioredis.Redis.from_url(f"unix://{path}?db=2")
            wire = PipelinedRedis.from_client(client)
            try:
                await wire.execute(("SET", "via", "unix"))
                return await client.get("via")
            finally:
                await wire.close()
                await client.aclose()

        assert run(main()) == b"unix"
    finally:
        own.stop()


def test_a_call_queued_but_not_yet_written_is_not_timed_out():
    """The watchdog may fire in the loop turn that queued a call, before that call's write: it must wait."""
    own = OwnRedis().start()
    try:
        async def main():
            wire = PipelinedRedis(port=own.port, timeout=0.2)
            try:
                await wire.execute(("PING",))
                pending = asyncio.ensure_future(wire.execute(("PING",)))
                await asyncio.sleep(0)  # queued, its write scheduled for the next turn
                wire._check_timeout()  # what the timer of an earlier write would do now
                return await pending
            finally:
                await wire.close()

        assert run(main()) == [b"PONG"]
    finally:
        own.stop()


def test_a_shared_read_is_one_command_per_write_and_never_older_than_its_caller():
    own = OwnRedis().start()
    try:
        async def main():
            wire = PipelinedRedis(port=own.port)
            other = redis.Redis(port=own.port)
            try:
                await wire.execute(("SET", "version", "1"), ("CONFIG", "RESETSTAT"))
                # Twenty callers in one loop turn: one GET leaves for all of them.
                first = await asyncio.gather(*(wire.send_shared(("GET", "version")) for _ in range(20)))
                gets = other.info("commandstats")["cmdstat_get"]["calls"]
                other.set("version", "2")  # a change committed after that write…
                later = await wire.send_shared(("GET", "version"))  # …is seen by the next caller
                return first, gets, later
            finally:
                other.close()
                await wire.close()

        first, gets, later = run(main())
        assert [replies[0] for replies in first] == [b"1"] * 20
        assert gets == 1
        assert later[0] == b"2"
    finally:
        own.stop()


def test_a_cancelled_caller_of_a_shared_read_leaves_the_others_their_reply():
    own = OwnRedis().start()
    try:
        async def main():
            wire = PipelinedRedis(port=own.port)
            try:
                await wire.execute(("SET", "version", "7"))
                first, second = wire.send_shared(("GET", "version")), wire.send_shared(("GET", "version"))
                waiting = asyncio.ensure_future(asyncio.wait_for(first, timeout=5))
                await asyncio.sleep(0)
                waiting.cancel()  # e.g. a request whose client left
                return await second
            finally:
                await wire.close()

        assert run(main())[0] == b"7"
    finally:
        own.stop()


def test_written_resolves_once_the_commands_left_not_when_they_are_answered():
    """What the in-flight marker relies on: the upstream request may leave once the marker is in the kernel's
    socket buffer (a silent server here: no reply ever comes), and a connection that fails first says so."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    refused = free_port()
    try:
        async def main():
            wire = PipelinedRedis(port=listener.getsockname()[1], timeout=5)
            sent = wire.send(("HSET", "markers", "req-1", "payload"))
            first, second = wire.written(), wire.written()
            second.cancel()  # a caller that left takes nobody else's future with it
            left = await asyncio.wait_for(first, 2)
            idle = await asyncio.wait_for(wire.written(), 0.1)  # nothing queued: already written
            dead = PipelinedRedis(port=refused, connect_timeout=0.5)
            failed = dead.send(("PING",))
            lost = await asyncio.wait_for(dead.written(), 2)
            await asyncio.gather(failed, return_exceptions=True)
            pending = not sent.done()
            await wire.close()
            await asyncio.gather(sent, return_exceptions=True)
            return left, idle, lost, pending

        left, idle, lost, pending = run(main())
        assert (left, idle, lost, pending) == (True, True, False, True)
        listener.settimeout(2)
        conn, _ = listener.accept()  # the connection waited in the backlog, its bytes with it
        with conn:
            conn.settimeout(2)
            assert b"req-1" in conn.recv(4096)  # the server has the bytes though it never answered
    finally:
        listener.close()


def test_an_eager_shared_read_leaves_at_once_when_the_connection_is_idle():
    """A lone request's version GET is written before the request goes on with its own work (it overlaps the
    round trip); without `eager`, it waits for the end of the loop turn."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        async def main():
            wire = PipelinedRedis(port=listener.getsockname()[1], timeout=5)
            ping = wire.send(("PING",))
            conn = await asyncio.get_running_loop().run_in_executor(None, listener.accept)
            conn = conn[0]
            conn.settimeout(2)
            assert conn.recv(4096).startswith(b"*1\r\n$4\r\nPING")
            conn.sendall(b"+PONG\r\n")
            await ping
            conn.settimeout(0.3)
            seen = {}
            for eager in (False, True):
                check = wire.send_shared(("GET", f"version-{eager}"), eager=eager)
                try:  # read with the loop blocked: only what was already written can arrive
                    seen[eager] = conn.recv(4096)
                except TimeoutError:
                    seen[eager] = b""
                    await asyncio.sleep(0.05)  # the loop turn ends: the lazy write leaves now
                    conn.settimeout(2)
                    assert b"version-False" in conn.recv(4096)
                    conn.settimeout(0.3)
                conn.sendall(b"$1\r\n1\r\n")  # answered in protocol order, nothing left over for the next
                assert (await check)[0] == b"1"
            conn.close()
            await wire.close()
            return seen

        seen = run(main())
        assert seen[False] == b"" and seen[True] == b"*2\r\n$3\r\nGET\r\n$12\r\nversion-True\r\n"
    finally:
        listener.close()
