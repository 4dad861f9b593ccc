"""Writes: functions, triggers and chains (validated, tenant-scoped), starting runs (enqueued or in this
process), cancelling them and emitting custom events. Keyword-only, tenant first."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import orjson
import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidRequest, PermissionDenied

from . import triggers
from .access import chain_access_by_id, execution_access_by_id, function_access_by_id, trigger_access_by_id
from .launch import enqueue, execution_create
from .models import (
    DEFAULT_RETRY_ON,
    FINISHED,
    ExecutionStatus,
    Function,
    FunctionChain,
    FunctionExecution,
    FunctionTrigger,
    Runtime,
    TriggerKind,
)
from .runner import execution_run
from .schemas import instance_problems
from .validation import chain_problems, function_problems, next_slot, raise_problems, trigger_problems

__all__ = ["chain_create", "chain_delete", "chain_update", "event_emit", "examples_load", "execution_cancel",
           "execution_wait", "function_create", "function_delete", "function_execute", "function_run_now",
           "function_update", "trigger_create", "trigger_delete", "trigger_update"]

FUNCTION_FIELDS = ("name", "description", "runtime", "config", "input_schema", "output_schema", "timeout_seconds",
                   "max_attempts", "backoff", "retry_delay_seconds", "retry_max_delay_seconds", "retry_on",
                   "enabled", "tags")
TRIGGER_FIELDS = ("kind", "workflow", "config", "condition", "input_mapping", "enabled")
CHAIN_FIELDS = ("on", "condition", "input_mapping", "delay_seconds", "enabled")
# Runtimes that run operator-chosen programs on the worker's host: only staff may define or change them.
STAFF_RUNTIMES = {Runtime.COMMAND, Runtime.CONTAINER}


def _staff_only(runtime: str, staff: bool) -> None:
    if runtime in STAFF_RUNTIMES and not staff:
        raise PermissionDenied(f"Only staff can define or change {runtime} functions.", code="staff_only")


def _apply(row, fields: dict, allowed: tuple) -> bool:
    changed = False
    for name, value in fields.items():
        if name not in allowed:
            raise InvalidRequest(f"Unknown field {name!r}.", param=name)
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _set_secret(function: Function, secret: str | None, secret_env: dict | None) -> str | None:
    """The HMAC key of an http function (generated when none is given; returned once) or a container's secret
    env; stored encrypted. Giving the other runtime's secret is a 400, not silently dropped."""
    if secret is not None and function.runtime != Runtime.HTTP:
        raise ValidationError({"hmac_secret": ["Only http functions sign with an HMAC secret."]})
    if secret_env is not None and function.runtime != Runtime.CONTAINER:
        raise ValidationError({"secret_env": ["Only container functions take a secret environment."]})
    if function.runtime == Runtime.HTTP:
        if secret is None and function.has_secret:
            return None
        value = secret or secrets.token_urlsafe(32)
        function.set_secret(value)
        return value if secret is None else None
    if function.runtime == Runtime.CONTAINER and secret_env is not None:
        if not isinstance(secret_env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in secret_env.items()):
            raise ValidationError({"secret_env": ["Must map names to strings."]})
        function.set_secret(json.dumps(secret_env) if secret_env else "")
    return None


def _save_unique(row, label: str) -> None:
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(f"A {label} named {row.name!r} exists already.", code="duplicate_name") from None


def function_create(tenant, *, fields: dict, secret: str | None = None, secret_env: dict | None = None,
                    actor: str = "", staff: bool = False) -> tuple[Function, str | None]:
    """A new function. Returns it and, for an http function created without a secret, the generated HMAC
    secret (shown once)."""
    _staff_only(fields.get("runtime", ""), staff)
    function = Function(tenant=tenant, created_by=actor[:200], retry_on=list(DEFAULT_RETRY_ON))
    _apply(function, fields, FUNCTION_FIELDS)
    raise_problems(function_problems(function))
    shown = _set_secret(function, secret, secret_env)
    _save_unique(function, "function")
    triggers.index_bump(tenant.id)
    return function, shown


