"""The /v1 gateway: a lean ASGI app (no Django request handling on this path).

The routes arrive with the gateway issue; until then every /v1 path answers an OpenAI-style 404.
"""

from __future__ import annotations

from .errors import GatewayError, NotFound


class GatewayApp:
    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def __call__(self, scope, receive, send):
        error: GatewayError = NotFound(f"Unknown endpoint {scope['method']} {scope['path']}.")
        body = error.body()
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


gateway_app = GatewayApp()
