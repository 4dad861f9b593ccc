"""What a request asks of routing: the `circuit_breaker` object, OpenRouter's fields, and what the request
needs from a model (tools, vision, JSON mode, streaming, output length).

Parsing is strict: an unknown key, a wrong type, a negative number or an unknown value is a 400
`invalid_routing_option` naming the option (`param`, e.g. "circuit_breaker.routing_strategy") and the
valid values, so a typo never silently routes somewhere the caller did not mean.

Pure (no Django import): the gateway parses requests with it, and `route_validation` checks stored virtual
models' constraints with the very same rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from apps.core.errors import InvalidRequest
from apps.core.vocabulary import ROUTING_STRATEGIES, TASK_TYPES, VIRTUAL_MODELS

# Task types a request may name; catalogue models carry them as tags. Strict, so a typo is a 400.
SORTS = ("price", "throughput", "latency")
SUFFIXES = {":floor": "price", ":nitro": "throughput"}  # OpenRouter model-name shortcuts
SORT_STRATEGIES = {"price": "cost_optimized", "throughput": "performance_first", "latency": "performance_first"}

CIRCUIT_BREAKER_OPTIONS = (
    "routing_strategy", "max_cost_per_1k_tokens", "max_latency_ms", "fallback_models", "task_type",
    "require_streaming", "prefer_models", "preferred_providers", "prefer_large_context", "budget_tracking",
    "publish_stream",
)
BUDGET_TRACKING_OPTIONS = ("user_id", "project_id")
PROVIDER_OPTIONS = (
    "order", "allow_fallbacks", "only", "ignore", "sort", "max_price", "require_parameters", "data_collection",
)
MAX_PRICE_OPTIONS = ("prompt", "completion")
DATA_COLLECTION = ("allow", "deny")
ROUTES = ("fallback",)


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """Everything a request says about routing, validated. Prices: `max_cost_per_1k_tokens` in USD per
    1,000 tokens (blended for the request), `max_price_*` in USD per million tokens (OpenRouter's unit)."""

    model: str  # the requested name without a `:floor`/`:nitro` suffix
    strategy: str
    # Where the strategy came from: "request" (circuit_breaker.routing_strategy), "suffix" (:floor/:nitro),
    # "provider.sort", "virtual_model" (e.g. cb:fastest) or "default" (tenant/server default).
    strategy_source: str = "default"
    sort: str | None = None  # price | throughput | latency, from a suffix or provider.sort
    task_type: str | None = None
    max_cost_per_1k_tokens: float | None = None
    max_latency_ms: float | None = None
    fallback_models: tuple[str, ...] = ()
    require_streaming: bool = False
    prefer_models: tuple[str, ...] = ()
    preferred_providers: tuple[str, ...] = ()
    prefer_large_context: bool = False
    publish_stream: bool = False  # publish the chunks for GraphQL `llmStream(requestId)` subscribers
    budget_user_id: str | None = None
    budget_project_id: str | None = None
    # OpenRouter
    models: tuple[str, ...] = ()
    route: str | None = None
    provider_order: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    only: tuple[str, ...] = ()  # empty: no restriction
    ignore: tuple[str, ...] = ()
    max_price_prompt: float | None = None
    max_price_completion: float | None = None
    require_parameters: bool = False
    data_collection: str = "allow"

    def model_chain(self) -> list[str]:
        """Model names to resolve, in order: the requested model, then OpenRouter's `models`, then
        `circuit_breaker.fallback_models` (duplicates dropped). Pass each name's candidates to `plan` with
        its position in this list as the candidates' tier."""
        chain: list[str] = []
        for name in (self.model, *self.models, *self.fallback_models):
            if name and name not in chain:
                chain.append(name)
        return chain


def _error(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_routing_option")


def _kind(value) -> str:
    return {bool: "boolean", str: "string", int: "number", float: "number", list: "array", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


def _object(value, param: str, allowed: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise _error(param, f"Invalid type for '{param}': expected an object, got {_kind(value)}.")
    for key in value:
        if key not in allowed:
            raise _error(f"{param}.{key}", f"Unknown option '{param}.{key}'. Valid options of '{param}': "
                                           f"{', '.join(allowed)}.")
    return value


def _number(value, param: str, *, positive: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _error(param, f"Invalid type for '{param}': expected a number, got {_kind(value)}.")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise _error(param, f"Invalid value for '{param}': {value} (must be {bound}).")
    return float(value)


def _bool(value, param: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _error(param, f"Invalid type for '{param}': expected a boolean, got {_kind(value)}.")
    return value


def _string(value, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _error(param, f"Invalid type for '{param}': expected a string, got {_kind(value)}.")
    return value


def _strings(value, param: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _error(param, f"Invalid type for '{param}': expected an array of non-empty strings.")
    return tuple(v.strip() for v in value)


def _choice(value, param: str, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _error(param, f"Invalid type for '{param}': expected a string, one of: {', '.join(choices)}.")
    if value not in choices:
        raise _error(param, f"Invalid value for '{param}': {value!r}. Valid values: {', '.join(choices)}.")
    return value


def split_suffix(name: str) -> tuple[str, str | None]:
    """`gpt-4o:floor` → ("gpt-4o", "price"); names without a routing suffix come back unchanged."""
    for suffix, sort in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], sort
    return name, None


# Bodies without routing fields (most of them) get their options from `model` alone: parsed once per name.
ROUTING_FIELDS = ("circuit_breaker", "provider", "models", "route")
_plain: dict[tuple, RouteOptions] = {}
PLAIN_CACHE_SIZE = 4096


def parse_route_options(body: dict, *, default_strategy: str,
                        virtual_models: Mapping[str, str] | None = None) -> RouteOptions:
    """Validate the request's routing options. Strategy precedence: circuit_breaker.routing_strategy, then a
    `:floor`/`:nitro` suffix, then provider.sort, then the virtual model's own strategy (`virtual_models`,
    default core.vocabulary.VIRTUAL_MODELS; tenants may pass theirs merged in), then `default_strategy`.
    `cb:<task>` virtual models imply that task_type unless the request names one."""
    virtual = VIRTUAL_MODELS if virtual_models is None else virtual_models
    raw_model = body.get("model")
    if isinstance(raw_model, str) and not any(name in body for name in ROUTING_FIELDS):
        key = (raw_model, default_strategy, virtual.get(split_suffix(raw_model)[0]))
        options = _plain.get(key)
        if options is None:  # RouteOptions is frozen: one instance serves every such request
            if len(_plain) >= PLAIN_CACHE_SIZE:
                _plain.clear()
            options = _plain[key] = _parse_route_options(body, default_strategy, virtual)
        return options
    return _parse_route_options(body, default_strategy, virtual)


def _parse_route_options(body: dict, default_strategy: str, virtual: Mapping[str, str]) -> RouteOptions:
    raw_model = body.get("model")
    model, sort = split_suffix(raw_model) if isinstance(raw_model, str) else ("", None)
    source = "suffix" if sort else "default"

    cb = body.get("circuit_breaker")
    cb = {} if cb is None else _object(cb, "circuit_breaker", CIRCUIT_BREAKER_OPTIONS)
    p = "circuit_breaker."
    strategy = _choice(cb.get("routing_strategy"), p + "routing_strategy", ROUTING_STRATEGIES)
    task_type = _choice(cb.get("task_type"), p + "task_type", TASK_TYPES)
    budget = cb.get("budget_tracking")
    budget = {} if budget is None else _object(budget, p + "budget_tracking", BUDGET_TRACKING_OPTIONS)

    provider = body.get("provider")
    provider = {} if provider is None else _object(provider, "provider", PROVIDER_OPTIONS)
    provider_sort = _choice(provider.get("sort"), "provider.sort", SORTS)
    max_price = provider.get("max_price")
    max_price = {} if max_price is None else _object(max_price, "provider.max_price", MAX_PRICE_OPTIONS)

    if sort is None and provider_sort is not None:
        sort, source = provider_sort, "provider.sort"
    if strategy is not None:
        source = "request"
    elif sort is not None:
        strategy = SORT_STRATEGIES[sort]
    elif model in virtual:
        strategy, source = virtual[model], "virtual_model"
    else:
        strategy = default_strategy
    if task_type is None and model.startswith("cb:") and model[3:] in TASK_TYPES:
        task_type = model[3:]

    models = tuple(split_suffix(m)[0] for m in _strings(body.get("models"), "models"))
    return RouteOptions(
        model=model,
        strategy=strategy,
        strategy_source=source,
        sort=sort,
        task_type=task_type,
        max_cost_per_1k_tokens=_number(cb.get("max_cost_per_1k_tokens"), p + "max_cost_per_1k_tokens"),
        max_latency_ms=_number(cb.get("max_latency_ms"), p + "max_latency_ms", positive=True),
        fallback_models=_strings(cb.get("fallback_models"), p + "fallback_models"),
        require_streaming=_bool(cb.get("require_streaming"), p + "require_streaming", False),
        prefer_models=_strings(cb.get("prefer_models"), p + "prefer_models"),
        preferred_providers=_strings(cb.get("preferred_providers"), p + "preferred_providers"),
        prefer_large_context=_bool(cb.get("prefer_large_context"), p + "prefer_large_context", False),
        publish_stream=_bool(cb.get("publish_stream"), p + "publish_stream", False),
        budget_user_id=_string(budget.get("user_id"), p + "budget_tracking.user_id"),
        budget_project_id=_string(budget.get("project_id"), p + "budget_tracking.project_id"),
        models=models,
        route=_choice(body.get("route"), "route", ROUTES),
        provider_order=_strings(provider.get("order"), "provider.order"),
        allow_fallbacks=_bool(provider.get("allow_fallbacks"), "provider.allow_fallbacks", True),
        only=_strings(provider.get("only"), "provider.only"),
        ignore=_strings(provider.get("ignore"), "provider.ignore"),
        max_price_prompt=_number(max_price.get("prompt"), "provider.max_price.prompt"),
        max_price_completion=_number(max_price.get("completion"), "provider.max_price.completion"),
        require_parameters=_bool(provider.get("require_parameters"), "provider.require_parameters", False),
        data_collection=_choice(provider.get("data_collection"), "provider.data_collection", DATA_COLLECTION)
        or "allow",
    )


@dataclass(slots=True)
class Needs:
    """What a request needs from a model. `streaming` is required (stream or circuit_breaker.require_streaming);
    `stream` is whether the client itself streams (performance ranks streams by time to first token)."""

    tools: bool = False
    vision: bool = False
    json_mode: bool = False
    streaming: bool = False
    max_output: int | None = None
    stream: bool = False
    messages: list | None = None  # kept for infer_task, which runs only for task_specific routing


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def request_needs(body: dict) -> Needs:
    tools = bool(body.get("tools")) and body.get("tool_choice") != "none"
    tools = tools or (bool(body.get("functions")) and body.get("function_call") != "none")
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else None
    vision = False
    for message in messages or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                isinstance(part, dict) and part.get("type") in ("image_url", "input_image") for part in content):
            vision = True
            break
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")
    stream = body.get("stream") is True
    cb = body.get("circuit_breaker")
    required = isinstance(cb, dict) and cb.get("require_streaming") is True
    max_output = _positive_int(body.get("max_completion_tokens")) or _positive_int(body.get("max_tokens"))
    return Needs(tools=tools, vision=vision, json_mode=json_mode, streaming=stream or required,
                 max_output=max_output, stream=stream, messages=messages)