def function_update(tenant, *, function_id, fields: dict, secret: str | None = None,
                    secret_env: dict | None = None, staff: bool = False) -> tuple[Function, str | None]:
    """Change a function; a real change bumps its version (executions record the version they ran). Returns
    it and the HMAC secret generated when it became an http function without one (shown once)."""
    with transaction.atomic():
        function = function_access_by_id(tenant, function_id, for_write=True)
        _staff_only(function.runtime, staff)
        _staff_only(fields.get("runtime", ""), staff)
        runtime_before = function.runtime
        changed = _apply(function, fields, FUNCTION_FIELDS)
        if function.runtime != runtime_before:
            function.secret_encrypted = ""  # one runtime's secret means nothing to another
        raise_problems(function_problems(function))
        shown = None
        if secret is not None or secret_env is not None or (function.runtime == Runtime.HTTP
                                                             and not function.has_secret):
            shown = _set_secret(function, secret, secret_env)
            changed = True
        if changed:
            function.version += 1
            _save_unique(function, "function")
            triggers.index_bump(tenant.id)
    return function, shown


def function_delete(tenant, *, function_id, staff: bool = False) -> None:
    with transaction.atomic():
        function = function_access_by_id(tenant, function_id, for_write=True)
        _staff_only(function.runtime, staff)
        function.delete()
        triggers.index_bump(tenant.id)


def _trigger_saved(trigger: FunctionTrigger) -> None:
    raise_problems(trigger_problems(trigger))
    if trigger.kind == TriggerKind.SCHEDULE:
        trigger.next_run_at = next_slot(trigger.config, timezone.now()) if trigger.enabled else None
    else:
        trigger.next_run_at = None
    trigger.save()
    triggers.index_bump(trigger.tenant_id)


def trigger_create(tenant, *, function_id, fields: dict) -> FunctionTrigger:
    with transaction.atomic():
        function = function_access_by_id(tenant, function_id)
        trigger = FunctionTrigger(tenant=tenant, function=function)
        _apply(trigger, fields, TRIGGER_FIELDS)
        _trigger_saved(trigger)
    return trigger


def trigger_update(tenant, *, trigger_id, fields: dict) -> FunctionTrigger:
    with transaction.atomic():
        trigger = trigger_access_by_id(tenant, trigger_id, for_write=True)
        _apply(trigger, fields, TRIGGER_FIELDS)
        _trigger_saved(trigger)
    return trigger


def trigger_delete(tenant, *, trigger_id) -> None:
    with transaction.atomic():
        trigger = trigger_access_by_id(tenant, trigger_id, for_write=True)
        trigger.delete()
        triggers.index_bump(tenant.id)


def chain_create(tenant, *, function_id, next_function_id, fields: dict) -> FunctionChain:
    function = function_access_by_id(tenant, function_id)
    try:
        following = function_access_by_id(tenant, next_function_id)
    except Exception as exc:
        raise ValidationError({"next_function": [getattr(exc, "message", "No such function.")]}) from None
    chain = FunctionChain(tenant=tenant, function=function, next_function=following)
    _apply(chain, fields, CHAIN_FIELDS)
    raise_problems(chain_problems(chain))
    chain.save()
    return chain


def chain_update(tenant, *, chain_id, fields: dict) -> FunctionChain:
    with transaction.atomic():
        chain = chain_access_by_id(tenant, chain_id, for_write=True)
        _apply(chain, fields, CHAIN_FIELDS)
        raise_problems(chain_problems(chain))
        chain.save()
    return chain


def chain_delete(tenant, *, chain_id) -> None:
    chain_access_by_id(tenant, chain_id).delete()


def _runnable(tenant, function_id, data) -> Function:
    function = function_access_by_id(tenant, function_id)
    if not function.enabled:
        raise Conflict(f"Function {function.name!r} is disabled.", code="function_disabled")
    if not isinstance(data, dict):
        raise InvalidRequest("`input` must be an object.", param="input")
    return function


