"""Workflow definitions (versioned), instances, tokens, token history and the event outbox."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class WorkflowDefinition(TimeStampedModel):
    """A tenant's workflow, addressed by its slug (`document_review`); its net lives in versions."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="workflows")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    current_version = models.ForeignKey("WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")

    class Meta:
        ordering = ["slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="workflow_tenant_slug_unique")]

    def __str__(self):
        return self.slug


class WorkflowVersion(models.Model):
    """An immutable saved net. Saving a changed definition adds one; instances keep the one they started on."""

    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    net = models.JSONField(help_text="The canonical definition (what export returns).")
    source = models.JSONField(help_text="The definition as it was submitted.")
    source_format = models.CharField(max_length=8, default="json")
    # The tenant's named rules as they were at save time: a version's guards never change under running cases.
    named_rules = models.JSONField(default=dict, blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    sound = models.BooleanField(default=False)
    digest = models.CharField(max_length=64)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["definition", "-number"]
        constraints = [models.UniqueConstraint(fields=["definition", "number"], name="workflow_version_unique")]

    def __str__(self):
        return f"v{self.number}"


class InstanceStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"
    DEADLOCKED = "deadlocked"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WorkflowInstance(models.Model):
    """A case: a marking of tokens on one version of a workflow. Its row is the lock every firing takes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="workflow_instances")
    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.CASCADE, related_name="instances")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="instances")
    status = models.CharField(max_length=16, choices=InstanceStatus.choices, default=InstanceStatus.RUNNING)
    marking = models.JSONField(default=dict, blank=True, help_text="{place: tokens}, kept with the token rows.")
    # {transition: ISO time it became enabled} for transitions with a delay, and the earliest time one is due.
    enabled_since = models.JSONField(default=dict, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    fire_count = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status"], name="wf_instance_tenant_status"),
                   models.Index(fields=["next_due_at"], name="wf_instance_due",
                                condition=Q(status="running", next_due_at__isnull=False))]

    def __str__(self):
        return f"{self.definition_id}:{self.id}"


class TokenStatus(models.TextChoices):
    ACTIVE = "active"
    CONSUMED = "consumed"


class Token(models.Model):
    """A document or job in a place. A consumed token keeps its last place and names the token it joined."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="tokens")
    place = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=TokenStatus.choices, default=TokenStatus.ACTIVE)
    data = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    parents = models.JSONField(default=list, blank=True, help_text="Ids of the tokens this one was created from.")
    merged_into = models.UUIDField(null=True, blank=True)
    arrived_at = models.DateTimeField(help_text="When it reached its place (the oldest is taken first).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["arrived_at", "id"]
        indexes = [models.Index(fields=["instance", "status"], name="wf_token_instance_status")]

    def __str__(self):
        return str(self.id)


class TokenHistory(models.Model):
    """Append-only: one row per thing that happened to a token."""

    class Kind(models.TextChoices):
        CREATED = "created"
        MOVED = "moved"
        CONSUMED = "consumed"
        DATA_UPDATED = "data_updated"
        CANCELLED = "cancelled"

    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="history")
    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    transition = models.CharField(max_length=120, blank=True)
    from_place = models.CharField(max_length=100, blank=True)
    to_place = models.CharField(max_length=100, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    data_change = models.JSONField(default=dict, blank=True, help_text='{"set": {...}, "removed": [...]}')

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "token history"

    def __str__(self):
        return f"{self.kind} {self.transition or ''} {self.from_place}→{self.to_place}"


class WorkflowEvent(models.Model):
    """The transactional outbox: written in the transaction of the change it reports, never updated except to
    mark it published. `id` is what subscribers resume from."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    workflow = models.CharField(max_length=64)  # the slug
    instance_id = models.UUIDField(null=True, blank=True)
    token_id = models.UUIDField(null=True, blank=True)
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["tenant", "id"], name="wf_event_tenant_id"),
                   models.Index(fields=["instance_id", "id"], name="wf_event_instance_id"),
                   models.Index(fields=["id"], name="wf_event_unpublished", condition=Q(published_at__isnull=True))]

    def __str__(self):
        return f"{self.id} {self.type}"
