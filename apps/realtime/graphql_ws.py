"""GraphQL over WebSocket: `graphql-transport-ws` (the graphql-ws library's protocol) and the legacy
`graphql-ws` (Apollo's subscriptions-transport-ws), chosen by the subprotocol the client offered.

Both: `connection_init` (its payload may carry the credentials) → `connection_ack`; then operations by id —
subscriptions stream results until they end or the client stops them, queries and mutations answer once.
Every operation runs on graphene's schema with the same context as over HTTP (`GraphQLContext`: tenant, user,
api_key) and the same validation limits; errors carry `extensions.code` (`format_graphql_error`).

graphql-transport-ws: `ping`/`pong`, `subscribe` → `next`… `complete`, `error` for an operation refused
before it ran; protocol violations close the socket with the spec's codes (4400 bad message, 4401 subscribe
before ack, 4403 refused credentials, 4408 no init in time, 4409 duplicate id, 4429 second init).
Legacy: `start` → `data`… `complete`, `stop`, `connection_terminate`, `ka` keep-alives, `connection_error`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from django.conf import settings
from graphene_django.settings import graphene_settings
from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute_sync,
    get_operation_ast,
    parse,
    subscribe,
    validate,
)

from apps.core.errors import ApiError
from apps.core.graphql_errors import format_graphql_error, graphql_error
from apps.core.graphql_limits import limit_rules
from apps.tenants.graphql_view import GraphQLContext

from .socket_auth import principal_for

log = logging.getLogger(__name__)

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
INIT_TIMEOUT = 10.0
KEEPALIVE_SECONDS = 15.0
MAX_OPERATIONS = 100


def _schema():
    """The schema settings name (GRAPHENE["SCHEMA"], assembled by the composition root), as the HTTP view."""
    return graphene_settings.SCHEMA


def result_payload(result: ExecutionResult) -> dict:
    payload: dict = {"data": result.data}
    if result.errors:
        payload["errors"] = [format_graphql_error(error) for error in result.errors]
    return payload


async def run_operation(payload, context) -> ExecutionResult | AsyncIterator[ExecutionResult]:
    """Parse, validate (with the HTTP view's limits) and run one operation: an ExecutionResult for errors,
    queries and mutations, an async iterator of results for a subscription."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return ExecutionResult(None, [GraphQLError("The payload must hold a 'query' string.",
                                                   extensions={"code": "BAD_USER_INPUT"})])
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return ExecutionResult(None, [GraphQLError("'variables' must be an object.",
                                                   extensions={"code": "BAD_USER_INPUT"})])
    operation_name = payload.get("operationName")
    schema = _schema().graphql_schema
    try:
        document = parse(payload["query"])
    except GraphQLError as error:
        return ExecutionResult(None, [error])
    errors = validate(schema, document, rules=limit_rules(max_depth=settings.GRAPHQL_MAX_DEPTH,
                                                          max_cost=settings.GRAPHQL_MAX_COST))
    if errors:
        return ExecutionResult(None, errors)
    operation = get_operation_ast(document, operation_name)
    kwargs = {"context_value": context, "variable_values": variables, "operation_name": operation_name}
    if operation is not None and operation.operation == OperationType.SUBSCRIPTION:
        return await subscribe(schema, document, **kwargs)
    # Queries and mutations resolve through the ORM, synchronously, as over HTTP: in a worker thread.
    return await database_sync_to_async(execute_sync)(schema, document, **kwargs)


