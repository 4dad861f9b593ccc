"""Triggers: which functions an event starts, and starting them.

Workflow events arrive through the outbox listener, in the thread that committed them, so the listener only
reads a per-process index of the tenant's triggers (rebuilt when the tenant's trigger version in Redis
changes, checked at most every INDEX_MAX_AGE seconds), evaluates conditions, records executions and enqueues
them; it never runs a function itself (except under eager Celery, the embedded default, where enqueueing is
running). Schedules are started by a beat task
that claims each due slot with one conditional UPDATE, so two beats start a slot once."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from django.db import transaction
from django.utils import timezone

from apps.core import redis as cb_redis
from apps.rules.engine import Compiled, RuleError, compile_condition, passes
from apps.rules.selectors import named_rules_for

from .launch import enqueue, execution_create
from .mapping import MappingError, build_input
from .models import ExecutionStatus, Function, FunctionTrigger, TriggerKind
from .validation import next_slot

logger = logging.getLogger("apps.functions")

# The workflow outbox's event types → the trigger kinds they start.
EVENT_KINDS = {"token_created": TriggerKind.TOKEN_CREATED, "transition_fired": TriggerKind.TOKEN_TRANSITIONED,
               "token_updated": TriggerKind.TOKEN_UPDATED, "instance_completed": TriggerKind.INSTANCE_COMPLETED,
               "workflow_saved": TriggerKind.WORKFLOW_SAVED}
SCHEDULE_BATCH = 200


@dataclass(frozen=True)
class TriggerSpec:
    id: uuid.UUID
    function_id: uuid.UUID
    kind: str
    workflow: str
    config: dict
    condition: Compiled | None
    mapping: dict


# tenant id → (version, checked at (monotonic), {kind: [TriggerSpec]}). The version lives in Redis (one key
# per tenant) when Redis is configured; a process re-reads it at most every INDEX_MAX_AGE seconds, so a trigger
# saved in another process starts matching within that (at once in the saving process).
INDEX_MAX_AGE = 0.5
_index: dict = {}
_index_lock = threading.Lock()


def _version_key(tenant_id) -> str:
    return f"cb:functions:triggers:{tenant_id}"


def index_bump(tenant_id) -> None:
    """After the current transaction commits, every process rebuilds this tenant's index (this one at once)."""
    def bump():
        with _index_lock:
            _index.pop(tenant_id, None)
        if cb_redis.configured():
            try:
                cb_redis.sync_client().set(_version_key(tenant_id), uuid.uuid4().hex)
            except Exception as exc:  # a save must not fail because Redis is away; others see it on their rebuild
                logger.warning("could not bump the trigger index version: %s", type(exc).__name__)

    transaction.on_commit(bump)


def _shared_version(tenant_id) -> str:
    if not cb_redis.configured():
        return "local"  # one process (the embedded default): bumps drop the entry directly
    try:
        value = cb_redis.sync_client().get(_version_key(tenant_id))
    except Exception:  # Redis away: keep what this process has
        return _index[tenant_id][0] if tenant_id in _index else "unknown"
    return value.decode() if value else "0"


def tenant_triggers(tenant_id, kind: str) -> list[TriggerSpec]:
    """The tenant's enabled triggers of `kind` (not schedules), from this process's index."""
    now = time.monotonic()
    entry = _index.get(tenant_id)
    if entry is None or now - entry[1] > INDEX_MAX_AGE:
        version = _shared_version(tenant_id)
        if entry is None or entry[0] != version:
            entry = (version, now, _build(tenant_id))
        else:
            entry = (version, now, entry[2])
        with _index_lock:
            _index[tenant_id] = entry
    return entry[2].get(kind, [])


def _build(tenant_id) -> dict[str, list[TriggerSpec]]:
    rows = list(FunctionTrigger.objects.filter(tenant_id=tenant_id, enabled=True, function__enabled=True)
                .exclude(kind=TriggerKind.SCHEDULE))
    named = named_rules_for(tenant=tenant_id) if any(r.condition for r in rows) else {}
    built: dict[str, list[TriggerSpec]] = {}
    for row in rows:
        try:
            condition = compile_condition(row.condition, named=named) if row.condition else None
        except RuleError as exc:  # a named rule it used was changed or removed: the trigger stays off
            logger.warning("function trigger %s: condition no longer compiles: %s", row.id, exc.message)
            continue
        built.setdefault(row.kind, []).append(TriggerSpec(row.id, row.function_id, row.kind, row.workflow,
                                                          row.config or {}, condition, row.input_mapping or {}))
    return built


def _jsonable(value):
    return orjson.loads(orjson.dumps(value, default=str))


def event_facts(event) -> dict:
    """What a workflow event's triggers see: `data` (the token's data), `event` (type and the event's other
    fields), and the links."""
    fields = dict(event.data or {})
    data = fields.pop("data", None)
    return _jsonable({"event": {"type": event.type, "id": event.id, **fields},
                      "data": data if isinstance(data, dict) else {}, "workflow": event.workflow,
                      "instance_id": event.instance_id, "token_id": event.token_id})


