"""Firing a transition: one transaction with the instance row locked, then token rows, history and outbox
events written together; automatic and delayed transitions scheduled after the commit.

Statements for a firing on Postgres: lock the instance (found directly or through the token) and read the active
tokens (two statements in one round trip) / one statement writing token rows, history, events and the instance
(data-modifying CTEs) — asserted in tests/workflows/test_firing.py. Other databases (the embedded SQLite) go
through the ORM: a statement per kind of row.
"""

from __future__ import annotations

import threading
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.core.errors import InvalidRequest, NotFound

from . import firing_sql, outbox
from .engine import FiringPlan, Net, TokenView, TransitionNotEnabled, enabled, fire, plan, select_tokens
from .engine.firing import missing_tokens
from .guards import guard_check
from .models import InstanceStatus, Token, TokenHistory, TokenStatus, WorkflowEvent, WorkflowInstance
from .netcache import net_for_version
from .selectors import guard_facts

MAX_LEAD_TRIES = 50  # an instance-level fire tries this many candidate tokens against the guard
TASK_AUTOMATIC = "workflows.fire_automatic"
TASK_DELAYED = "workflows.fire_delayed"
_LEAN: ContextVar = ContextVar("workflows_lean_transaction", default=None)
SQL_FAST_PATH = True  # tests switch it off to run the ORM path (the embedded SQLite's) on Postgres too


@dataclass
class FireResult:
    instance: WorkflowInstance
    token_id: str | None  # the token that continued (the one named, on a 1-in-1-out transition)
    plan: FiringPlan
    created: list[str]
    guard: dict


def data_change(before: dict, after: dict) -> dict:
    """Top-level difference, for the history: keys set (new or changed) and keys removed."""
    before, after = before or {}, after or {}
    return {"set": {k: v for k, v in after.items() if k not in before or before[k] != v},
            "removed": [k for k in before if k not in after]}


def use_sql() -> bool:
    """Postgres takes the hand-written statements of `firing_sql`; other databases (the embedded SQLite) the ORM."""
    return SQL_FAST_PATH and connection.vendor == "postgresql"


def lock_instance(tenant, *, instance_id=None, token_id=None) -> WorkflowInstance:
    """The instance row, locked, found directly or through one of its tokens (one statement either way)."""
    if use_sql():
        instance = firing_sql.lock_instance(tenant.pk, instance_id=instance_id, token_id=token_id)
        if instance is None:
            label, value = ("token", token_id) if token_id is not None else ("workflow instance", instance_id)
            raise NotFound(f"No {label} with id {value!r}.")
        return instance
    rows = WorkflowInstance.objects.select_for_update(of=("self",)).select_related("definition").filter(tenant=tenant)
    try:
        if token_id is not None:
            instance = rows.filter(tokens__id=uuid.UUID(str(token_id))).first()
        else:
            instance = rows.filter(pk=uuid.UUID(str(instance_id))).first()
    except ValueError:
        instance = None
    if instance is None:
        label, value = ("token", token_id) if token_id is not None else ("workflow instance", instance_id)
        raise NotFound(f"No {label} with id {value!r}.")
    return instance


def read_tokens(instance, *, rows=None) -> tuple[list[TokenView], dict[str, list[TokenView]]]:
    """The active tokens (read after the lock is held, in their own statement: a join in the locking statement
    could return rows from before a concurrent firing committed). `rows`: already read with the lock."""
    if rows is not None:
        pass
    elif use_sql():
        rows = firing_sql.active_tokens(instance.id)
    else:
        rows = Token.objects.filter(instance_id=instance.id, status=TokenStatus.ACTIVE).values_list(
            "id", "place", "data", "metadata", "arrived_at")
    tokens = [TokenView(str(i), place, data, metadata, (arrived, str(i))) for i, place, data, metadata, arrived in rows]
    by_place: dict[str, list[TokenView]] = {}
    for tok in tokens:
        by_place.setdefault(tok.place, []).append(tok)
    return tokens, by_place


