"""`RequestContext`: everything one completion request accumulates, from authentication to its ledger record.

The /v1 handlers and the in-process completion API fill the same context, so the steps that read it (planning,
attempts, admission and settlement, the ledger, the route log, metrics) cannot tell the two apart.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from django.conf import settings

from apps.providers.adapters.base import loads
from apps.providers.adapters.openai import RelayableRun
from apps.providers.route_options import RouteOptions

from . import prompt_tokens
from .costs import cost_of
from .health_cache import HealthCache, Ticket
from .resolve import Candidate
from .snapshot import KeyInfo

route_log = logging.getLogger("apps.gateway.route")


@dataclass
class Attempt:
    deployment: str
    provider: str
    model: str
    outcome: str  # ok | retryable_error | error | circuit_open
    status: int | None = None
    ms: float = 0.0


@dataclass
class RequestContext:
    health: HealthCache
    request_id: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    wall_started: float = field(default_factory=time.time)
    # who and what
    tenant_id: int | None = None
    key: KeyInfo | None = None
    body: dict | None = None
    workflow_id: str = ""
    agent_id: str = ""
    # routing
    strategy: str = "failover_chain"
    options: RouteOptions | None = None
    excluded: dict = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    upstream_s: float = 0.0  # time spent waiting on upstreams and backoff (not our overhead)
    chosen: Candidate | None = None
    deployment: str | None = None
    ticket: Ticket | None = None  # the chosen deployment's, while its outcome is pending (streams)
    # outcome
    usage: dict | None = None
    ttft_s: float | None = None
    error_code: str | None = None
    streamed: bool = False
    # content relayed so far, to count when usage is missing: text, or a relayed chunk's JSON (`streamed_content`)
    streamed_text: list = field(default_factory=list)
    finalized: bool = False
    hide_reasoning: bool = False  # OpenRouter's reasoning.exclude: the model's reasoning text is not relayed
    result: dict | None = None  # the JSON answer
    request_log: dict | None = None  # the request body when its tenant or key keeps request logs, else None
    _cost: object = None  # cost_for's cache: the cost of the usage object `_cost_of`
    _cost_of: dict | None = None
    # admission state, settled when the request ends
    response_headers: dict[str, str] = field(default_factory=dict)  # rate-limit headers for /v1 clients
    rates: list = field(default_factory=list)  # open rate-limit admissions: (limits, estimated tokens, lease)
    spend_rules: bool = False  # the tenant has rules on today's spend: count this request's cost
    reservation: object = None  # the budget reservation held until settlement
    marker: object = None  # the in-flight marker's write, confirmed before the record that retires it
    _prompt_counter: object = None  # `prompt_counter`

    @property
    def deadline(self) -> float:
        return self.started + settings.REQUEST_TIMEOUT_SECONDS

    # ---- reporting ------------------------------------------------------------------------------------
    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_s) * 1000)

    def headers(self) -> dict[str, str]:
        tried = sum(1 for a in self.attempts if a.outcome != "circuit_open")
        return {"x-cb-route": f"strategy={self.strategy}; attempts={tried}",
                "x-cb-overhead-ms": f"{self.overhead_ms():.2f}"}

    def log(self, *, status: int, error: str | None = None) -> None:
        """One structured line per request (ROUTE_LOG=all), or only for eventful ones (the default: an error,
        a failover, an exclusion) — routine first-attempt successes are most of the traffic and cost CPU."""
        mode = settings.ROUTE_LOG
        if mode == "off" or not route_log.isEnabledFor(logging.INFO):
            return
        if mode == "eventful" and status < 400 and not error and len(self.attempts) <= 1 and not self.excluded:
            return
        options = self.options
        route_log.info("route %s", self.request_id, extra={"cb": {
            "event": "route", "request_id": self.request_id, "endpoint": self.endpoint, "tenant": self.tenant_id,
            "requested": options.model if options else None, "strategy": self.strategy,
            "excluded": self.excluded, "status": status, "error": error,
            "provider": self.chosen.provider.slug if self.chosen else None,
            "model": self.chosen.model.model_id if self.chosen else None,
            "attempts": [a.__dict__ for a in self.attempts],
            "budget": {"user_id": options.budget_user_id, "project_id": options.budget_project_id}
            if options and (options.budget_user_id or options.budget_project_id) else None,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
            "overhead_ms": round(self.overhead_ms(), 2),
        }})

    def cost_for(self, usage: dict | None):
        """`costs.cost_of` on the chosen model, computed once per usage object (the answer's `usage.cost`, the
        ledger record and the metrics all ask for it)."""
        if self.chosen is None or not usage:
            return 0
        if self._cost_of is not usage:
            self._cost, self._cost_of = cost_of(self.chosen.model, usage), usage
        return self._cost

    def usage_cost(self, usage: dict) -> float:
        """OpenRouter's `usage.cost`: what the ledger will record for this usage, in USD."""
        return float(self.cost_for(usage))

    # ---- the usage ledger's record ------------------------------------------------------------------------
    def final_usage(self) -> tuple[dict | None, bool]:
        """The usage to bill and whether we estimated it: the upstream's, else counted from what was relayed
        (a stream cut short by the client, or an upstream that reports none)."""
        if self.usage or self.chosen is None or not self.streamed:
            return self.usage, False
        model = self.chosen.model
        prompt = prompt_tokens.estimate_prompt_tokens(self.body or {}, model)
        text = self.streamed_content()
        completion = math.ceil(prompt_tokens.count_text(text) * prompt_tokens.family_factor(model)) if text else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}, True

    def prompt_counter(self, body: dict, *, max_output: int = 0) -> prompt_tokens.LazyPromptTokens:
        """The request's prompt-token counter for `body` (admission, routing and the in-flight marker share its
        counts; a changed body gets a new one)."""
        counter = self._prompt_counter
        if counter is None or counter.body is not body:
            counter = self._prompt_counter = prompt_tokens.LazyPromptTokens(body)
        counter.max_output = max_output or 0
        return counter

    def streamed_content(self) -> str:
        """The text relayed so far; chunks relayed undecoded (`sse.pump_events`) are decoded only now."""
        parts = []
        for item in self._streamed_items():
            text = item
            if type(item) is bytes:
                chunk = loads(item)
                choices = chunk.get("choices") if isinstance(chunk, dict) else None
                delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
                text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str):
                parts.append(text)
        return "".join(parts)

    def _streamed_items(self):
        for item in self.streamed_text:
            if type(item) is RelayableRun:  # whole events (`sse.pump_events`): their chunks' JSON
                yield from (event[6:] for event in item.split(b"\n\n")[:-1])
            else:
                yield item

    def labels(self) -> tuple[str, str]:
        """The user and project a request is billed to: routing options, then the body's `user`, then the key."""
        options, key, body = self.options, self.key, self.body or {}
        user = (options.budget_user_id if options else None) or body.get("user") or (key.user_label if key else "")
        project = (options.budget_project_id if options else None) or (key.project_label if key else "")
        return user or "", project or ""

    def usage_entry(self, status: int, usage: dict | None, estimated: bool, cost) -> dict:
        options, chosen, key, body = self.options, self.chosen, self.key, self.body or {}
        details = (usage or {}).get("prompt_tokens_details") or {}
        completion_details = (usage or {}).get("completion_tokens_details") or {}
        user, project = self.labels()
        return {
            "request_id": self.request_id, "created_at": self.wall_started, "tenant_id": self.tenant_id,
            "api_key_id": key.id if key else None, "user_label": user, "project_label": project,
            "workflow_id": self.workflow_id, "agent_id": self.agent_id, "endpoint": self.endpoint,
            "provider": chosen.provider.slug if chosen else (self.attempts[-1].provider if self.attempts else ""),
            "deployment": self.deployment or "",
            "model_requested": (options.model if options else body.get("model")) or "",
            "model_served": chosen.model.model_id if chosen else "", "strategy": self.strategy,
            "attempts": sum(1 for a in self.attempts if a.outcome != "circuit_open"),
            "prompt_tokens": (usage or {}).get("prompt_tokens") or 0,
            "completion_tokens": (usage or {}).get("completion_tokens") or 0,
            "cached_tokens": details.get("cached_tokens") or 0,
            "cache_write_tokens": details.get("cache_write_tokens") or 0,
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0,
            "cost": str(cost), "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "ttft_ms": round(self.ttft_s * 1000, 3) if self.ttft_s is not None else None,
            "status": status, "error_type": self.error_code or "", "streamed": self.streamed,
            "usage_estimated": estimated,
        }