def matches(spec: TriggerSpec, facts: dict) -> bool:
    event, config = facts.get("event") or {}, spec.config
    if spec.workflow and facts.get("workflow") != spec.workflow:
        return False
    if spec.kind == TriggerKind.TOKEN_CREATED and config.get("place") and event.get("place") != config["place"]:
        return False
    if spec.kind == TriggerKind.TOKEN_TRANSITIONED and not _transition_matches(config, event):
        return False
    if spec.kind == TriggerKind.FUNCTION_COMPLETED:
        if config.get("function_id") and event.get("function_id") != config["function_id"]:
            return False
        if config.get("success") is not None and event.get("success") is not config["success"]:
            return False
    if spec.kind == TriggerKind.CUSTOM and event.get("name") != config.get("name"):
        return False
    return spec.condition is None or passes(spec.condition, facts)


def _transition_matches(config: dict, event: dict) -> bool:
    if config.get("transition") and config["transition"] not in (event.get("transition"), event.get("fired")):
        return False
    if config.get("from_place") and config["from_place"] not in (event.get("from_places") or []):
        return False
    return not (config.get("to_place") and config["to_place"] not in (event.get("to_places") or []))


def start(function: Function, *, mapping: dict, facts: dict, trigger: str, trigger_ref_id=None, parent=None,
          countdown: float = 0.0, extra_context: dict | None = None):
    """Record an execution with the input `mapping` makes of `facts` and enqueue it; a mapping that fails is
    recorded as a failed execution (it shows where the user looks)."""
    context = {**facts, **(extra_context or {})}
    try:
        data = build_input(mapping, facts)
    except MappingError as exc:
        return execution_create(function, input={}, trigger=trigger, context=context,
                                trigger_ref_id=trigger_ref_id, parent=parent, status=ExecutionStatus.FAILED,
                                error=f"Input mapping: {exc}", error_code="input_invalid")
    execution = execution_create(function, input=data, trigger=trigger, context=context,
                                 trigger_ref_id=trigger_ref_id, parent=parent, due_in=countdown)
    enqueue(execution.id, countdown=countdown)
    return execution


def fire_matching(tenant_id, kind: str, facts: dict, *, parent=None) -> list:
    specs = [spec for spec in tenant_triggers(tenant_id, kind) if matches(spec, facts)]
    if not specs:
        return []
    functions = Function.objects.in_bulk({spec.function_id for spec in specs})
    started = []
    for spec in specs:
        function = functions.get(spec.function_id)
        if function is None or not function.enabled:
            continue
        started.append(start(function, mapping=spec.mapping, facts=facts, trigger=kind, trigger_ref_id=spec.id,
                             parent=parent))
    return started


def workflow_events_committed(events: Sequence) -> None:
    """The outbox listener: start the triggers the committed workflow events match."""
    for event in events:
        kind = EVENT_KINDS.get(event.type)
        if kind is None or not tenant_triggers(event.tenant_id, kind):
            continue  # the common case: a dict lookup, and a Redis GET at most every INDEX_MAX_AGE
        try:
            fire_matching(event.tenant_id, kind, event_facts(event))
        except Exception:  # one bad trigger must not stop the others, nor reach the committing caller
            logger.exception("function triggers for workflow event %s failed", event.type)


def custom_event_emit(tenant_id, *, name: str, data: dict) -> list:
    facts = _jsonable({"event": {"type": "custom", "name": name}, "data": data})
    with transaction.atomic():
        return fire_matching(tenant_id, TriggerKind.CUSTOM, facts)


def schedules_due(now=None) -> int:
    """Start every schedule whose slot has come, once: the UPDATE that moves `next_run_at` past the slot is the
    claim, and only the process whose UPDATE matched starts it. Missed slots are not made up."""
    now = now or timezone.now()
    due = list(FunctionTrigger.objects.filter(kind=TriggerKind.SCHEDULE, enabled=True, function__enabled=True,
                                              next_run_at__lte=now).select_related("function")[:SCHEDULE_BATCH])
    started = 0
    for trigger in due:
        slot = trigger.next_run_at
        following = next_slot(trigger.config, max(slot, now))
        with transaction.atomic():
            claimed = FunctionTrigger.objects.filter(pk=trigger.pk, next_run_at=slot, enabled=True).update(
                next_run_at=following, last_run_at=now)
            if not claimed:
                continue
            when = slot.isoformat().replace("+00:00", "Z")
            facts = {"event": {"type": "schedule", "trigger_id": str(trigger.id), "scheduled_for": when},
                     "data": {"scheduled_for": when}}
            start(trigger.function, mapping=trigger.input_mapping, facts=facts, trigger=TriggerKind.SCHEDULE,
                  trigger_ref_id=trigger.id)
            started += 1
    return started