def transition_fire(tenant, *, transition_id: str, token_id=None, instance_id=None, data: dict | None = None,
                    actor: str = "", expect_fire_count: int | None = None) -> FireResult:
    """Fire `transition_id` on the instance (or the instance of `token_id`, which then is the token that
    continues). Raises NotFound, InvalidRequest (unknown transition, bad data) or TransitionNotEnabled (409)."""
    if (token_id is None) == (instance_id is None):
        raise InvalidRequest("Name exactly one of token_id and instance_id.")
    if data is not None and not isinstance(data, dict):
        raise InvalidRequest("`data` must be an object.", param="data")
    if use_sql() and connection.get_autocommit() and not connection.in_atomic_block:
        return _fire_lean(tenant, transition_id=transition_id, token_id=token_id, instance_id=instance_id,
                          data=data, actor=actor, expect_fire_count=expect_fire_count)
    with transaction.atomic():
        rows = None
        if use_sql():
            locked = firing_sql.lock_and_read(tenant.pk, instance_id=instance_id, token_id=token_id)
            if locked is None:
                label, value = ("token", token_id) if token_id is not None else ("workflow instance", instance_id)
                raise NotFound(f"No {label} with id {value!r}.")
            instance, rows = locked
        else:
            instance = lock_instance(tenant, instance_id=instance_id, token_id=token_id)
        result = _fire_locked(instance, transition_id=transition_id, token_id=token_id and str(token_id),
                              patch=data, actor=actor, expect_fire_count=expect_fire_count, rows=rows)
    return result


def _fire_lean(tenant, *, transition_id, token_id, instance_id, data, actor, expect_fire_count) -> FireResult:
    """`transition_fire` in two round trips (Postgres, no surrounding transaction): see LeanTransaction."""
    with firing_sql.LeanTransaction() as tx:
        locked = tx.lock_and_read(tenant.pk, instance_id=instance_id, token_id=token_id)
        if locked is None:
            label, value = ("token", token_id) if token_id is not None else ("workflow instance", instance_id)
            raise NotFound(f"No {label} with id {value!r}.")
        instance, rows = locked
        reset = _LEAN.set(tx)
        try:
            result = _fire_locked(instance, transition_id=transition_id, token_id=token_id and str(token_id),
                                  patch=data, actor=actor, expect_fire_count=expect_fire_count, rows=rows)
        finally:
            _LEAN.reset(reset)
    for callback in tx.after_commit:
        callback()
    return result


def _fire_locked(instance, *, transition_id, token_id, patch, actor, expect_fire_count=None,
                 rows=None) -> FireResult:
    if instance.status != InstanceStatus.RUNNING:
        raise TransitionNotEnabled(f"The instance is {instance.status}; nothing fires any more.",
                                   explanation={"instance_status": instance.status})
    if expect_fire_count is not None and instance.fire_count != expect_fire_count:
        raise TransitionNotEnabled("The instance changed since this firing was scheduled.",
                                   explanation={"fire_count": instance.fire_count})
    net, named = net_for_version(instance.version_id)
    candidates = net.transitions_named(str(transition_id))
    if not candidates:
        raise InvalidRequest(f"Workflow {instance.definition.slug!r} has no transition {transition_id!r}.",
                             param="transition_id", code="unknown_transition")
    tokens, by_place = read_tokens(instance, rows=rows)
    marking = {p: len(v) for p, v in by_place.items()}
    if token_id is not None and not any(t.id == token_id for t in tokens):
        raise TransitionNotEnabled(f"Transition {transition_id!r} is no longer enabled: token {token_id} has been "
                                   "consumed by another firing.", explanation={"token": token_id, "active": False})
    reasons = []
    for t in candidates:
        inputs = {a.place for a in t.inputs}
        if token_id is not None:
            place = next(tok.place for tok in tokens if tok.id == token_id)
            if place not in inputs:
                reasons.append({"transition": t.id, "token_place": place, "input_places": sorted(inputs)})
                continue
        if not enabled(net, marking, t):
            reasons.append({"transition": t.id, "missing": missing_tokens(marking, t),
                            "capacity_exceeded": not missing_tokens(marking, t)})
            continue
        leads = [token_id] if token_id else [tok.id for tok in sorted(by_place[t.inputs[0].place],
                                                                      key=lambda k: k.order)][:MAX_LEAD_TRIES]
        for lead in leads:
            firing = plan(t, select_tokens(t, by_place, lead=lead), lead=lead, patch=patch)
            passed, explanation = guard_check(version_id=instance.version_id, transition=t, named=named,
                                              facts=guard_facts(instance, firing, actor=actor))
            if passed:
                created = _apply(instance, net, firing, marking, actor=actor)
                return FireResult(instance, firing.continuing, firing, created, explanation)
            reasons.append({"transition": t.id, "token": lead, "guard": explanation})
    raise TransitionNotEnabled(_refusal(transition_id, reasons), explanation={"reasons": reasons})


def _refusal(transition_id, reasons) -> str:
    if any("guard" in r for r in reasons):
        return f"Transition {transition_id!r} is not enabled: its guard does not hold."
    if any("token_place" in r for r in reasons):
        r = next(r for r in reasons if "token_place" in r)
        return (f"Transition {transition_id!r} is no longer enabled for this token: it is in {r['token_place']!r}, "
                f"the transition takes from {', '.join(map(repr, r['input_places']))}.")
    return f"Transition {transition_id!r} is no longer enabled: its input places lack tokens."


