"""The completion protocol on /ws and /stream with the `websockets` client against the real server and the fake
OpenAI upstream: multiplexed streams, cancel, the error shape, authentication."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from decimal import Decimal

import pytest
import websockets

from .conftest import run, ws_url

pytestmark = pytest.mark.django_db


def completion(stream_id, text, **extra):
    return json.dumps({"type": "completion", "id": stream_id, "model": "gpt-4o",
                       "messages": [{"role": "user", "content": text}], **extra})


async def until(socket, predicate, timeout=15.0):
    got = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), max(0.1, deadline - time.monotonic())))
        got.append(message)
        if predicate(message, got):
            return got


def auth(world):
    return {"Authorization": f"Bearer {world['secret']}"}


@pytest.mark.parametrize("path", ["/ws", "/stream"])
def test_two_streams_multiplexed_on_one_socket(world, path):
    async def scenario():
        async with websockets.connect(ws_url(world["server"], path), additional_headers=auth(world)) as socket:
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            await socket.send(completion("a", "first stream please"))
            await socket.send(completion("b", "second stream please"))
            return await until(socket, lambda m, got: sum(x["type"] == "completed" for x in got) == 2)

    messages = run(scenario())
    for stream_id, words in (("a", "first stream"), ("b", "second stream")):
        mine = [m for m in messages if m.get("id") == stream_id]
        assert mine[0] == {"type": "thinking_status", "id": stream_id, "status": "thinking"}
        text = "".join(m["content"] for m in mine if m["type"] == "content_chunk")
        assert words in text
        done = mine[-1]
        assert done["type"] == "completed" and done["usage"]["completion_tokens"] > 0
        assert Decimal(done["cost"]) > 0 and done["model"] == "gpt-4o" and done["request_id"]


def test_cancel_stops_the_stream_and_its_upstream_call(world):
    fake = world["fake"]

    async def scenario():
        async with websockets.connect(ws_url(world["server"], "/ws"), additional_headers=auth(world)) as socket:
            await socket.recv()
            await socket.send(completion("long", "a long answer " * 20 + " !slow 0.3"))
            await until(socket, lambda m, got: m["type"] == "content_chunk")
            assert fake.active_streams == 1
            await socket.send(json.dumps({"type": "cancel", "id": "long"}))
            got = await until(socket, lambda m, got: m["type"] == "cancelled")
            deadline = time.monotonic() + 5
            while fake.active_streams and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            extra = []
            with contextlib.suppress(TimeoutError):
                extra.append(await asyncio.wait_for(socket.recv(), 0.5))
            return got, fake.active_streams, extra

    got, active, extra = run(scenario())
    assert got[-1] == {"type": "cancelled", "id": "long"}
    assert not any(m["type"] == "completed" for m in got)
    assert active == 0 and extra == []


def test_errors_name_the_stream_and_carry_the_one_error_shape(world):
    async def scenario():
        async with websockets.connect(ws_url(world["server"], "/ws"), additional_headers=auth(world)) as socket:
            await socket.recv()
            await socket.send(json.dumps({"type": "completion", "id": "x", "model": "no-such-model-anywhere",
                                          "messages": [{"role": "user", "content": "hi"}]}))
            missing = await until(socket, lambda m, got: m["type"] == "error")
            await socket.send(json.dumps({"type": "completion", "id": "y", "model": "gpt-4o"}))
            invalid = await until(socket, lambda m, got: m["type"] == "error")
            await socket.send(completion("z", "fail please !status 400"))
            upstream = await until(socket, lambda m, got: m["type"] == "error")
            await socket.send("not json")
            garbage = json.loads(await socket.recv())
            await socket.send(json.dumps({"type": "dance"}))
            unknown = json.loads(await socket.recv())
            return missing[-1], invalid[-1], upstream[-1], garbage, unknown

    missing, invalid, upstream, garbage, unknown = run(scenario())
    assert (missing["id"], missing["status"], missing["code"]) == ("x", 404, "model_not_found")
    assert (invalid["id"], invalid["status"], invalid["param"]) == ("y", 400, "messages")
    assert upstream["id"] == "z" and upstream["status"] == 400 and upstream["message"]
    assert garbage["type"] == "error" and garbage["code"] == "invalid_json"
    assert unknown["type"] == "error" and unknown["code"] == "unsupported_message"
    for error in (missing, invalid, upstream):
        assert set(error) == {"type", "id", "code", "message", "status", "param"}


def test_authentication_by_header_by_connection_init_and_refusals(world):
    url = ws_url(world["server"], "/ws")

    async def scenario():
        async with websockets.connect(url) as socket:  # no credentials: may still send connection_init
            await socket.send(completion("early", "hi"))
            early = json.loads(await socket.recv())
            await socket.send(json.dumps({"type": "connection_init", "payload": {"apiKey": world["secret"]}}))
            ack = json.loads(await socket.recv())
            await socket.send(completion("later", "now with a key"))
            later = await until(socket, lambda m, got: m["type"] in ("completed", "error"))
        async with websockets.connect(url, additional_headers={"Authorization": "Bearer cb-wrong"}) as socket:
            refused = json.loads(await socket.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
        return early, ack, later[-1], refused, closed.value.rcvd.code

    early, ack, later, refused, code = run(scenario())
    assert (early["type"], early["id"], early["code"]) == ("error", "early", "missing_api_key")
    assert ack == {"type": "connection_ack"}
    assert later["type"] == "completed"
    assert (refused["type"], refused["code"], refused["status"]) == ("error", "invalid_api_key", 401)
    assert code == 4401


def test_graphql_path_without_a_graphql_subprotocol_is_refused(world):
    async def scenario():
        async with websockets.connect(ws_url(world["server"], "/graphql")) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            return closed.value.rcvd.code

    assert run(scenario()) == 4406


def session_cookie(user) -> str:
    """A signed-in admin session for `user`, as the login view stores it."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def test_a_session_counts_only_from_this_servers_own_pages(world):
    from apps.tenants.models import Membership
    from tests import factories

    from .conftest import committed

    user = committed(factories.user, f"rt-member-{world['tenant'].slug}", tenant_obj=world["tenant"],
                     role=Membership.Role.MEMBER)
    cookie = committed(session_cookie, user)
    url = ws_url(world["server"], "/ws")
    own = world["server"].graphql_url

    async def scenario():
        async with websockets.connect(url, additional_headers={"Cookie": cookie}, origin=own) as socket:
            ack = json.loads(await socket.recv())
            await socket.send(completion("mine", "a member's completion"))
            done = await until(socket, lambda m, got: m["type"] in ("completed", "error"))
        async with websockets.connect(url, additional_headers={"Cookie": cookie},
                                      origin="http://evil.example") as socket:
            await socket.send(completion("theirs", "another site's page"))
            refused = json.loads(await socket.recv())
        return ack, done[-1], refused

    try:
        ack, done, refused = run(scenario())
    finally:
        committed(user.delete)
    assert ack == {"type": "connection_ack"} and done["type"] == "completed"
    assert (refused["type"], refused["id"], refused["code"]) == ("error", "theirs", "missing_api_key")
