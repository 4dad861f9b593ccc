"""What a finished execution starts: `function_completed` triggers and the function's chains.

Called inside the transaction that records the end, so what it starts is enqueued only if that commits. The
depth (`FUNCTIONS_MAX_CHAIN_DEPTH`) bounds loops: a chain or trigger that would start a run deeper than that
is skipped and logged."""

from __future__ import annotations

import logging

import orjson
from django.conf import settings

from apps.rules.engine import RuleError, compile_condition, passes
from apps.rules.selectors import named_rules_for

from .models import ChainOn, ExecutionStatus, FunctionChain, TriggerKind
from .triggers import fire_matching, start

logger = logging.getLogger("apps.functions")


def completion_facts(execution) -> dict:
    success = execution.status == ExecutionStatus.COMPLETED
    return orjson.loads(orjson.dumps({
        "event": {"type": "function_completed", "function_id": str(execution.function_id),
                  "function": execution.function.name, "execution_id": str(execution.id),
                  "status": execution.status, "success": success, "error": execution.error,
                  "error_code": execution.error_code},
        "data": execution.output or {}, "output": execution.output, "input": execution.input, "success": success,
        "workflow": execution.workflow or None, "instance_id": execution.instance_id,
        "token_id": execution.token_id, "agent_execution_id": execution.agent_execution_id or None,
    }, default=str))


def after_execution(execution) -> None:
    if execution.depth + 1 > settings.FUNCTIONS_MAX_CHAIN_DEPTH:
        logger.warning("function execution %s: depth %s reached, no chains or triggers follow", execution.id,
                       execution.depth)
        return
    facts = completion_facts(execution)
    fire_matching(execution.tenant_id, TriggerKind.FUNCTION_COMPLETED, facts, parent=execution)
    chains = FunctionChain.objects.filter(function_id=execution.function_id, enabled=True,
                                          next_function__enabled=True).select_related("next_function")
    for chain in chains:
        if chain_applies(chain, facts):
            start(chain.next_function, mapping=chain.input_mapping, facts=facts, trigger="chain", parent=execution,
                  countdown=chain.delay_seconds, extra_context={"chain_id": str(chain.id)})


def chain_applies(chain, facts: dict) -> bool:
    success = facts["success"]
    if chain.on == ChainOn.ALWAYS:
        return True
    if chain.on == ChainOn.SUCCESS:
        return success
    if chain.on == ChainOn.FAILURE:
        return not success
    try:
        compiled = compile_condition(chain.condition, named=named_rules_for(tenant=chain.tenant_id))
    except RuleError as exc:
        logger.warning("function chain %s: condition no longer compiles: %s", chain.id, exc.message)
        return False
    return passes(compiled, facts)
