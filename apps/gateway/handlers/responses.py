"""OpenAI's Responses API: POST /v1/responses (JSON and SSE), GET and DELETE /v1/responses/{id}.

A Responses request is translated into a chat request (`responses_request`) and runs the chat pipeline exactly as
/v1/chat/completions does — routing, failover, rate limits, cost rules, budgets, the usage ledger (endpoint
`responses`) — against any provider; the chat answer comes back as a `response` (`responses_output`). Stored
responses (`store`, default true) live in `responses_store`, per tenant.
"""

from __future__ import annotations

import re

import orjson
from django.conf import settings

from apps.core.errors import NotFound, UpstreamError

from .. import pipeline, request_validation, responses_request
from ..admission.authentication import authenticate
from ..context import RequestContext
from ..http import Responder, header, read_json
from ..responses_output import ResponseStream, encode, new_id, response_from_completion
from ..runtime import GatewayRuntime
from ..sse import relay
from . import Call, served

PREFIX = "/v1/responses/"
RESPONSE_ID = re.compile(r"^resp_[0-9A-Za-z_-]{1,128}$")


async def _history(rt: GatewayRuntime, tenant_id: int | None, previous_id: str | None) -> list[dict]:
    """The items a `previous_response_id` continues: that response's input items, then its output."""
    if not previous_id:
        return []
    record = await rt.responses.load(tenant_id, previous_id) if RESPONSE_ID.match(previous_id) else None
    if record is None:
        raise NotFound(f"Previous response with id '{previous_id}' not found.", param="previous_response_id",
                       code="previous_response_not_found")
    return record["items"] + record["response"]["output"]


async def create_response(rt: GatewayRuntime, call: Call) -> None:
    scope, respond, snapshot, ctx = call.scope, call.respond, call.snapshot, call.ctx
    ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
    request = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES, responses_request.validate)
    history = await _history(rt, ctx.tenant_id, request.get("previous_response_id"))
    body = ctx.body = request_validation.validate_chat(responses_request.chat_request(request, history))
    items = history + responses_request.input_items(request)  # what a later response continuing this one reads
    pipeline.labels_from_metadata(ctx, body, workflow_id=header(scope, b"x-cb-workflow-id"),
                                  agent_id=header(scope, b"x-cb-agent-id"))
    body, ordered = await pipeline.prepare_chat(rt, ctx, snapshot, body)
    response_id, created_at = new_id("resp"), int(ctx.wall_started)
    store = request.get("store", True)
    if body.get("stream") is not True:
        result = await pipeline.chat(rt, ctx, body, ordered)
        response = response_from_completion(request, result, response_id, created_at)
        if store:
            await rt.responses.save(ctx.tenant_id, response, items)
        served(respond, ctx)
        return await respond.json(200, orjson.dumps(response))
    batches, first = await pipeline.open_chat_stream(rt, ctx, body, ordered)
    served(respond, ctx)
    events = ResponseStream(request, response_id, created_at)

    async def save(response: dict) -> None:
        if store:
            await rt.responses.save(ctx.tenant_id, response, items)

    await relay(ctx, respond, call.receive, first, batches,
                pump=lambda: pump_responses(ctx, respond, first, batches, events=events, save=save))
    return None


async def pump_responses(ctx: RequestContext, respond: Responder, first, batches, *, events: ResponseStream,
                         save) -> UpstreamError | None:
    """Relay chat chunks as Responses events, one send per upstream read; the finished response is stored before
    its last event leaves. Returns the error that ended the stream early."""
    failure = None
    await respond.sse(encode(events.start()))
    try:
        batch = first
        while batch is not None:
            out = []
            for chunk in batch:
                pipeline.note_chunk(ctx, chunk)  # usage, and the text to count should usage never arrive
                out += events.feed(chunk)
            if out:
                await respond.sse(encode(out))
            batch = await anext(batches, None)
    except UpstreamError as error:
        failure = error
        # As for chat streams: the ledger must say the stream failed (the finalizer records it with the last bytes).
        respond.status = error.status
        ctx.error_code = error.code or error.type
        last, _ = events.fail(error, ctx.final_usage()[0])
    else:
        last, response = events.complete(ctx.final_usage()[0])
        await save(response)
    await respond.sse(encode(last), last=True)
    return failure


def _response_id(call: Call) -> str:
    response_id = call.path[len(PREFIX):]
    if not RESPONSE_ID.match(response_id):  # a malformed id is missing like any other
        raise NotFound(f"Response with id '{response_id[:140]}' not found.", param="response_id")
    return response_id


async def get_response(rt: GatewayRuntime, call: Call) -> None:
    tenant_id, _ = authenticate(call.scope, call.snapshot)
    response_id = _response_id(call)
    record = await rt.responses.load(tenant_id, response_id)
    if record is None:
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    await call.respond.json(200, orjson.dumps(record["response"]))


async def delete_response(rt: GatewayRuntime, call: Call) -> None:
    tenant_id, _ = authenticate(call.scope, call.snapshot)
    response_id = _response_id(call)
    if not await rt.responses.delete(tenant_id, response_id):
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    await call.respond.json(200, orjson.dumps({"id": response_id, "object": "response.deleted", "deleted": True}))
