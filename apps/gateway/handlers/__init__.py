"""One module per /v1 endpoint. Each handler gets the process runtime and one `Call`, and answers through the
call's `Responder`; errors propagate to the app, which renders them."""

from __future__ import annotations

from dataclasses import dataclass

from ..context import RequestContext
from ..http import Responder
from ..snapshot import Snapshot


@dataclass(slots=True)
class Call:
    """One request as the handlers see it."""

    scope: dict
    receive: object
    respond: Responder
    snapshot: Snapshot
    path: str
    ctx: RequestContext | None


def served(respond: Responder, ctx: RequestContext) -> None:
    """The headers that say who served the request, how it was routed and what is left of its rate limits."""
    for name, value in ctx.response_headers.items():
        respond.add_header(name, value)
    respond.add_header("x-cb-provider", ctx.chosen.provider.slug)
    respond.add_header("x-cb-model", ctx.chosen.model.model_id)
    for name, value in ctx.headers().items():
        respond.add_header(name, value)
