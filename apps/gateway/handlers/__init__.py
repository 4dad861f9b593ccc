"""One module per /v1 endpoint. Each handler gets the process runtime and one `Call`, and answers through the
call's `Responder`; errors propagate to the app, which renders them."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from apps.core.errors import ApiError

from ..admission.authentication import authenticate
from ..context import RequestContext
from ..http import Responder, read_json
from ..snapshot import Snapshot


@dataclass(slots=True)
class Call:
    """One request as the handlers see it."""

    scope: dict
    receive: object
    respond: Responder
    snapshot: Snapshot  # with `check` set, maybe stale until `identified` confirms it
    path: str
    ctx: RequestContext | None
    check: object = None  # the configuration version check in flight (`GatewayRuntime.version_check`)


def served(respond: Responder, ctx: RequestContext) -> None:
    """The headers that say who served the request, how it was routed and what is left of its rate limits."""
    for name, value in ctx.response_headers.items():
        respond.add_header(name, value)
    respond.add_header("x-cb-provider", ctx.chosen.provider.slug)
    respond.add_header("x-cb-model", ctx.chosen.model.model_id)
    for name, value in ctx.headers().items():
        respond.add_header(name, value)


async def identified(rt, call: Call, validate) -> tuple[Snapshot, dict]:
    """Authenticate and read the JSON body while `call.check` is in flight, then settle both on the snapshot it
    confirms (the context's tenant and key are set): the snapshot to act on and the body.

    Nothing before the confirmation has an effect outside the request, and what it decided is redone on a
    changed snapshot, so "the very next request sees a configuration write" holds as with `ready()`. Errors keep
    their order: 401 before 400, and a key the current snapshot refuses is judged on the confirmed one before
    any body is read."""
    scope, ctx = call.scope, call.ctx
    snapshot = call.snapshot
    try:
        ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
    except ApiError:  # perhaps a key the current snapshot does not know yet
        snapshot = await rt.confirmed(call.check)
        ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
        return snapshot, await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES, validate)
    try:
        body = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES, validate)
    except ApiError:
        await _settled(rt, call, snapshot)  # a key revoked meanwhile is a 401, not this 400
        raise
    return await _settled(rt, call, snapshot), body


async def _settled(rt, call: Call, snapshot: Snapshot) -> Snapshot:
    confirmed = await rt.confirmed(call.check)
    if confirmed is not snapshot:
        call.ctx.tenant_id, call.ctx.key = authenticate(call.scope, confirmed)
    return confirmed
