"""`createCompletion`: one chat completion through the gateway's in-process API — the /v1 pipeline with its
routing, failover, rate limits, budgets and ledger — for the caller's tenant (and key, whose labels and limits
apply).

The GraphQL view is a sync Django view: the completion runs on the loop that owns the gateway runtime (the
server's) or this process's background loop (`apps.core.loop_thread`), never a fresh loop per request. With
`stream: true` it answers at once with an id; the realtime app produces the content in the background and
publishes it for `completionStream(completionId)` / `llmStream(requestId)`.
"""

from __future__ import annotations

import os

import graphene
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.core.errors import ServiceUnavailable, UpstreamTimeout
from apps.core.graphql_fields import JSON, json_object, mutation
from apps.gateway import completion_api
from apps.providers.models import ProviderType

from ..types import Completion, MessageInput, RoutingAttempt, RoutingInfo, Usage

try:  # the realtime app's background producer (streams published for completionStream / llmStream)
    from apps.realtime.completions import start_background_completion
except ImportError:  # not (yet) part of this build: stream: true is refused with a clear error
    start_background_completion = None

CompletionProvider = graphene.Enum("CompletionProvider", [(value.upper(), value) for value in ProviderType.values])
# Explicit fields of the input → the /v1 `circuit_breaker` option they set.
ROUTING_FIELDS = {"routing_strategy": "routing_strategy", "fallback_models": "fallback_models",
                  "max_cost_per_1k_tokens": "max_cost_per_1k_tokens", "max_latency_ms": "max_latency_ms",
                  "task_type": "task_type", "preferred_providers": "preferred_providers"}


class CompletionInput(graphene.InputObjectType):
    model = graphene.String(required=True, description="A model id, alias or virtual model (cb:fastest, …).")
    messages = graphene.List(graphene.NonNull(MessageInput), required=True)
    provider = graphene.Field(CompletionProvider, description="Prefer this provider type when it serves the model.")
    stream = graphene.Boolean(description="Answer at once with an id; the content streams on the WebSocket.")
    temperature = graphene.Float()
    max_tokens = graphene.Int()
    top_p = graphene.Float()
    routing_strategy = graphene.String()
    fallback_models = graphene.List(graphene.NonNull(graphene.String))
    max_cost_per_1k_tokens = graphene.Float()
    max_latency_ms = graphene.Float()
    task_type = graphene.String()
    preferred_providers = graphene.List(graphene.NonNull(graphene.String))
    routing = JSON(description="Any other /v1 `circuit_breaker` options, as an object.")
    user_id = graphene.String(description="Labels the ledger and budgets (budget_tracking.user_id).")
    project_id = graphene.String(description="Labels the ledger and budgets (budget_tracking.project_id).")
    workflow_id = graphene.String()


class CreateCompletion(graphene.Mutation):
    class Arguments:
        input = CompletionInput(required=True)

    Output = Completion

    @staticmethod
    @mutation("inference", atomic=False)  # no transaction held across an upstream call
    def mutate(root, info, input):  # noqa: A002 - GraphQL's argument name
        context = info.context
        request = _request(input)
        api_key_id = context.api_key.pk if context.api_key is not None else None
        request_id = "req_" + os.urandom(16).hex()
        if input.stream:
            if start_background_completion is None:
                raise ServiceUnavailable("Streaming completions need the realtime app, which this server does not "
                                         "include; ask without stream: true.", code="streaming_unavailable",
                                         param="stream")
            # The id is both the completionStream id and the llmStream request id.
            start_background_completion(context.tenant, request, completion_id=request_id, api_key_id=api_key_id,
                                        request_id=request_id)
            return Completion(id=request_id, streaming=True)
        route: dict = {}
        try:
            result = completion_api.run_sync(
                lambda: completion_api.complete(context.tenant, request, api_key_id=api_key_id, request_id=request_id,
                                                route_info=route),
                timeout=settings.REQUEST_TIMEOUT_SECONDS + 5)
        except TimeoutError:
            raise UpstreamTimeout("The completion did not finish in time.") from None
        return _completion(result, route)


def _request(input) -> dict:
    """The /v1 chat body the input describes: routing options and ledger labels ride in it (`circuit_breaker`,
    `budget_tracking`, `metadata.workflow_id`), as a /v1 client would send them."""
    request = {"model": input.model,
               "messages": [{"role": getattr(m.role, "value", m.role), "content": m.content,
                             **({"name": m.name} if m.name else {})} for m in input.messages]}
    for name in ("temperature", "max_tokens", "top_p"):
        if input.get(name) is not None:
            request[name] = input[name]
    routing = _routing(input)
    tracking = {key: value for key, value in (("user_id", input.user_id), ("project_id", input.project_id))
                if value}
    if tracking:
        routing["budget_tracking"] = {**(routing.get("budget_tracking") or {}), **tracking}
    if routing:
        request["circuit_breaker"] = routing
    if input.workflow_id:
        request["metadata"] = {"workflow_id": input.workflow_id}
    return request


def _routing(input) -> dict:
    routing = json_object(input.routing, "routing")
    for name, option in ROUTING_FIELDS.items():
        if input.get(name) is not None:
            routing[option] = input[name]
    if input.provider is not None:
        provider = getattr(input.provider, "value", input.provider)
        preferred = list(routing.get("preferred_providers") or [])
        if not isinstance(preferred, list):
            raise ValidationError({"routing.preferred_providers": ["Must be a list."]})
        routing["preferred_providers"] = [provider, *[p for p in preferred if p != provider]]
    return routing


def _completion(result: dict, route: dict) -> Completion:
    choice = (result.get("choices") or [{}])[0]
    usage = result.get("usage") or {}
    return Completion(
        id=result.get("id") or route.get("request_id"), content=(choice.get("message") or {}).get("content"),
        model=result.get("model"), provider=result.get("provider"), finish_reason=choice.get("finish_reason"),
        streaming=False,
        usage=Usage(prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0),
                    total_tokens=usage.get("total_tokens", 0), cost=route.get("cost")),
        routing_info=RoutingInfo(
            request_id=route.get("request_id", ""), strategy=route.get("strategy", ""), provider=route.get("provider"),
            model=route.get("model"), overhead_ms=route.get("overhead_ms"),
            attempts=[RoutingAttempt(**attempt) for attempt in route.get("attempts", [])]))
