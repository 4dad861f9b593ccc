"""`manage.py serve` as a real process: every route on both ports."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest
import websockets

from tests.conftest import free_port


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post_json(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def server(server_factory):
    return server_factory()


def test_health_on_both_ports(server):
    for base in (server.url, server.graphql_url):
        status, headers, body = get(f"{base}/health")
        assert status == 200
        assert headers["content-type"] == "application/json"
        report = json.loads(body)
        assert report["status"] == "healthy" and report["version"]
        assert report["checks"]["database"]["status"] == "up"
        assert report["checks"]["redis"]["status"] == "up"


def test_health_reports_a_dead_redis(server_factory):
    server = server_factory(env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    status, _, body = get(f"{server.url}/health")
    report = json.loads(body)
    assert status == 503 and report["status"] == "unhealthy"
    assert report["checks"]["redis"]["status"] == "down" and report["checks"]["database"]["status"] == "up"


def test_every_route_answers_on_both_ports(server):
    for base in (server.url, server.graphql_url):
        status, _, body = get(f"{base}/v1/models")
        assert status == 401  # the gateway answers on both ports, and wants a key in these settings
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert get(f"{base}/admin/login/")[0] == 200
        assert get(f"{base}/api/schema/")[0] == 200
        assert get(f"{base}/dashboard/")[0] == 200  # the login page it redirects to
        # GraphQL answers on both ports too, and wants a key in these settings (tests/graphql runs it with one).
        with pytest.raises(urllib.error.HTTPError) as refused:
            post_json(f"{base}/graphql", {"query": "{ version }"})
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["errors"][0]["extensions"]["code"] == "MISSING_API_KEY"


def test_graphiql_is_the_root_of_the_graphql_port(server):
    status, _, body = get(f"{server.graphql_url}/", headers={"Accept": "text/html"})
    assert status == 200 and b"/static/vendor/graphiql/" in body
    status, _, body = get(f"{server.url}/", headers={"Accept": "text/html"})
    assert status == 200 and b"cbplatform" in body and b"/static/vendor/graphiql/" not in body


def test_websocket_on_both_ports(server):
    async def talk(port):
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as socket:
            # Keys are required here: no connection_ack until credentials come (tests/realtime covers those).
            await socket.send(json.dumps({"type": "ping"}))
            assert json.loads(await socket.recv()) == {"type": "pong"}
            await socket.send("not json")
            assert json.loads(await socket.recv())["type"] == "error"

    for port in (server.openai_port, server.graphql_port):
        asyncio.run(talk(port))


def test_two_workers_share_the_sockets(server_factory):
    server = server_factory(workers=2)
    statuses = {get(f"{server.url}/health")[0] for _ in range(20)}
    assert statuses == {200}
