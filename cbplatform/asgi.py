"""The one ASGI application every port serves.

HTTP is dispatched by path before Django sees it: `/v1/…` goes to the lean gateway app,
`/health` to a middleware-free probe and `/metrics` to the Prometheus exposition (see
docs/architecture.md for why); everything else is Django.
`/api/workflow-instances/<id>/events/stream` (server-sent events) is a small ASGI app too, so a long-lived
stream never holds a Django worker thread. WebSockets go through Channels; the lifespan starts the event relay.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cbplatform.settings.local")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from apps.core.health import health_app  # noqa: E402
from apps.gateway.app import gateway_app  # noqa: E402
from apps.gateway.metrics import metrics_app  # noqa: E402
from apps.realtime.relay_loop import relay_loop  # noqa: E402
from apps.realtime.routing import websocket_urlpatterns  # noqa: E402
from apps.realtime.sse import instance_events_app, is_instance_events_path  # noqa: E402

websocket_app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


async def application(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        path = scope["path"]
        if path.startswith("/v1/") or path == "/v1":
            return await gateway_app(scope, receive, send)
        if path == "/health":
            return await health_app(scope, receive, send)
        if path == "/metrics":
            return await metrics_app(scope, receive, send)
        if is_instance_events_path(path):
            return await instance_events_app(scope, receive, send)
        return await django_http(scope, receive, send)
    if kind == "websocket":
        return await websocket_app(scope, receive, send)
    if kind == "lifespan":
        return await _lifespan(receive, send)
    raise ValueError(f"unsupported ASGI scope type {kind!r}")


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await gateway_app.startup()
            relay_loop.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await relay_loop.stop()
            await gateway_app.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
