"""The one WebSocket consumer: `/graphql`, `/ws` and `/stream`.

The subprotocol the client offered picks the session: `graphql-transport-ws` or the legacy `graphql-ws`
(GraphQL subscriptions, `graphql_ws.py`); on `/ws` and `/stream` a client that offered neither speaks the
completion protocol (`completion_socket.py`). `/graphql` without a GraphQL subprotocol is refused (4406, as
graphql-transport-ws specifies)."""

from __future__ import annotations

import json

from channels.generic.websocket import AsyncWebsocketConsumer

from .completion_socket import CompletionSocket
from .graphql_ws import LEGACY_WS, TRANSPORT_WS, GraphQLSocket

MAX_MESSAGE_BYTES = 1 << 20


class SocketConsumer(AsyncWebsocketConsumer):
    # No channel of its own: subscriptions read their groups through private channels (layer_feed), so the
    # consumer does not hold a blocking Redis read per socket for messages nobody sends it.
    channel_layer_alias = "-none-"
    session = None

    async def connect(self):
        offered = self.scope.get("subprotocols") or []
        protocol = next((p for p in (TRANSPORT_WS, LEGACY_WS) if p in offered), None)
        graphql_only = self.scope["path"].rstrip("/") == "/graphql"
        if protocol is not None:
            await self.accept(subprotocol=protocol)
            self.session = GraphQLSocket(self.scope, protocol, self.send_json, self.close_with)
        elif graphql_only:
            await self.accept()
            await self.close(code=4406)
            return
        else:
            await self.accept()
            self.session = CompletionSocket(self.scope, self.send_json, self.close_with)
        await self.session.opened()

    async def disconnect(self, code):
        if self.session is not None:
            await self.session.closed()

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None:
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw) > MAX_MESSAGE_BYTES:
            await self.close_with(4400 if isinstance(self.session, GraphQLSocket) else 1009, "Message too big")
            return
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            if isinstance(self.session, GraphQLSocket) and not self.session.legacy:
                await self.close_with(4400, "Invalid message received")
                return
            await self.send_json({"type": "error", "id": None, "code": "invalid_json",
                                  "message": "Each message must be a JSON object."})
            return
        await self.session.receive(message)

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message, default=str))

    async def close_with(self, code: int, reason: str = "") -> None:
        await self.close(code=code, reason=reason)
        if self.session is not None:
            await self.session.closed()