@dataclass
class Writes:
    """The rows one firing changes; written by the ORM, or on Postgres in one statement (`firing_sql`)."""

    instance: WorkflowInstance
    now: datetime
    moved: tuple[str, str, dict, dict] | None  # (token id, place, data, metadata)
    consumed: list[str]
    merged_into: str | None
    children: list[Token]
    history: list[TokenHistory]
    events: list[WorkflowEvent]


def _apply(instance, net: Net, firing: FiringPlan, marking: dict, *, actor: str) -> list[str]:
    now = timezone.now()
    t = firing.transition
    taken = {tok.id: tok for tok in firing.taken}
    history, children, moved = [], [], None
    if firing.continuing is not None:
        lead = taken[firing.continuing]
        moved = (lead.id, firing.continuing_to, firing.data, firing.metadata)
        history.append(TokenHistory(token_id=lead.id, instance_id=instance.id, at=now, kind="moved", transition=t.id,
                                    from_place=lead.place, to_place=firing.continuing_to, actor=actor,
                                    data_change=data_change(lead.data, firing.data)))
    history += [TokenHistory(token_id=i, instance_id=instance.id, at=now, kind="consumed", transition=t.id,
                             from_place=taken[i].place, to_place=firing.continuing_to or "", actor=actor)
                for i in firing.consumed]
    if firing.children:
        children = [Token(id=uuid.uuid4(), tenant_id=instance.tenant_id, instance_id=instance.id, place=child.place,
                          status=TokenStatus.ACTIVE, data=firing.data, metadata=firing.metadata,
                          parents=list(child.parents), arrived_at=now, created_at=now, updated_at=now)
                    for child in firing.children]
        history += [TokenHistory(token_id=c.id, instance_id=instance.id, at=now, kind="created", transition=t.id,
                                 to_place=c.place, actor=actor, data_change=data_change({}, firing.data))
                    for c in children]
    created = [str(c.id) for c in children]
    after = fire(marking, t)
    events = [_event(instance, "transition_fired", now, token_id=firing.continuing, data={
        "transition": t.origin or t.id, "fired": t.id, "from_places": firing.from_places,
        "to_places": firing.to_places, "token_id": firing.continuing, "consumed": list(firing.consumed),
        "created": created, "actor": actor, "marking": after, "data": firing.data})]
    instance.fire_count += 1
    events += settle(instance, net, after, now, previous=marking)
    writes = Writes(instance, now, moved, list(firing.consumed), firing.continuing, children, history, events)
    outbox.notify_on_commit(events, on_commit=_on_commit)
    lean = _LEAN.get()
    if lean is not None:
        lean.write_and_commit(writes)
    elif use_sql():
        firing_sql.write(writes)
    else:
        _write_orm(writes)
    return created


def _write_orm(w: Writes) -> None:
    if w.moved is not None:
        token_id, place, data, metadata = w.moved
        Token.objects.filter(pk=token_id).update(place=place, data=data, metadata=metadata, arrived_at=w.now,
                                                 updated_at=w.now)
    if w.consumed:
        Token.objects.filter(pk__in=w.consumed).update(status=TokenStatus.CONSUMED, merged_into=w.merged_into,
                                                       updated_at=w.now)
    if w.children:
        Token.objects.bulk_create(w.children)
    TokenHistory.objects.bulk_create(w.history)
    WorkflowEvent.objects.bulk_create(w.events)
    i = w.instance
    WorkflowInstance.objects.filter(pk=i.pk).update(
        marking=i.marking, status=i.status, enabled_since=i.enabled_since, next_due_at=i.next_due_at,
        fire_count=i.fire_count, updated_at=w.now, finished_at=i.finished_at)


def _event(instance, type_, now, *, token_id=None, data=None) -> WorkflowEvent:
    return WorkflowEvent(tenant_id=instance.tenant_id, workflow=instance.definition.slug, instance_id=instance.id,
                         token_id=token_id, type=type_, data=data or {}, created_at=now)


