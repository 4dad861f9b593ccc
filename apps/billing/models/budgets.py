from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.billing import budget_spec, periods
from apps.billing.budget_spec import scope_text
from apps.core import crypto
from apps.core.http import validate_upstream_url
from apps.core.models import TimeStampedModel

DEFAULT_ALERT_THRESHOLDS = [50, 80, 95]
# Counters live in Redis as integer nano-dollars and Lua compares them as doubles, exact below 2**53 nano-dollars
# (about 9.007 million USD). A larger limit could not be enforced exactly, so it is refused.
MAX_LIMIT = Decimal("9000000")
MAX_ALERT_THRESHOLD = 1000  # percent; above 100 is meaningful for notify budgets that may overrun
MAX_ALERT_THRESHOLDS = 20


def default_alert_thresholds() -> list:
    return list(DEFAULT_ALERT_THRESHOLDS)


class Budget(TimeStampedModel):
    """A spending cap in USD for a tenant, narrowed by an API key, a user label, a project label and/or a model.

    Every set narrowing applies together (user "alice" within project "web" is one budget). `scope` names the
    most specific of them (api_key > user > project > tenant) for filters and messages and is kept in step on
    save. Counters are keyed by the period's start, so periods reset by themselves.
    """

    class Scope(models.TextChoices):
        TENANT = "tenant"
        API_KEY = "api_key", "API key"
        USER = "user"
        PROJECT = "project"

    class Period(models.TextChoices):
        # The words are periods.py's (the hot path's); the choices only label them.
        DAILY = periods.DAILY
        WEEKLY = periods.WEEKLY
        MONTHLY = periods.MONTHLY
        TOTAL = periods.TOTAL

    class Action(models.TextChoices):
        BLOCK = budget_spec.BLOCK, "block (429 budget_exceeded)"
        DOWNGRADE = budget_spec.DOWNGRADE, "downgrade to the cheapest capable model"
        NOTIFY = budget_spec.NOTIFY, "notify only"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=200, blank=True)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.TENANT, editable=False)
    api_key = models.ForeignKey("tenants.ApiKey", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="budgets", help_text="Only requests made with this key.")
    user_label = models.CharField(max_length=200, blank=True,
                                  help_text="Only requests of this user (budget_tracking.user_id or the key's "
                                            "user label).")
    project_label = models.CharField(max_length=200, blank=True,
                                     help_text="Only requests of this project (budget_tracking.project_id or the "
                                               "key's project label).")
    model = models.CharField(max_length=200, blank=True, help_text="Only requests for this model id; blank: all.")
    limit = models.DecimalField(max_digits=16, decimal_places=6, help_text="USD per period.",
                                validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MAX_LIMIT)])
    period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTHLY)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.BLOCK)
    downgrade_threshold = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(95),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal(100))],
        help_text="Percent of the limit from which `downgrade` routes to the cheapest capable model.")
    alert_thresholds = models.JSONField(default=default_alert_thresholds, blank=True,
                                        help_text="Percents of the limit that raise an alert once per period.")
    webhook_url = models.CharField(max_length=500, blank=True,
                                   help_text="POSTed (HMAC-signed) when an alert threshold is crossed.")
    encrypted_webhook_secret = models.TextField(blank=True, editable=False)
    webhook_secret_hint = models.CharField(max_length=32, blank=True, editable=False)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["tenant_id", "id"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="budget_tenant_enabled")]

    def __str__(self):
        return self.describe()

    # ---- secret ----------------------------------------------------------------------------------------
    def set_webhook_secret(self, plaintext: str) -> None:
        if plaintext:
            self.encrypted_webhook_secret = crypto.encrypt(plaintext)
            self.webhook_secret_hint = crypto.mask(plaintext)
        else:
            self.encrypted_webhook_secret = ""
            self.webhook_secret_hint = ""

    def webhook_secret(self) -> str:
        """The plaintext signing secret, for the outbound webhook only. Never log or return it."""
        return crypto.decrypt(self.encrypted_webhook_secret) if self.encrypted_webhook_secret else ""

    # ---- derived ---------------------------------------------------------------------------------------
    def derived_scope(self) -> str:
        if self.api_key_id:
            return self.Scope.API_KEY
        if self.user_label:
            return self.Scope.USER
        if self.project_label:
            return self.Scope.PROJECT
        return self.Scope.TENANT

    def describe(self) -> str:
        return f"{self.name or 'budget ' + str(self.pk or 'new')} ({scope_text(self)}, {self.period} ${self.limit})"

    def save(self, *args, **kwargs):
        self.scope = self.derived_scope()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "scope" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "scope"]
        super().save(*args, **kwargs)

    def clean(self):
        errors: dict[str, list[str]] = {}
        for field in ("user_label", "project_label", "model", "name"):
            value = getattr(self, field)
            if value != value.strip():
                setattr(self, field, value.strip())
        if self.api_key_id and self.tenant_id and self.api_key.tenant_id != self.tenant_id:
            errors["api_key"] = ["This API key belongs to another tenant."]
        try:
            self.alert_thresholds = normalise_thresholds(self.alert_thresholds)
        except ValidationError as exc:
            errors["alert_thresholds"] = exc.messages
        if self.webhook_url:
            try:
                # Validated, not rewritten: the helper strips a trailing slash that a receiver may need.
                validate_upstream_url(self.webhook_url)
            except ValidationError as exc:
                errors["webhook_url"] = exc.messages
            else:
                if not self.encrypted_webhook_secret:
                    errors["webhook_secret"] = ["A webhook needs a signing secret."]
        if errors:
            raise ValidationError(errors)


def normalise_thresholds(value) -> list:
    """A sorted list of distinct percents in (0, MAX_ALERT_THRESHOLD]; integral values as ints."""
    if not isinstance(value, list | tuple):
        raise ValidationError("Must be a list of percents, e.g. [50, 80, 95].")
    if len(value) > MAX_ALERT_THRESHOLDS:
        raise ValidationError(f"At most {MAX_ALERT_THRESHOLDS} thresholds.")
    out = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float | str | Decimal):
            raise ValidationError("Each threshold must be a number of percent.")
        try:
            number = Decimal(str(item))
        except ArithmeticError:
            raise ValidationError(f"{item!r} is not a number.") from None
        if not number.is_finite() or number <= 0 or number > MAX_ALERT_THRESHOLD:
            raise ValidationError(f"Thresholds are percents above 0 and at most {MAX_ALERT_THRESHOLD}.")
        if number != number.quantize(Decimal("0.01")):
            raise ValidationError("Thresholds have at most two decimal places.")
        out.add(number)
    return [int(n) if n == n.to_integral_value() else float(n) for n in sorted(out)]


class BudgetAlert(models.Model):
    """A threshold crossed in one period. Unique per (budget, period, threshold): each fires once."""

    class WebhookStatus(models.TextChoices):
        NONE = "none", "no webhook"
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.DecimalField(max_digits=6, decimal_places=2, help_text="Percent of the limit.")
    spent = models.DecimalField(max_digits=18, decimal_places=10, help_text="USD spent when it fired.")
    limit = models.DecimalField(max_digits=16, decimal_places=6, help_text="The budget's limit when it fired.")
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    webhook_status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.NONE)
    webhook_attempts = models.PositiveIntegerField(default=0)
    webhook_last_attempt_at = models.DateTimeField(null=True, blank=True)
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    webhook_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"],
                                    name="budgetalert_once_per_period"),
        ]

    def __str__(self):
        return f"budget {self.budget_id} {self.threshold}% of {self.period_start:%Y-%m-%d}"