class GraphQLSocket:
    """One socket's GraphQL session; `send` sends a JSON message, `close` closes with a code."""

    def __init__(self, scope, protocol: str, send, close):
        self.scope, self.protocol, self.send, self.close = scope, protocol, send, close
        self.legacy = protocol == LEGACY_WS
        self.context: GraphQLContext | None = None
        self.init_seen = False
        self.operations: dict[str, asyncio.Task] = {}
        self.watchdog: asyncio.Task | None = None

    async def opened(self) -> None:
        self.watchdog = asyncio.ensure_future(self._init_deadline())

    async def _init_deadline(self) -> None:
        await asyncio.sleep(INIT_TIMEOUT)
        if self.context is None:
            await self.close(4408, "Connection initialisation timeout")

    async def closed(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        for task in list(self.operations.values()):
            task.cancel()
        self.operations.clear()

    async def receive(self, message) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "connection_init":
            return await self._init(message.get("payload"))
        if not self.legacy:
            if kind == "ping":
                return await self.send({"type": "pong", **({"payload": message["payload"]}
                                                            if "payload" in message else {})})
            if kind == "pong":
                return None
        if kind == "connection_terminate" and self.legacy:
            return await self.close(1000, "Terminated")
        if kind in ("subscribe", "start"):
            return await self._start(message)
        if kind in ("complete", "stop"):
            return await self._stop(message.get("id"))
        if self.legacy:
            return await self.send({"type": "error", "id": message.get("id") if isinstance(message, dict) else None,
                                    "payload": {"message": f"Unsupported message type {kind!r}."}})
        return await self.close(4400, f"Invalid message type {kind!r}"[:120])

    async def _init(self, payload) -> None:
        if self.init_seen:
            return await self.close(4429, "Too many initialisation requests")
        self.init_seen = True
        try:
            principal = await principal_for(self.scope, payload)
        except ApiError as error:
            if self.legacy:
                await self.send({"type": "connection_error", "payload": format_graphql_error(graphql_error(error))})
                return await self.close(4403, "Forbidden")
            return await self.close(4403, f"Forbidden: {error.message}"[:120])
        self.context = GraphQLContext(principal, None)
        self.context.scope = self.scope
        if self.watchdog is not None:
            self.watchdog.cancel()
        await self.send({"type": "connection_ack"})
        if self.legacy:
            await self.send({"type": "ka"})
            self.watchdog = asyncio.ensure_future(self._keepalive())
        return None

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self.send({"type": "ka"})

    async def _start(self, message) -> None:
        op_id = message.get("id")
        if not isinstance(op_id, str) or not op_id:
            if self.legacy:
                return await self.send({"type": "error", "payload": {"message": "An operation needs an 'id'."}})
            return await self.close(4400, "An operation needs an 'id'")
        if self.context is None:
            if self.legacy:
                return await self.send({"type": "error", "id": op_id,
                                        "payload": {"message": "Send connection_init first."}})
            return await self.close(4401, "Unauthorized")
        if op_id in self.operations:
            if self.legacy:
                await self._stop(op_id, notify=False)
            else:
                return await self.close(4409, f"Subscriber for {op_id} already exists"[:120])
        if len(self.operations) >= MAX_OPERATIONS:
            return await self._error(op_id, [{"message": f"At most {MAX_OPERATIONS} operations per socket.",
                                              "extensions": {"code": "RATE_LIMITED"}}])
        self.operations[op_id] = asyncio.ensure_future(self._run(op_id, message.get("payload")))
        return None

    async def _error(self, op_id: str, errors: list[dict]) -> None:
        await self.send({"type": "error", "id": op_id, "payload": errors[0] if self.legacy else errors})

    async def _run(self, op_id: str, payload) -> None:
        data_type = "data" if self.legacy else "next"
        stream = None
        try:
            outcome = await run_operation(payload, self.context)
            if isinstance(outcome, ExecutionResult):
                if outcome.data is None and outcome.errors:
                    await self._error(op_id, result_payload(outcome)["errors"])
                    return
                await self.send({"type": data_type, "id": op_id, "payload": result_payload(outcome)})
            else:
                stream = outcome
                async for result in stream:
                    await self.send({"type": data_type, "id": op_id, "payload": result_payload(result)})
            await self.send({"type": "complete", "id": op_id})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("GraphQL operation %s failed", op_id)
            await self._error(op_id, [format_graphql_error(graphql_error(exc))])
        finally:
            if stream is not None:
                await stream.aclose()
            if self.operations.get(op_id) is asyncio.current_task():
                del self.operations[op_id]

    async def _stop(self, op_id, *, notify: bool = True) -> None:
        task = self.operations.pop(op_id, None) if isinstance(op_id, str) else None
        if task is not None:
            task.cancel()
            if self.legacy and notify:
                await self.send({"type": "complete", "id": op_id})