def settle(instance, net: Net, marking: dict, now: datetime, *, previous: dict | None) -> list[WorkflowEvent]:
    """Set the instance's marking, status, delayed-transition clocks and schedule what fires by itself (after
    the commit). Returns the status event to write, if the status changed."""
    instance.marking = marking
    ready = [t for t in net.transitions if enabled(net, marking, t)]
    status = InstanceStatus.RUNNING
    if net.is_final(marking):
        error_places = {p.id for p in net.places if p.kind == "error"}
        status = InstanceStatus.FAILED if any(p in error_places for p in marking) else InstanceStatus.COMPLETED
    elif not ready:
        status = InstanceStatus.DEADLOCKED
    events = []
    if status != instance.status or previous is None:
        if status != InstanceStatus.RUNNING:
            instance.finished_at = now
            events.append(_event(instance, f"instance_{status}", now, data={"marking": marking}))
        instance.status = status
    since = dict(instance.enabled_since or {})
    timed = {t.id: t for t in ready if t.timed} if status == InstanceStatus.RUNNING else {}
    since = {tid: at for tid, at in since.items() if tid in timed}
    newly = [t for tid, t in timed.items() if tid not in since]
    for t in newly:
        since[t.id] = now.isoformat()
    instance.enabled_since = since
    due = [datetime.fromisoformat(at) + timedelta(seconds=timed[tid].delay_seconds) for tid, at in since.items()]
    instance.next_due_at = min(due) if due else None
    if status == InstanceStatus.RUNNING:
        _schedule(instance, newly, automatic=any(t.automatic and not t.timed for t in ready))
    return events


def _schedule(instance, newly_timed, *, automatic: bool) -> None:
    instance_id, fire_count = str(instance.id), instance.fire_count
    if automatic:
        _on_commit(lambda: current_app.tasks[TASK_AUTOMATIC].delay(instance_id, fire_count))
    for t in newly_timed:
        args = (instance_id, t.id, instance.enabled_since[t.id])
        _on_commit(lambda args=args, delay=t.delay_seconds: _fire_later(args, delay))


def _fire_later(args, delay: float) -> None:
    if current_app.conf.task_always_eager:
        # The embedded default has no broker to hold a countdown (an eager task would run now and find it too
        # early) and no beat: a timer in this process fires it (a restart loses it until `fire_due` runs).
        timer = threading.Timer(delay, _fire_delayed_in_thread, args)
        timer.daemon = True
        timer.start()
    else:
        current_app.tasks[TASK_DELAYED].apply_async(args, countdown=delay)


def _fire_delayed_in_thread(*args) -> None:
    try:
        fire_delayed(*args)
    finally:
        connections.close_all()


def _on_commit(callback) -> None:
    lean = _LEAN.get()
    if lean is not None:
        lean.after_commit.append(callback)
    else:
        transaction.on_commit(callback)


def fire_automatic(instance_id: str, fire_count: int) -> bool:
    """Fire one enabled automatic transition whose guard holds, if the instance is still as it was when this was
    scheduled (so a retried task never fires twice). True when something fired."""
    with transaction.atomic():
        try:
            instance = WorkflowInstance.objects.select_for_update(of=("self",)).select_related(
                "definition").get(pk=instance_id)
        except WorkflowInstance.DoesNotExist:
            return False
        if instance.status != InstanceStatus.RUNNING or instance.fire_count != fire_count:
            return False
        net, _ = net_for_version(instance.version_id)
        for t in net.transitions:
            if t.automatic and not t.timed:
                try:
                    _fire_locked(instance, transition_id=t.id, token_id=None, patch=None, actor="system:automatic")
                except TransitionNotEnabled:
                    continue
                return True
    return False


def fire_delayed(instance_id: str, transition_id: str, enabled_since: str) -> bool:
    """Fire a delayed transition if it has stayed enabled since `enabled_since` for its delay."""
    with transaction.atomic():
        try:
            instance = WorkflowInstance.objects.select_for_update(of=("self",)).select_related(
                "definition").get(pk=instance_id)
        except WorkflowInstance.DoesNotExist:
            return False
        if instance.status != InstanceStatus.RUNNING or instance.enabled_since.get(transition_id) != enabled_since:
            return False
        net, _ = net_for_version(instance.version_id)
        t = net.transition(transition_id)
        if timezone.now() < datetime.fromisoformat(enabled_since) + timedelta(seconds=t.delay_seconds):
            return False
        try:
            _fire_locked(instance, transition_id=transition_id, token_id=None, patch=None, actor="system:delay")
        except TransitionNotEnabled:
            return False
    return True


def fire_due(*, limit: int = 500) -> int:
    """The beat sweep: fire delayed transitions whose time has come (a safety net for lost countdown tasks)."""
    fired = 0
    due = list(WorkflowInstance.objects.filter(status=InstanceStatus.RUNNING, next_due_at__lte=timezone.now())
               .order_by("next_due_at").values_list("id", "enabled_since")[:limit])
    for instance_id, since in due:
        for transition_id, at in sorted(since.items(), key=lambda kv: kv[1]):
            fired += fire_delayed(str(instance_id), transition_id, at)
    return fired
