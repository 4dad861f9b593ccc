"""Cost-optimisation rules (ENABLE_COST_OPTIMIZATION): route to another model, prefer providers, or rate-limit —
decided on the request as sent and today's spend — and, once it has ended, today's spend counted."""

from __future__ import annotations

import dataclasses

from django.conf import settings

from apps.billing import cost_rules

from ..context import RequestContext
from ..limits import Limit
from ..snapshot import Snapshot
from .rate_limits import RateLimits


class CostRules:
    def __init__(self, rate_limits: RateLimits, redis):
        self.rate_limits = rate_limits
        self.redis = redis

    async def admit(self, ctx: RequestContext, snapshot: Snapshot, body: dict, options):
        """The routing options after the tenant's rules have had their say."""
        specs = snapshot.cost_rules_for(ctx.tenant_id)
        if not specs:
            return options
        needed = cost_rules.spend_models_needed(specs, options.model)
        ctx.spend_rules = bool(needed)  # some rule reads today's spend: count this request's
        spend = {}
        if needed and self.redis is not None and ctx.tenant_id is not None:
            spend = await cost_rules.spend_today_many(self.redis, ctx.tenant_id, needed)
        prompt = ctx.prompt_counter(body).encoded("quick")
        effects = cost_rules.evaluate(specs, cost_rules.RequestFacts(
            model=options.model, prompt_tokens=prompt, task_type=options.task_type or "general",
            environment=settings.ENVIRONMENT, spend_today_by_model=spend))
        if effects.model:
            options = dataclasses.replace(options, model=effects.model)
        if effects.prefer_providers:
            options = dataclasses.replace(options, preferred_providers=(*effects.prefer_providers,
                                                                        *options.preferred_providers))
        if effects.rate_limits:
            limits = [Limit(f"t:{ctx.tenant_id}:{rule['key']}", requests_per_minute=rule.get("requests_per_minute"),
                            tokens_per_minute=rule.get("tokens_per_minute")) for rule in effects.rate_limits]
            estimate = prompt + (body.get("max_completion_tokens") or body.get("max_tokens") or 0)
            await self.rate_limits.admit_limits(ctx, limits, estimate,
                                                message="A cost rule limits this model's rate: {}")
        return options

    async def settle(self, ctx: RequestContext, cost) -> None:
        if ctx.spend_rules and cost and self.redis is not None and ctx.chosen is not None:
            await cost_rules.add_spend(self.redis, ctx.tenant_id, ctx.chosen.model.model_id, cost)
