from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from apps.core.models import TimeStampedModel
from apps.core.vocabulary import ROUTING_STRATEGIES


def validate_redact_rules(value) -> None:
    """A list of key names or paths (`a.b[*].c`) of at most 256 characters each, 100 at most."""
    if not isinstance(value, list) or len(value) > 100 or not all(
            isinstance(rule, str) and 0 < len(rule) <= 256 for rule in value):
        raise ValidationError("Expected a list of at most 100 key names or paths (non-empty strings of at most "
                              "256 characters).")


class Tenant(TimeStampedModel):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    default_routing_strategy = models.CharField(
        max_length=32, blank=True, choices=[(s, s) for s in ROUTING_STRATEGIES],
        help_text="Blank: the server's DEFAULT_ROUTING_STRATEGY.",
    )
    rate_limit_rpm = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Requests per minute for the whole tenant; blank: none.")
    rate_limit_tpm = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Tokens per minute for the whole tenant; blank: none.")
    max_concurrent = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Concurrent requests for the whole tenant; blank: none.")
    request_logging = models.BooleanField(
        default=False, help_text="Store prompt and response bodies of every chat request (request logs).")
    request_log_retention_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Request logs are deleted after this many days.")
    request_log_redact = models.JSONField(
        default=list, blank=True, validators=[validate_redact_rules],
        help_text='Redacted from request logs besides REQUEST_LOG_REDACT_KEYS: key names ("email") or paths '
                  '("request.messages[*].content", "response.choices[*].message.content").')

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Membership(TimeStampedModel):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"
        VIEWER = "viewer"

    ADMIN_ROLES = (Role.OWNER, Role.ADMIN)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")]

    def __str__(self):
        return f"{self.user} in {self.tenant} ({self.role})"


class ApiKey(models.Model):
    """A tenant's key for /v1 and the management API. Only a SHA-256 of the secret is stored."""

    class Scope(models.TextChoices):
        INFERENCE = "inference", "inference (/v1 endpoints)"
        READ = "read", "read (management API, read-only)"
        ADMIN = "admin", "admin (management API)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="api_keys")
    name = models.CharField(max_length=200)
    user_label = models.CharField(max_length=200, blank=True, help_text="Reported as the user in usage records.")
    project_label = models.CharField(max_length=200, blank=True, help_text="Reported as the project in usage.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=32, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit_rpm = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Blank: RATE_LIMIT_PER_MINUTE; 0: unlimited.")
    rate_limit_tpm = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Blank: RATE_LIMIT_TOKENS_PER_MINUTE; 0: unlimited.")
    max_concurrent = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Blank: RATE_LIMIT_CONCURRENT_REQUESTS; 0: unlimited.")
    request_logging = models.BooleanField(
        default=False, help_text="Store prompt and response bodies of this key's chat requests, whatever the "
                                 "tenant's setting.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.hint})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])
