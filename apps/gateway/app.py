"""The /v1 gateway: a lean ASGI app. No Django request handling, no ORM query per request.

It only dispatches: a path to its handler (`handlers/`), the concurrency cap, and one rendering of every
error as OpenAI's error body (Anthropic's on /v1/messages). The process's state lives in `GatewayRuntime`;
the chat pipeline in `pipeline`.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

from apps.core.errors import ApiError, InternalError, MethodNotAllowed, NotFound, ServiceUnavailable

from . import metrics, pipeline
from .anthropic_ingress.responses import error_body as anthropic_error_body
from .context import RequestContext
from .handlers import Call
from .handlers.chat import chat_completions
from .handlers.completions import completions
from .handlers.embeddings import embeddings
from .handlers.messages import count_tokens, messages
from .handlers.models import get_model, list_models
from .handlers.responses import PREFIX as RESPONSES_PREFIX
from .handlers.responses import create_response, delete_response, get_response
from .http import ClientGone, Responder, header
from .redaction import install_log_filter
from .runtime import GatewayRuntime

logger = logging.getLogger("apps.gateway")

ROUTES = {("POST", "/v1/chat/completions"): chat_completions, ("POST", "/v1/embeddings"): embeddings,
          ("POST", "/v1/completions"): completions, ("GET", "/v1/models"): list_models,
          ("POST", "/v1/responses"): create_response,
          ("POST", "/v1/messages"): messages, ("POST", "/v1/messages/count_tokens"): count_tokens}
# Paths under a prefix: the object's id follows it.
PREFIXED = {("GET", "/v1/models/"): get_model, ("GET", RESPONSES_PREFIX): get_response,
            ("DELETE", RESPONSES_PREFIX): delete_response}
# Endpoints whose requests are routed, metered and recorded in the ledger (the model listing is not).
ENDPOINTS = {"/v1/chat/completions": "chat.completions", "/v1/embeddings": "embeddings",
             "/v1/completions": "completions", "/v1/responses": "responses", "/v1/messages": "messages"}
# Paths whose errors take Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`).
ANTHROPIC_PATHS = ("/v1/messages", "/v1/messages/count_tokens")
PREFLIGHT_HEADERS = [(b"access-control-allow-origin", b"*"),
                     (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                     (b"access-control-allow-headers", b"authorization, content-type, api-key, x-api-key, "
                                                       b"openai-organization, openai-project, x-stainless-*, "
                                                       b"anthropic-version, anthropic-beta"),
                     (b"access-control-max-age", b"86400")]


# Handlers that read and parse their body while the configuration version check is in flight, and act only on
# the snapshot it confirms (`handlers.identified`): the hot path's one Redis round trip before the upstream call
# overlaps the request's own work.
CHECKS_WHILE_READING = frozenset({chat_completions})


def handler_for(method: str, path: str):
    handler = ROUTES.get((method, path))
    if handler is not None:
        return handler
    for (allowed, prefix), prefixed in PREFIXED.items():
        if method == allowed and path.startswith(prefix):
            return prefixed
    if any(p == path for _, p in ROUTES) or any(path.startswith(prefix) for _, prefix in PREFIXED):
        raise MethodNotAllowed(f"Method {method} is not allowed on {path}.")
    raise NotFound(f"Unknown endpoint {method} {path}.", code="unknown_url")


class GatewayApp:
    def __init__(self):
        self.runtime = GatewayRuntime()
        self.inflight = 0

    async def startup(self) -> None:
        await self.runtime.startup()
        # Log lines never carry a credential we sent upstream, whatever an upstream echoed into an exception.
        install_log_filter(self.runtime.upstream.sent_secrets)
        metrics.set_circuit_source(self.runtime.circuit_rows)

    async def shutdown(self) -> None:
        await self.runtime.shutdown()

    async def __call__(self, scope, receive, send):
        rt = self.runtime
        # CORS headers only for a browser's request (one with Origin): server-side clients never read them, and
        # the exposed-header list alone is ~300 bytes on every answer.
        respond = Responder(send, cors=settings.CORS_ENABLED and header(scope, b"origin") is not None)
        request_id = "req_" + os.urandom(16).hex()
        respond.add_header("x-cb-request-id", request_id)
        ctx: RequestContext | None = None
        error_code = None
        path = scope.get("path", "").rstrip("/")
        render = None
        if path in ANTHROPIC_PATHS:
            render = anthropic_error_body
            respond.add_header("request-id", request_id)  # where Anthropic's SDKs look for it
        try:
            method = scope["method"]
            if method == "OPTIONS":
                return await self._preflight(send)
            handler = handler_for(method, path)
            check = None
            if handler in CHECKS_WHILE_READING and rt.snapshot is not None:
                snapshot, check = rt.snapshot, rt.version_check()  # the handler confirms it (`Call.check`)
            else:
                snapshot = await rt.ready()
            if path in ENDPOINTS:
                ctx = RequestContext(rt.health, request_id, ENDPOINTS[path])
                respond.finalizer = lambda status, ctx=ctx: pipeline.finalize(rt, ctx, status)
            if self.inflight >= settings.MAX_CONCURRENT_REQUESTS:
                raise ServiceUnavailable(f"This gateway process is at its concurrent request limit "
                                         f"(MAX_CONCURRENT_REQUESTS={settings.MAX_CONCURRENT_REQUESTS}); retry "
                                         f"shortly.", code="overloaded", headers={"retry-after": "1"})
            self.inflight += 1
            metrics.inflight(1)
            try:
                await handler(rt, Call(scope, receive, respond, snapshot, path, ctx, check))
            finally:
                self.inflight -= 1
                metrics.inflight(-1)
        except ClientGone:
            error_code = "client_disconnected"
            return None
        except ApiError as error:
            error_code = error.code or error.type
            if ctx is not None:
                ctx.error_code = error_code
                for name, value in {**ctx.response_headers, **ctx.headers()}.items():
                    respond.add_header(name, value)
            if not respond.started:
                await respond.error(error, render)
        except Exception:
            error_code = "internal_error"
            if ctx is not None:
                ctx.error_code = error_code
            logger.exception("gateway error on %s %s (request %s)", scope.get("method"), scope.get("path"),
                             request_id)
            if not respond.started:
                await respond.error(InternalError("The server had an error while processing your request."), render)
        finally:
            if ctx is not None:
                if not ctx.finalized:  # the client left before the last bytes: record what happened
                    ctx.error_code = ctx.error_code or error_code
                    await pipeline.finalize(rt, ctx, respond.status if respond.status >= 400 else 499)
                pipeline.account(ctx, respond.status or 499, error_code or ctx.error_code)

    @staticmethod
    async def _preflight(send) -> None:
        headers = [(b"content-length", b"0")]
        if settings.CORS_ENABLED:
            headers += PREFLIGHT_HEADERS
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


gateway_app = GatewayApp()