def _plain(context: dict | None) -> dict:
    if context is not None and not isinstance(context, dict):
        raise InvalidRequest("`context` must be an object.", param="context")
    return orjson.loads(orjson.dumps(context or {}, default=str))


def function_execute(tenant, *, function_id, input: dict, trigger: str = "manual", context: dict | None = None,
                     strict: bool = False) -> FunctionExecution:
    """Record a pending execution and enqueue it (once the caller's transaction commits). `context` carries the
    facts and links (`workflow`, `instance_id`, `token_id`, `agent_execution_id`). `strict` refuses input that
    breaks the input schema with a 400 instead of recording a failed run."""
    function = _runnable(tenant, function_id, input)
    if strict and (problems := instance_problems(function.input_schema, input)):
        raise InvalidRequest("The input does not match the function's input schema: " + "; ".join(problems),
                             param="input", code="input_invalid")
    with transaction.atomic():
        execution = execution_create(function, input=input, trigger=trigger, context=_plain(context))
        enqueue(execution.id)
    return execution


def function_run_now(tenant, *, function_id, input: dict, trigger: str = "manual", context: dict | None = None,
                     timeout: float | None = None) -> FunctionExecution:
    """Run in this process (an agent's tool call inside its own task): schemas checked, the execution recorded,
    retries applied (waiting between attempts); returns the finished execution. `timeout` can only shorten
    the function's own."""
    function = _runnable(tenant, function_id, input)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise InvalidRequest("`timeout` must be a positive number of seconds.", param="timeout")
    execution = execution_create(function, input=input, trigger=trigger, context=_plain(context), timeout=timeout)
    execution_run(execution.id, 1, defer_retries=False)
    return FunctionExecution.objects.select_related("function").get(pk=execution.pk)


def execution_cancel(tenant, *, execution_id) -> FunctionExecution:
    """Cancel a pending or running execution: a pending one never starts, a running command is killed, and any
    other running attempt's result is dropped."""
    execution = execution_access_by_id(tenant, execution_id)
    now = timezone.now()
    cancelled = FunctionExecution.objects.filter(
        pk=execution.pk, status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING],
    ).update(status=ExecutionStatus.CANCELLED, finished_at=now, next_attempt_at=None,
             error="Cancelled.", error_code="cancelled")
    execution.refresh_from_db()
    if not cancelled:
        raise Conflict(f"The execution is already {execution.status}.", code="execution_finished")
    return execution


def execution_wait(execution: FunctionExecution, timeout: float) -> FunctionExecution:
    """The execution once it finished, or as it is after `timeout` seconds."""
    deadline = time.monotonic() + max(0.0, timeout)
    while execution.status not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.05)
        latest = FunctionExecution.objects.select_related("function").filter(pk=execution.pk).first()
        if latest is None:  # its function was deleted meanwhile: answer with what was last seen
            break
        execution = latest
    return execution


def event_emit(tenant, *, name: str, data: dict) -> list[FunctionExecution]:
    """A named custom event: starts the tenant's `custom` triggers of that name whose conditions hold."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("`name` must be a non-empty string.", param="name")
    if not isinstance(data, dict):
        raise InvalidRequest("`data` must be an object.", param="data")
    return triggers.custom_event_emit(tenant.id, name=name.strip(), data=data)


EXAMPLES_DIR = Path(settings.BASE_DIR) / "examples" / "functions"


def examples_load(*, tenant, actor: str = "examples") -> list[Function]:
    """Create the functions of examples/functions/*.yaml (with their triggers) that `tenant` lacks by name."""
    loaded = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text()).get("functions", []):
            fields = {k: v for k, v in raw.items() if k != "triggers"}
            if Function.objects.filter(tenant=tenant, name=fields["name"]).exists():
                continue
            with transaction.atomic():
                function, _ = function_create(tenant, fields=fields, actor=actor)
                for trigger in raw.get("triggers", []):
                    trigger_create(tenant, function_id=function.id, fields=trigger)
            loaded.append(function)
    return loaded
