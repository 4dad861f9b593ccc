"""The /v1 gateway: a lean ASGI app. No Django request handling, no ORM query per request.

Routes: POST /v1/chat/completions (JSON and SSE), POST /v1/embeddings, POST /v1/completions,
GET /v1/models, GET /v1/models/{id}. Configuration comes from the in-memory `Snapshot`, reloaded
when the configuration version in Redis changes; upstream calls go through one pooled `Upstream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings

from apps.core import config_version
from apps.core import redis as cb_redis
from apps.providers.adapters import registry
from apps.providers.adapters.base import ChunkFactory, Target, UpstreamError

from . import schema
from .errors import GatewayError, NotFound
from .http import SSE_DONE, ClientGone, Responder, header, read_body, sse_event
from .resolve import Candidate, reachable_models, resolve
from .snapshot import VIRTUAL_MODELS, KeyInfo, Snapshot, build_snapshot
from .upstream import Upstream

logger = logging.getLogger("apps.gateway")

# Fields of our own (and OpenRouter's) that must not reach an upstream.
GATEWAY_FIELDS = ("circuit_breaker", "models", "route", "provider", "transforms")
MAX_ATTEMPTS = 4
CONFIG_POLL_SECONDS = 0.5


def _upstream_failure(error: UpstreamError) -> GatewayError:
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(int(error.retry_after + 0.999))
    return GatewayError(error.message, status=error.status, type=error.type, code=error.code, param=error.param,
                        headers=headers)


def _mask(secret: str) -> str:
    return f"{secret[:3]}…{secret[-4:]}" if len(secret) > 10 else "…"


class GatewayApp:
    def __init__(self):
        self.snapshot: Snapshot | None = None
        self.upstream: Upstream | None = None
        self._redis = None
        self._watcher: asyncio.Task | None = None
        self._ready_lock: asyncio.Lock | None = None
        self.inflight = 0
        self._models_cache: dict = {}

    # ---- lifecycle ---------------------------------------------------------------------------------
    async def startup(self) -> None:
        if self.snapshot is not None:
            return
        self.upstream = Upstream(pool_size=settings.CONNECTION_POOL_SIZE, timeout=settings.REQUEST_TIMEOUT_SECONDS)
        if cb_redis.configured():
            self._redis = cb_redis.async_client()
        await self.reload()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def shutdown(self) -> None:
        if self._watcher:
            self._watcher.cancel()
        if self.upstream:
            await self.upstream.close()
        if self._redis is not None:
            await self._redis.aclose()
        self.snapshot = None

    async def _ensure_ready(self) -> Snapshot:
        # Servers without lifespan support (daphne's runserver) start us on first use.
        if self.snapshot is None:
            if self._ready_lock is None:
                self._ready_lock = asyncio.Lock()
            async with self._ready_lock:
                await self.startup()
        return self.snapshot

    async def _version(self):
        local = config_version.local_version()
        if self._redis is None:
            return local
        try:
            return (await self._redis.get(config_version.REDIS_KEY), local)
        except Exception as exc:  # Redis blips keep the current snapshot
            logger.warning("config version check failed: %s", type(exc).__name__)
            return self.snapshot.version if self.snapshot else None

    async def reload(self) -> None:
        version = await self._version()
        self.snapshot = await sync_to_async(build_snapshot, thread_sensitive=False)(version)
        self._models_cache = {}

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL_SECONDS)
            try:
                if await self._version() != self.snapshot.version:
                    await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("configuration reload failed; serving the previous snapshot")

    # ---- dispatch ----------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        respond = Responder(send, cors=settings.CORS_ENABLED)
        request_id = "req_" + uuid.uuid4().hex
        respond.add_header("x-cb-request-id", request_id)
        try:
            method, path = scope["method"], scope["path"].rstrip("/")
            if method == "OPTIONS":
                return await self._preflight(send)
            snapshot = await self._ensure_ready()
            handler = self._route(method, path)
            if self.inflight >= settings.MAX_CONCURRENT_REQUESTS:
                raise GatewayError("The server is at its concurrent request limit; retry shortly.", status=503,
                                   type="server_error", code="overloaded", headers={"retry-after": "1"})
            self.inflight += 1
            try:
                await handler(scope, receive, respond, snapshot, path)
            finally:
                self.inflight -= 1
        except ClientGone:
            return None
        except GatewayError as error:
            if not respond.started:
                await respond.error(error)
        except Exception:
            logger.exception("gateway error on %s %s (request %s)", scope.get("method"), scope.get("path"),
                             request_id)
            if not respond.started:
                await respond.error(GatewayError("The server had an error while processing your request.",
                                                 status=500, type="server_error", code="internal_error"))

    def _route(self, method: str, path: str):
        routes = {("POST", "/v1/chat/completions"): self.chat_completions,
                  ("POST", "/v1/embeddings"): self.embeddings,
                  ("POST", "/v1/completions"): self.completions,
                  ("GET", "/v1/models"): self.list_models}
        handler = routes.get((method, path))
        if handler is not None:
            return handler
        if method == "GET" and path.startswith("/v1/models/"):
            return self.get_model
        if any(p == path for _, p in routes) or path.startswith("/v1/models/"):
            raise GatewayError(f"Method {method} is not allowed on {path}.", status=405, code="method_not_allowed")
        raise NotFound(f"Unknown endpoint {method} {path}.", code="unknown_url")

    async def _preflight(self, send) -> None:
        headers = [(b"content-length", b"0")]
        if settings.CORS_ENABLED:
            headers += [(b"access-control-allow-origin", b"*"),
                        (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                        (b"access-control-allow-headers", b"authorization, content-type, api-key, x-api-key, "
                                                          b"openai-organization, openai-project, x-stainless-*"),
                        (b"access-control-max-age", b"86400")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    # ---- auth --------------------------------------------------------------------------------------
    def _authenticate(self, scope, snapshot: Snapshot) -> int | None:
        """The tenant id the request acts for; None for anonymous requests when keys are not required."""
        secret = None
        auth = header(scope, b"authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                secret = token.strip()
        secret = secret or header(scope, b"api-key") or header(scope, b"x-api-key")
        if secret and not settings.API_KEY_REQUIRED and not secret.startswith("cb-"):
            # SDKs insist on some key; with keys optional a placeholder ("not-needed") means anonymous.
            secret = None
        if not secret:
            if settings.API_KEY_REQUIRED:
                raise GatewayError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                                   status=401, type="invalid_request_error", code="missing_api_key")
            return None
        key: KeyInfo | None = snapshot.keys.get(hashlib.sha256(secret.encode()).hexdigest())
        if key is None:
            raise GatewayError(f"Incorrect API key provided: {_mask(secret)}.", status=401,
                               type="invalid_request_error", code="invalid_api_key")
        if key.revoked:
            raise GatewayError("This API key has been revoked.", status=401, type="invalid_request_error",
                               code="api_key_revoked")
        if key.expires_at is not None and key.expires_at.timestamp() <= time.time():
            raise GatewayError("This API key has expired.", status=401, type="invalid_request_error",
                               code="api_key_expired")
        tenant = snapshot.tenants.get(key.tenant_id)
        if tenant is None or not tenant.active:
            raise GatewayError("This API key's tenant is disabled.", status=403, type="permission_error",
                               code="tenant_inactive")
        if "inference" not in key.scopes:
            raise GatewayError("This API key lacks the 'inference' scope.", status=403, type="permission_error",
                               code="insufficient_scope")
        return key.tenant_id

    async def _json_body(self, scope, receive, validator) -> dict:
        raw = await read_body(scope, receive, settings.MAX_REQUEST_BODY_BYTES)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayError("We could not parse the JSON body of your request. The request body must be "
                               "valid JSON.", code="invalid_json") from None
        return validator(body)

    @staticmethod
    def _target(candidate: Candidate) -> Target:
        provider = candidate.provider
        _, secret = provider.next_key()
        return Target(provider.slug, provider.type, provider.base_url, secret, candidate.model.upstream_name,
                      provider.options)

    @staticmethod
    def _routed(respond: Responder, candidate: Candidate) -> None:
        respond.add_header("x-cb-provider", candidate.provider.slug)
        respond.add_header("x-cb-model", candidate.model.model_id)

    @staticmethod
    def _upstream_body(body: dict, target: Target) -> dict:
        out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
        out["model"] = target.model
        return out

    # ---- chat ----------------------------------------------------------------------------------------
    async def chat_completions(self, scope, receive, respond: Responder, snapshot: Snapshot, path: str) -> None:
        tenant_id = self._authenticate(scope, snapshot)
        body = await self._json_body(scope, receive, schema.validate_chat)
        stream = body.get("stream") is True
        if stream and not settings.OPENAI_ENABLE_STREAMING:
            raise GatewayError("Streaming is disabled on this server.", param="stream", code="streaming_disabled")
        candidates = resolve(snapshot, tenant_id, body["model"], mode="chat")[:MAX_ATTEMPTS]
        if stream:
            return await self._chat_stream(scope, receive, respond, body, candidates)
        failure: UpstreamError | None = None
        for candidate in candidates:
            target = self._target(candidate)
            adapter = registry.get(candidate.provider.type)
            try:
                result = await self.upstream.chat(adapter, target, self._upstream_body(body, target))
            except UpstreamError as error:
                failure = failure or error  # the primary's failure is the one to report
                if error.retryable:
                    continue
                break
            self._routed(respond, candidate)
            return await respond.json(200, orjson.dumps(result))
        raise _upstream_failure(failure)

    async def _chat_stream(self, scope, receive, respond: Responder, body: dict, candidates: list[Candidate]):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        failure: UpstreamError | None = None
        # Fail over only before the first byte reaches the client: pull the first chunk, then commit.
        for candidate in candidates:
            target = self._target(candidate)
            adapter = registry.get(candidate.provider.type)
            chunks = self.upstream.chat_stream(adapter, target, self._upstream_body(body, target),
                                               ChunkFactory(target.model))
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                first = None
            except UpstreamError as error:
                await chunks.aclose()
                failure = failure or error  # the primary's failure is the one to report
                if error.retryable:
                    continue
                break
            self._routed(respond, candidate)
            await respond.start_sse()
            pump = asyncio.ensure_future(self._pump(respond, first, chunks, include_usage))
            gone = asyncio.ensure_future(self._wait_disconnect(receive))
            done, _ = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                gone.cancel()
                pump.result()
            else:  # the client left: stop reading upstream, which closes that connection
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):  # nobody is left to tell
                    await pump
                await chunks.aclose()
            return
        raise _upstream_failure(failure)

    @staticmethod
    async def _wait_disconnect(receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    @staticmethod
    async def _pump(respond: Responder, first, chunks, include_usage: bool) -> None:
        try:
            chunk = first
            while chunk is not None:
                if "usage" in chunk and not chunk.get("choices"):
                    if include_usage:
                        await respond.sse(sse_event(chunk))
                else:
                    if not include_usage and "usage" in chunk:
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                    await respond.sse(sse_event(chunk))
                chunk = await anext(chunks, None)
        except UpstreamError as error:
            await respond.sse(sse_event(error.as_openai()))
        await respond.sse(SSE_DONE, last=True)

    # ---- embeddings and legacy completions ---------------------------------------------------------------
    async def embeddings(self, scope, receive, respond: Responder, snapshot: Snapshot, path: str) -> None:
        tenant_id = self._authenticate(scope, snapshot)
        body = await self._json_body(scope, receive, schema.validate_embeddings)
        candidates = [c for c in resolve(snapshot, tenant_id, body["model"], mode="embedding")
                      if registry.get(c.provider.type).supports_embeddings][:MAX_ATTEMPTS]
        if not candidates:
            raise GatewayError(f"The model `{body['model']}` cannot serve embeddings here.", param="model",
                               code="model_not_supported")
        failure = None
        for candidate in candidates:
            target = self._target(candidate)
            try:
                result = await self.upstream.embeddings(registry.get(candidate.provider.type), target,
                                                        self._upstream_body(body, target))
            except UpstreamError as error:
                failure = failure or error  # the primary's failure is the one to report
                if error.retryable:
                    continue
                break
            self._routed(respond, candidate)
            return await respond.json(200, orjson.dumps(result))
        raise _upstream_failure(failure)

    async def completions(self, scope, receive, respond: Responder, snapshot: Snapshot, path: str) -> None:
        from apps.providers.adapters.openai import OpenAIStream

        tenant_id = self._authenticate(scope, snapshot)
        body = await self._json_body(scope, receive, schema.validate_completions)
        stream = body.get("stream") is True
        if stream and not settings.OPENAI_ENABLE_STREAMING:
            raise GatewayError("Streaming is disabled on this server.", param="stream", code="streaming_disabled")
        candidates = [c for c in resolve(snapshot, tenant_id, body["model"], mode="completion")
                      if registry.get(c.provider.type).supports_completions][:MAX_ATTEMPTS]
        if not candidates:
            raise GatewayError(f"The model `{body['model']}` does not support the legacy completions endpoint.",
                               param="model", code="model_not_supported")
        failure = None
        for candidate in candidates:
            target = self._target(candidate)
            adapter = registry.get(candidate.provider.type)
            request = adapter.completions_request(self._upstream_body(body, target), target, stream=stream)
            try:
                if not stream:
                    payload = await self.upstream.fetch(adapter, request)
                    self._routed(respond, candidate)
                    return await respond.json(200, payload)
                chunks = self.upstream.stream_request(adapter, request, OpenAIStream())
                first = await anext(chunks, None)
            except UpstreamError as error:
                failure = failure or error  # the primary's failure is the one to report
                if error.retryable:
                    continue
                break
            self._routed(respond, candidate)
            await respond.start_sse()
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            await self._pump(respond, first, chunks, include_usage)
            return None
        raise _upstream_failure(failure)

    # ---- models --------------------------------------------------------------------------------------
    def _models(self, snapshot: Snapshot, tenant_id: int | None) -> dict[str, dict]:
        cached = self._models_cache.get(tenant_id)
        if cached is not None:
            return cached
        listing: dict[str, dict] = {}
        for candidate in reachable_models(snapshot, tenant_id):
            m = candidate.model
            listing[m.model_id] = {
                "id": m.model_id, "object": "model", "created": m.created, "owned_by": m.provider_type,
                "provider": candidate.provider.type, "provider_slug": candidate.provider.slug, "mode": m.mode,
                "context_window": m.context_window, "max_output_tokens": m.max_output_tokens,
                "supports_streaming": "streaming" in m.capabilities,
                "cost_per_input_token": float(m.input_price), "cost_per_output_token": float(m.output_price),
                "capabilities": sorted(m.capabilities), "aliases": list(m.aliases), "tags": list(m.tags),
            }
        if listing:
            for name, strategy in VIRTUAL_MODELS.items():
                listing[name] = {"id": name, "object": "model", "created": 0, "owned_by": "cbplatform",
                                 "provider": "cbplatform", "virtual": True, "routing_strategy": strategy,
                                 "supports_streaming": True}
        self._models_cache[tenant_id] = listing
        return listing

    async def list_models(self, scope, receive, respond: Responder, snapshot: Snapshot, path: str) -> None:
        tenant_id = self._authenticate(scope, snapshot)
        data = list(self._models(snapshot, tenant_id).values())
        await respond.json(200, orjson.dumps({"object": "list", "data": data}))

    async def get_model(self, scope, receive, respond: Responder, snapshot: Snapshot, path: str) -> None:
        tenant_id = self._authenticate(scope, snapshot)
        model_id = path[len("/v1/models/"):]
        listing = self._models(snapshot, tenant_id)
        entry = listing.get(model_id)
        if entry is None:
            try:
                candidate = resolve(snapshot, tenant_id, model_id, mode="chat")[0]
                entry = listing.get(candidate.model.model_id)
            except GatewayError:
                entry = None
        if entry is None:
            raise NotFound(f"The model `{model_id}` does not exist or you do not have access to it.",
                           param="model", code="model_not_found")
        await respond.json(200, orjson.dumps(entry))


gateway_app = GatewayApp()
