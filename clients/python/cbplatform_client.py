"""A small client for cbplatform's OpenAI-compatible `/v1`, needing only the `openai` package.

Copy this file next to your code (or put `clients/python` on `PYTHONPATH`) and::

    from cbplatform_client import CircuitBreakerClient

    client = CircuitBreakerClient("http://localhost:3000", api_key="cb-...")   # api_key: or $CB_API_KEY
    print(client.smart_completion("Explain circuit breakers in one sentence."))
    print(client.smart_completion(
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Explain AI"}],
        strategy="cost_optimized", max_cost=0.001, fallback_models=["gpt-4o-mini", "claude-3-haiku"]))
    for text in client.stream_completion("Write a haiku about failover", strategy="performance_first"):
        print(text, end="", flush=True)

`smart_completion` and `stream_completion` build the request's `circuit_breaker` object (sent through the SDK's
`extra_body`) from keyword arguments: `strategy` (routing_strategy), `max_cost` (max_cost_per_1k_tokens, USD),
`max_latency_ms`, `fallback_models`, `task_type`, `prefer_models`, `preferred_providers`, `budget_user` /
`budget_project` (budget_tracking). Anything else (temperature, max_tokens, tools, response_format,
OpenRouter's `models`, `provider`, `reasoning`…) goes to `chat.completions.create` as is. Errors are the
`openai` package's (`openai.APIStatusError` with the gateway's status, code and message); nothing is retried
here beyond the SDK's own `max_retries`, since the gateway already fails over between providers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import openai

__all__ = ["ROUTING", "CircuitBreakerClient", "routing_options"]

Messages = str | Iterable[dict]
# Keyword arguments that become the `circuit_breaker` object (see routing_options).
ROUTING = ("strategy", "max_cost", "max_latency_ms", "fallback_models", "task_type", "prefer_models",
           "preferred_providers", "budget_user", "budget_project")


def routing_options(*, strategy: str | None = None, max_cost: float | None = None,
                    max_latency_ms: float | None = None, fallback_models: Iterable[str] | None = None,
                    task_type: str | None = None, prefer_models: Iterable[str] | None = None,
                    preferred_providers: Iterable[str] | None = None, budget_user: str | None = None,
                    budget_project: str | None = None) -> dict:
    """The `circuit_breaker` object for these options; options left as None are not sent."""
    options: dict = {}
    if strategy is not None:
        options["routing_strategy"] = strategy
    if max_cost is not None:
        options["max_cost_per_1k_tokens"] = max_cost
    if max_latency_ms is not None:
        options["max_latency_ms"] = max_latency_ms
    for name, value in (("fallback_models", fallback_models), ("prefer_models", prefer_models),
                        ("preferred_providers", preferred_providers)):
        if value is not None:
            options[name] = list(value)
    if task_type is not None:
        options["task_type"] = task_type
    tracking = {k: v for k, v in (("user_id", budget_user), ("project_id", budget_project)) if v is not None}
    if tracking:
        options["budget_tracking"] = tracking
    return options


def _messages(messages: Messages) -> list[dict]:
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)


class CircuitBreakerClient:
    """`base_url` is the server (`http://localhost:3000`) or its `/v1`; `api_key` a `cb-` key (default:
    $CB_API_KEY, else none — the embedded default needs none). `model` is what requests ask for unless a call
    names another (`auto`: the server routes among every model the key reaches)."""

    def __init__(self, base_url: str = "http://localhost:3000", api_key: str | None = None, *, model: str = "auto",
                 timeout: float = 60.0, max_retries: int = 2):
        base = base_url.rstrip("/")
        self.model = model
        self.openai = openai.OpenAI(base_url=base if base.endswith("/v1") else f"{base}/v1",
                                    api_key=api_key or os.environ.get("CB_API_KEY") or "not-needed",
                                    timeout=timeout, max_retries=max_retries)

    def _request(self, messages: Messages, kwargs: dict) -> dict:
        """`chat.completions.create` arguments: the routing options (ROUTING) become `circuit_breaker`."""
        routing = {name: kwargs.pop(name) for name in ROUTING if name in kwargs}
        extra_body = dict(kwargs.pop("extra_body", None) or {})
        options = {**(extra_body.get("circuit_breaker") or {}), **routing_options(**routing)}
        if options:
            extra_body["circuit_breaker"] = options
        request = {"model": kwargs.pop("model", None) or self.model, "messages": _messages(messages), **kwargs}
        if extra_body:
            request["extra_body"] = extra_body
        return request

    def completion(self, messages: Messages, **kwargs):
        """The whole `ChatCompletion` (usage with `cost` in USD, `provider`, …); routing options as below."""
        return self.openai.chat.completions.create(**self._request(messages, kwargs))

    def smart_completion(self, messages: Messages, *, strategy: str = "balanced", max_cost: float | None = None,
                         fallback_models: Iterable[str] | None = None, **kwargs) -> str:
        """The answer's text, routed by `strategy` (balanced, cost_optimized, performance_first,
        reliability_first, task_specific, …) at most `max_cost` USD per 1,000 tokens, falling back to
        `fallback_models`; the other routing options (ROUTING) and the SDK's arguments go in `kwargs`."""
        answer = self.completion(messages, strategy=strategy, max_cost=max_cost, fallback_models=fallback_models,
                                 **kwargs)
        return answer.choices[0].message.content or ""

    def stream_completion(self, messages: Messages, *, strategy: str = "balanced", max_cost: float | None = None,
                          fallback_models: Iterable[str] | None = None, **kwargs) -> Iterator[str]:
        """The answer's text as it streams (same options as `smart_completion`). Closing the iterator early
        closes the stream: the gateway stops reading upstream and bills what was relayed."""
        request = self._request(messages, {"strategy": strategy, "max_cost": max_cost,
                                           "fallback_models": fallback_models, **kwargs})
        stream = self.openai.chat.completions.create(stream=True, **request)
        try:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        finally:
            stream.close()
