"""Budgets on the hot path: reserve the request's worst-case cost against every budget it counts against
(block budgets refuse with 429 budget_exceeded; a downgrade budget past its threshold reorders to the cheapest
capable model), then settle to the real cost or release."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from django.conf import settings

from apps.billing.budget_bridge import record_alerts
from apps.billing.budget_outcomes import Refusal
from apps.billing.budget_spec import applicable
from apps.core.errors import ApiError, InvalidRequest

from ..context import RequestContext
from ..costs import cost_of, worst_case_cost
from ..resolve import Candidate
from ..snapshot import Snapshot

Replan = Callable[[dict, object], Awaitable[list[Candidate]]]


class Budgets:
    def __init__(self, store):
        self.store = store
        self._background: set[asyncio.Task] = set()

    async def admit(self, ctx: RequestContext, snapshot: Snapshot, body: dict, options, ordered: list[Candidate], *,
                    replan: Replan) -> tuple[dict, list[Candidate]]:
        """The body to send (with an output cap when the client set none: the reservation must bound the cost)
        and the candidates in the order to try."""
        specs = snapshot.budgets.get(ctx.tenant_id) if ctx.tenant_id is not None else None
        if not specs:
            return body, ordered
        key = ctx.key
        specs = applicable(specs, key_id=key.id if key else None,
                           user_label=options.budget_user_id or body.get("user") or (key.user_label if key else ""),
                           project_label=options.budget_project_id or (key.project_label if key else ""),
                           model={options.model, *(c.model.model_id for c in ordered)})
        if not specs:
            return body, ordered
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        if cap is None:
            cap = min(settings.BUDGET_DEFAULT_MAX_TOKENS,
                      min((c.model.max_output_tokens for c in ordered if c.model.max_output_tokens), default=0)
                      or settings.BUDGET_DEFAULT_MAX_TOKENS)
            body = {**body, "max_completion_tokens": cap}
        reachable = ordered[:settings.MAX_UPSTREAM_ATTEMPTS]
        unpriced = next((c.model.model_id for c in reachable if not c.model.priced), None)
        if unpriced is not None:  # it would count 0 against the budget: refuse rather than let it run free
            raise InvalidRequest(
                f"The model `{unpriced}` has no price, so its cost cannot count against your budget. Use a "
                f"catalogued model, add `{unpriced}` to the model catalogue with its prices, or have the operator "
                f"set DEFAULT_PRICE_PER_1K_INPUT and DEFAULT_PRICE_PER_1K_OUTPUT.", param="model",
                code="model_not_priced")
        worst = max(worst_case_cost(body, c.model, cap) for c in reachable)
        outcome = await self.store.reserve(specs, amount=worst, request_id=ctx.request_id)
        if isinstance(outcome, Refusal):
            raise ApiError(**outcome.error_fields())
        ctx.reservation = outcome
        if outcome.downgrade_wanted:
            # Past a downgrade budget's threshold: the cheapest model the tenant can reach that still meets the
            # request's needs (the plan drops the incapable), not just the cheapest deployment of this one.
            cheap = dataclasses.replace(options, model="auto", strategy="cost_optimized", models=(),
                                        fallback_models=())
            ordered = await replan(body, cheap)
            ctx.strategy = "cost_optimized (budget downgrade)"
        return body, ordered

    async def settle(self, ctx: RequestContext, usage: dict | None) -> None:
        reservation, ctx.reservation = ctx.reservation, None
        if reservation is None:
            return
        if ctx.chosen is None or not usage:
            await self.store.release(reservation)
            return
        settlement = await self.store.settle(reservation, actual=cost_of(ctx.chosen.model, usage))
        if settlement.alerts:  # rows, logs and webhooks, off the response path
            task = asyncio.get_running_loop().create_task(record_alerts(settlement.alerts))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
