"""Writes: definitions (versioned, validated and analysed at save time), instances, tokens, cancellation.
Firing lives in `firing.py` (`transition_fire` is re-exported here). Keyword-only, tenant first."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidRequest, NotFound

from . import outbox
from .access import workflow_access_by_id
from .engine import DefinitionInvalid, analyse, deep_merge, export_definition, parse_definition, structural_problems
from .engine.analysis import DEFAULT_CAP
from .firing import _event, data_change, lock_instance, read_tokens, settle, transition_fire
from .guards import guard_problems, named_rules
from .models import (
    InstanceStatus,
    Token,
    TokenHistory,
    TokenStatus,
    WorkflowDefinition,
    WorkflowEvent,
    WorkflowInstance,
    WorkflowVersion,
)
from .netcache import net_for_version

__all__ = ["examples_load", "instance_cancel", "instance_create", "instance_fail", "token_create",
           "token_update_data", "transition_fire", "workflow_delete", "workflow_save"]

EXAMPLES_DIR = Path(settings.BASE_DIR) / "examples" / "workflows"


def definition_check(tenant, raw, *, strict: bool = False, cap: int = DEFAULT_CAP):
    """(net, canonical definition, analysis, named rules) of `raw`, or DefinitionInvalid listing every problem."""
    problems: list[str] = []
    net = parse_definition(raw, problems=problems)
    named = named_rules(tenant=tenant)
    used: set[str] = set()
    if net is not None:
        problems += structural_problems(
            net, compile_guard=lambda parts: guard_problems(parts, named=named, references=used))
    if problems:
        raise DefinitionInvalid(problems)
    named = {name: named[name] for name in sorted(used) if name in named}  # what the version keeps
    analysis = analyse(net, cap=cap)
    if strict and not analysis.sound:
        raise DefinitionInvalid([f"Not sound: {f.message}" + (f" (path: {' → '.join(f.path)})" if f.path else "")
                                 for f in analysis.findings] or ["Not sound."], analysis=analysis.as_dict())
    return net, export_definition(net), analysis, named


def workflow_save(tenant, *, definition: dict, source_format: str = "json", strict: bool = False,
                  actor: str = "", expected_id: str | None = None) -> tuple[WorkflowDefinition, WorkflowVersion, bool]:
    """Create or update the workflow `definition["id"]`. A changed net becomes a new version (instances keep
    theirs); an unchanged one changes nothing. Returns (workflow, its current version, whether one was added)."""
    net, canonical, analysis, named = definition_check(tenant, definition, strict=strict)
    if expected_id is not None and net.id != expected_id:
        raise InvalidRequest(f"The definition's id {net.id!r} differs from the workflow {expected_id!r} it saves.",
                             param="id")
    # The named rules the guards use count: re-saving after a named rule changed makes a new version.
    digest = hashlib.sha256(json.dumps([canonical, named], sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        workflow, _ = WorkflowDefinition.objects.select_for_update().get_or_create(
            tenant=tenant, slug=net.id, defaults={"name": net.name, "description": net.description})
        current = workflow.current_version
        if current is not None and current.digest == digest:
            return workflow, current, False
        number = (current.number if current else 0) + 1
        version = WorkflowVersion.objects.create(
            definition=workflow, number=number, net=canonical, source=definition, source_format=source_format,
            named_rules=named, analysis=analysis.as_dict(), sound=analysis.sound, digest=digest, created_by=actor)
        workflow.current_version = version
        workflow.name, workflow.description = net.name, net.description
        workflow.save(update_fields=["current_version", "name", "description", "updated_at"])
        _event_write(tenant=tenant, workflow=workflow.slug, type="workflow_saved",
                     data={"version": number, "sound": analysis.sound, "actor": actor},
                     created_at=timezone.now())
    return workflow, version, True


def _event_write(**fields) -> None:
    outbox.notify_on_commit([WorkflowEvent.objects.create(**fields)])


def workflow_delete(tenant, *, workflow: WorkflowDefinition, actor: str = "") -> None:
    """Delete a workflow with its versions and finished instances; refused while an instance runs."""
    with transaction.atomic():
        workflow = workflow_access_by_id(tenant, workflow.slug, for_write=True)
        if WorkflowInstance.objects.filter(definition=workflow, status=InstanceStatus.RUNNING).exists():
            raise Conflict(f"Workflow {workflow.slug!r} has running instances; cancel them first.",
                           code="workflow_in_use")
        _event_write(tenant=tenant, workflow=workflow.slug, type="workflow_deleted",
                     data={"actor": actor}, created_at=timezone.now())
        workflow.delete()


def instance_fail(tenant, *, instance_id, reason: str, actor: str = "") -> WorkflowInstance:
    """Mark a running (or deadlocked) instance failed, e.g. when an agent or function acting on it gives up."""
    with transaction.atomic():
        instance = lock_instance(tenant, instance_id=instance_id)
        if instance.status not in (InstanceStatus.RUNNING, InstanceStatus.DEADLOCKED):
            raise Conflict(f"The instance is already {instance.status}.", code="instance_finished")
        now = timezone.now()
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            status=InstanceStatus.FAILED, finished_at=now, enabled_since={}, next_due_at=None, updated_at=now)
        _event_write(tenant=tenant, workflow=instance.definition.slug, instance_id=instance.id,
                     type="instance_failed", created_at=now,
                     data={"actor": actor, "reason": reason, "marking": instance.marking})
    return WorkflowInstance.objects.get(pk=instance.pk)


def _json_object(value, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{name}` must be an object.", param=name)
    return value


def instance_create(tenant, *, workflow_id: str, data: dict | None = None, metadata: dict | None = None,
                    actor: str = "", version: int | None = None) -> WorkflowInstance:
    """A new case on the workflow's current version (or `version`), its initial marking filled with tokens that
    carry `data`."""
    data, metadata = _json_object(data, "data"), _json_object(metadata, "metadata")
    with transaction.atomic():
        instance, net = _new_instance(tenant, workflow_id, actor=actor, version=version)
        now = timezone.now()
        tokens = [Token(id=uuid.uuid4(), tenant=tenant, instance=instance, place=place, data=data, metadata=metadata,
                        arrived_at=now) for place, count in net.initial_marking for _ in range(count)]
        _tokens_born(instance, net, tokens, now, actor=actor)
    return instance


def token_create(tenant, *, place: str, workflow_id: str | None = None, instance_id=None, data: dict | None = None,
                 metadata: dict | None = None, actor: str = "") -> Token:
    """A token in `place` (the seeds' createToken): in a new instance of `workflow_id` that starts with only this
    token, or added to `instance_id`'s marking."""
    data, metadata = _json_object(data, "data"), _json_object(metadata, "metadata")
    if (workflow_id is None) == (instance_id is None):
        raise InvalidRequest("Name exactly one of workflow_id (a new instance) and instance_id.")
    with transaction.atomic():
        if instance_id is not None:
            instance = lock_instance(tenant, instance_id=instance_id)
            if instance.status not in (InstanceStatus.RUNNING, InstanceStatus.DEADLOCKED):
                raise Conflict(f"The instance is {instance.status}; it takes no new tokens.",
                               code="instance_not_running")
            net, _ = net_for_version(instance.version_id)
        else:
            instance, net = _new_instance(tenant, workflow_id, actor=actor)
        if not net.has_place(str(place)):
            raise InvalidRequest(f"Workflow {instance.definition.slug!r} has no place {place!r}.", param="place")
        now = timezone.now()
        token = Token(id=uuid.uuid4(), tenant=tenant, instance=instance, place=place, data=data, metadata=metadata,
                      arrived_at=now)
        if instance.status == InstanceStatus.DEADLOCKED:
            instance.status, instance.finished_at = InstanceStatus.RUNNING, None  # a new token may unblock it
        _tokens_born(instance, net, [token], now, actor=actor, existing=instance_id is not None)
    return token


def _new_instance(tenant, workflow_id, *, actor, version=None):
    workflow = workflow_access_by_id(tenant, workflow_id)
    chosen = workflow.current_version
    if version is not None:
        chosen = WorkflowVersion.objects.filter(definition=workflow, number=version).first()
        if chosen is None:
            raise NotFound(f"Workflow {workflow.slug!r} has no version {version!r}.")
    if chosen is None:
        raise Conflict(f"Workflow {workflow.slug!r} has no saved version.", code="workflow_without_version")
    net, _ = net_for_version(chosen.id, version=chosen)
    instance = WorkflowInstance.objects.create(tenant=tenant, definition=workflow, version=chosen, created_by=actor)
    instance.definition = workflow
    return instance, net


def _tokens_born(instance, net, tokens, now, *, actor, existing=False) -> None:
    Token.objects.bulk_create(tokens)
    TokenHistory.objects.bulk_create([TokenHistory(token=t, instance=instance, at=now, kind="created", to_place=t.place,
                                                   actor=actor, data_change=data_change({}, t.data)) for t in tokens])
    marking = dict(instance.marking or {}) if existing else {}
    for t in tokens:
        marking[t.place] = marking.get(t.place, 0) + 1
    events = [] if existing else [_event(instance, "instance_created", now, data={
        "version": instance.version.number, "marking": marking, "actor": actor})]
    events += [_event(instance, "token_created", now, token_id=t.id, data={"place": t.place, "data": t.data,
                                                                           "actor": actor}) for t in tokens]
    events += settle(instance, net, marking, now, previous=None if not existing else instance.marking)
    WorkflowEvent.objects.bulk_create(events)
    outbox.notify_on_commit(events)
    instance.save(update_fields=["marking", "status", "enabled_since", "next_due_at", "finished_at", "updated_at"])


def instance_cancel(tenant, *, instance_id, actor: str = "", reason: str = "") -> WorkflowInstance:
    with transaction.atomic():
        instance = lock_instance(tenant, instance_id=instance_id)
        if instance.status in (InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED):
            raise Conflict(f"The instance is already {instance.status}.", code="instance_finished")
        now = timezone.now()
        tokens, _ = read_tokens(instance)
        TokenHistory.objects.bulk_create([TokenHistory(token_id=t.id, instance=instance, at=now, kind="cancelled",
                                                       from_place=t.place, actor=actor) for t in tokens])
        instance.status, instance.finished_at = InstanceStatus.CANCELLED, now
        instance.enabled_since, instance.next_due_at = {}, None
        instance.save(update_fields=["status", "finished_at", "enabled_since", "next_due_at", "updated_at"])
        _event_write(tenant=tenant, workflow=instance.definition.slug, instance_id=instance.id,
                     type="instance_cancelled", created_at=now,
                     data={"actor": actor, "reason": reason, "marking": instance.marking})
    return instance


def token_update_data(tenant, *, token_id, data: dict, replace: bool = False, actor: str = "",
                      metadata: dict | None = None) -> Token:
    """Deep-merge `data` into the token's (or replace it), and `metadata` into its metadata (agents' output
    mappings write both). Re-checks automatic transitions, whose guards may now hold."""
    data = _json_object(data, "data")
    metadata = _json_object(metadata, "metadata")
    with transaction.atomic():
        instance = lock_instance(tenant, token_id=token_id)
        token = Token.objects.get(pk=uuid.UUID(str(token_id)))
        if token.status != TokenStatus.ACTIVE or instance.status != InstanceStatus.RUNNING:
            raise Conflict("Only an active token of a running instance can change.", code="token_not_active")
        before = token.data
        token.data = data if replace else deep_merge(before, data)
        fields = ["data", "updated_at"]
        if metadata:
            token.metadata = deep_merge(token.metadata or {}, metadata)
            fields.append("metadata")
        token.save(update_fields=fields)
        now = timezone.now()
        TokenHistory.objects.create(token=token, instance=instance, at=now, kind="data_updated", from_place=token.place,
                                    to_place=token.place, actor=actor, data_change=data_change(before, token.data))
        net, _ = net_for_version(instance.version_id)
        events = [_event(instance, "token_updated", now, token_id=token.id, data={"data": token.data, "actor": actor})]
        events += settle(instance, net, instance.marking, now, previous=instance.marking)
        WorkflowEvent.objects.bulk_create(events)
        outbox.notify_on_commit(events)
        instance.save(update_fields=["status", "enabled_since", "next_due_at", "finished_at", "updated_at"])
    return token


def examples_load(*, tenant, actor: str = "examples") -> list[WorkflowDefinition]:
    """Save every example in examples/workflows/ for `tenant` (unchanged ones add no version)."""
    loaded = []
    for path in sorted(EXAMPLES_DIR.glob("*.y*ml")) + sorted(EXAMPLES_DIR.glob("*.json")):
        raw = yaml.safe_load(path.read_text())
        source_format = "json" if path.suffix == ".json" else "yaml"
        workflow, _, _ = workflow_save(tenant, definition=raw, source_format=source_format, actor=actor)
        loaded.append(workflow)
    return loaded
